"""Benchmark GetRecommendations latency against catalog size: 10k, 100k and 1M items.

Models with synthetic factors (normal, 64 factors, 20k users with 20 seen items each;
what matters for latency is the shape, not what the factors learned) are written once
under build/bench/catalog-N/ with the real `save_model`, served by `recs serve`, and
loaded by h2load (see bench_service.py) at concurrency 1 (one caller: pure latency) and 8
(calls batched into one matrix product). Scoring is exact: the softmax over every unseen
item, top-n by block maxima.

Goal: p99 under 50 ms at 1M items.

Usage: python bench/bench_catalog_scale.py [--items 10000 100000 1000000] [--duration 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from bench_service import (
    Server,
    call_raw,
    ensure_h2load,
    free_port,
    grpc_frame,
    run_load,
)
from big_model import BENCH_BUILD, machine_line, recs_command

from backends.local.artifacts import LocalModel, save_model
from recs.v1 import recommendation_service_pb2 as pb

USERS, FACTORS, SEEN = 20_000, 64, 20
GOAL_P99_MS = 50.0


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
        meta={"synthetic": True},
    )


def ensure_synthetic(num_items: int) -> Path:
    model_dir = BENCH_BUILD / f"catalog-{num_items}"
    if not (model_dir / "meta.json").is_file():
        save_model(synthetic_model(num_items), model_dir)
    return model_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    h2load = ensure_h2load()
    if h2load is None:
        print("bench_catalog_scale: h2load not found (apt-get install nghttp2-client); skipped")
        return 0
    print(machine_line())
    print(f"synthetic models: {USERS:,} users, {FACTORS} factors, {SEEN} seen items per user")
    print(f"{'items':>10} {'c':>3} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for num_items in args.items:
        model_dir = ensure_synthetic(num_items)
        port = free_port()
        command = [
            *recs_command(), "serve", "--backend", "local", "--model", str(model_dir),
            "--port", str(port), "--request-log-level", "INFO",
        ]  # fmt: skip
        work = BENCH_BUILD / f"catalog-{num_items}-run"
        work.mkdir(exist_ok=True)
        with Server("service", command, work / "service.log"):
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
                    f"{num_items:>10,} {concurrency:>3} {result.throughput:>8,.0f} "
                    f"{result.p50_ms:>8.2f} {result.p99_ms:>8.2f}",
                    flush=True,
                )
    print(f"goal: p99 under {GOAL_P99_MS:.0f} ms at 1M items; {machine_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
