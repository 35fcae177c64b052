"""Benchmark GetRecommendations latency against catalog size: 10k, 100k and 1M items.

Models with synthetic factors (normal, 64 factors, 4k users with 20 seen items each;
what matters for latency is the shape, not what the factors learned, and the number of
users does not enter a call's cost) are written once under build/bench/catalog-N/ with the
real `save_model` (with the per-user softmax log-normalisers under catalog-N-normalised/),
served by `recs serve`, and loaded by h2load (see bench_service.py) at concurrency 1 (one
caller: pure latency) and 8 (calls batched into one matrix product).

Five scoring modes per catalog: `exact` (every item's dot product and the softmax
normaliser computed per call: how a default `recs train` model is served),
`exact-normalised` (the normalisers `recs train` stores with `log_normalizers = true`:
no exp pass per call), `ann` (the faiss IVF index of backends.local.ann over a normalised
model, forced on whatever the size) and `hnsw` (the HNSW graph `recs index` stores, built here
once per model), and `precomputed` (every user's top 25 from `recs precompute`, computed
here once per model, its time printed: the cost moves from the call to that offline step,
and a call is a lookup whatever the catalog size). For the indexes the recall@10 against
exact is measured in process on 500 users: |approximate top 10 & exact top 10| / 10,
averaged.

Goal: p99 under 50 ms at 1M items, exact or with recall@10 >= 0.95.

Usage: python bench/bench_catalog_scale.py [--items 10000 100000 1000000] [--modes exact ann]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import tomli_w
from bench_service import (
    Server,
    call_raw,
    ensure_h2load,
    free_port,
    grpc_frame,
    run_load,
)
from big_model import BENCH_BUILD, machine_line, recs_command

from recs.backends.errors import ModelLoadError
from recs.backends.local.ann import HNSW_FILE, HnswIndex
from recs.backends.local.answers import compute_answers, load_answers, save_answers
from recs.backends.local.artifacts import LocalModel, load_model, save_model
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.backends.local.scoring import log_normalizers
from recs.v1 import recommendation_service_pb2 as pb

USERS, FACTORS, SEEN = 4_000, 64, 20
GOAL_P99_MS, GOAL_RECALL = 50.0, 0.95
MODES = ("exact", "exact-normalised", "ann", "hnsw", "precomputed")
RECALL_USERS, RECALL_AT = 500, 10


def synthetic_model(num_items: int, seed: int = 5) -> LocalModel:
    """A servable model of `num_items` items with random factors and histories."""
    rng = np.random.default_rng(seed)
    seen = np.sort(rng.integers(0, num_items, size=(USERS, SEEN)), axis=1)
    return LocalModel(
        user_ids=np.array([f"u{i:06d}" for i in range(USERS)]),
        item_ids=np.array([f"v{i:07d}" for i in range(num_items)]),
        user_factors=(rng.standard_normal((USERS, FACTORS)) * 0.3).astype(np.float32),
        item_factors=(rng.standard_normal((num_items, FACTORS)) * 0.3).astype(np.float32),
        popularity=rng.integers(0, 1000, num_items),
        history_indptr=np.arange(0, USERS * SEEN + 1, SEEN, dtype=np.int64),
        history_indices=seen.ravel().astype(np.int32),
        similar_indices=np.full((num_items, 0), -1, dtype=np.int32),
        similar_scores=np.zeros((num_items, 0), dtype=np.float32),
        meta={"synthetic": True, "users": USERS},
    )


def ensure_synthetic(num_items: int, normalizers: bool) -> Path:
    """The model directory for `num_items`, built unless already there.

    `normalizers`: with the per-user softmax log-normalisers (what `recs train` stores
    with `log_normalizers = true`), which the approximate index needs; without them (the default
    `recs train` output) exact scoring computes each normaliser per call.
    """
    model_dir = BENCH_BUILD / f"catalog-{num_items}{'-normalised' if normalizers else ''}"
    try:
        current = load_model(model_dir)
        if (current.user_log_normalizer is not None) == normalizers and current.meta.get(
            "users"
        ) == USERS:
            return model_dir
    except ModelLoadError:
        pass
    model = synthetic_model(num_items)
    if normalizers:
        started = time.perf_counter()
        model.user_log_normalizer = log_normalizers(model.user_factors, model.item_factors)
        print(
            f"{num_items:,} items: normalisers of {USERS:,} users in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
    save_model(model, model_dir)
    return model_dir


def local_section(mode: str, num_items: int, tuning: argparse.Namespace) -> dict[str, object]:
    """The `[local]` settings of a mode: an index forced on (ann, hnsw) or none (exact)."""
    if mode == "ann":
        return {"ann_min_items": 0} | ({"ann_nprobe": tuning.nprobe} if tuning.nprobe else {})
    if mode == "hnsw":
        return {"ann_min_items": 0, "ann_index": "hnsw", "ann_ef_search": tuning.ef_search}
    return {"ann_min_items": num_items + 1, "precomputed_answers": mode == "precomputed"}


def ensure_hnsw(model_dir: Path) -> None:
    """The HNSW index in `model_dir`, built as `recs index` does unless already there."""
    if (model_dir / HNSW_FILE).is_file():
        return
    print(f"{model_dir.name}: building the HNSW index (minutes at 1M items)", flush=True)
    started = time.perf_counter()
    HnswIndex.build(load_model(model_dir).item_factors).save(model_dir / HNSW_FILE)
    print(f"{model_dir.name}: HNSW index built in {time.perf_counter() - started:.0f} s")


def ensure_answers(model_dir: Path) -> None:
    """The precomputed top 25 in `model_dir`, computed as `recs precompute` does."""
    model = load_model(model_dir)
    if load_answers(model_dir, model) is not None:
        return
    started = time.perf_counter()
    save_answers(compute_answers(model), model, model_dir)
    seconds = time.perf_counter() - started
    print(
        f"{model_dir.name}: top 25 of {model.num_users:,} users precomputed in {seconds:.1f} s "
        f"({seconds / model.num_users * 1000:.2f} ms per user, all cores)",
        flush=True,
    )


def measure_recall(model_dir: Path, mode: str, tuning: argparse.Namespace) -> tuple[float, float]:
    """(mean recall@10 of the index against exact scoring, index load or build seconds)."""
    model = load_model(model_dir)
    base = {"model_dir": model_dir}
    exact = LocalBackend.from_model(
        model, config=LocalBackendConfig(**base, **local_section("exact", model.num_items, tuning))
    )
    started = time.perf_counter()
    approximate = LocalBackend.from_model(
        model, config=LocalBackendConfig(**base, **local_section(mode, model.num_items, tuning))
    )
    build_seconds = time.perf_counter() - started
    requests = [(f"u{k:06d}", RECALL_AT) for k in range(RECALL_USERS)]
    hits = [
        len({i.item_id for i in got.items} & {i.item_id for i in want.items}) / RECALL_AT
        for got, want in zip(
            approximate.recommend_many(requests), exact.recommend_many(requests), strict=True
        )
    ]
    return float(np.mean(hits)), build_seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument(
        "--modes", nargs="+", default=list(MODES), choices=MODES,
        help="scoring modes to serve (see the module docstring)",
    )  # fmt: skip
    parser.add_argument(
        "--nprobe", type=int, help="ann: index cells scanned per call (default: the service's)"
    )
    parser.add_argument(
        "--ef-search", type=int, default=1024, help="hnsw: candidates kept per search (1024)"
    )
    args = parser.parse_args()
    h2load = ensure_h2load()
    if h2load is None:
        print("bench_catalog_scale: h2load not found (apt-get install nghttp2-client); skipped")
        return 0
    print(machine_line())
    print(f"synthetic models: {USERS:,} users, {FACTORS} factors, {SEEN} seen items per user")
    model_dirs = {
        (num_items, mode): ensure_synthetic(
            num_items, normalizers=mode not in ("exact", "precomputed")
        )
        for num_items, mode in itertools.product(args.items, args.modes)
    }
    recalls: dict[tuple[int, str], str] = {}
    for (num_items, mode), model_dir in model_dirs.items():
        if mode == "hnsw":
            ensure_hnsw(model_dir)
        if mode == "precomputed":
            ensure_answers(model_dir)
        if mode in ("ann", "hnsw"):
            recall, build = measure_recall(model_dir, mode, args)
            recalls[num_items, mode] = f"{recall:.3f}"
            setting = (
                f"nprobe {args.nprobe or 'default'}"
                if mode == "ann"
                else (f"ef_search {args.ef_search}")
            )
            print(
                f"{num_items:>10,} items, {mode}: recall@{RECALL_AT} {recall:.3f} over "
                f"{RECALL_USERS} users ({setting}); index ready in {build:.1f} s",
                flush=True,
            )
    print(f"{'items':>10} {'mode':>16} {'c':>3} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} recall")
    for (num_items, mode), model_dir in model_dirs.items():
        port = free_port()
        work = BENCH_BUILD / f"catalog-{num_items}-run"
        work.mkdir(exist_ok=True)
        config = work / f"{mode}.toml"
        config.write_text(
            tomli_w.dumps({"local": {"model_dir": str(model_dir),
                                     **local_section(mode, num_items, args)}})
        )  # fmt: skip
        command = [
            *recs_command(), "serve", "--config", str(config), "--backend", "local",
            "--port", str(port), "--request-log-level", "INFO",
        ]  # fmt: skip
        with Server("service", command, work / f"service-{mode}.log"):
            bodies, sizes = [], []
            for k in range(4):
                body = pb.GetRecommendationsRequest(user_id=f"u{k * 997:06d}", num_results=25)
                path = work / f"body-{k}"
                path.write_bytes(grpc_frame(body.SerializeToString()))
                bodies.append(path)
                answer = call_raw(
                    f"127.0.0.1:{port}", "GetRecommendations", body.SerializeToString()
                )
                sizes.append(len(grpc_frame(answer)))
            for concurrency in args.concurrency:
                result = run_load(
                    h2load, port, "GetRecommendations", bodies, sizes, concurrency,
                    args.duration, 1.0, "service",
                )  # fmt: skip
                print(
                    f"{num_items:>10,} {mode:>16} {concurrency:>3} {result.throughput:>8,.0f} "
                    f"{result.p50_ms:>8.2f} {result.p99_ms:>8.2f} "
                    f"{recalls.get((num_items, mode), '1 (exact)')}",
                    flush=True,
                )
    print(
        f"goal: p99 under {GOAL_P99_MS:.0f} ms at 1M items, exact or recall@{RECALL_AT} >= "
        f"{GOAL_RECALL}; {machine_line()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
