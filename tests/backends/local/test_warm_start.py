"""start() leaves nothing to compile or load for the first requests (issue: first calls
took 1.3-2.7 s after SERVING while numba compiled the kernels for memory-mapped arrays).

Asserted on what numba compiled or loaded (dispatcher signatures, argument types), never
on time.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest

from recs.backends.base import MAX_NUM_RESULTS, MAX_RERANK_ITEMS
from recs.backends.filtering import FilterCall
from recs.backends.local import kernels, scoring
from recs.backends.local.answers import compute_answers, save_answers
from recs.backends.local.artifacts import LocalModel, save_model
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.backends.local.kernels import GEMM_FROM_ROWS
from recs.backends.local.scoring import log_normalizers
from recs.pipeline.filters import parse_filter

TOP = 5  # precomputed answers per user: requests above it are scored per call
BATCHES = (1, 2, 3, GEMM_FROM_ROWS, 32)  # 32: the server's largest batch (dispatch.MAX_BATCH)
ANN = {"ann_min_items": 1, "ann_nlist": 4, "ann_nprobe": 1}  # every catalog, few cells
SERVED_KERNELS = ("row_products", "score_rows", "score_by_norm", "score_candidates", "rank_items")
# Those `traffic` reaches: with stored normalisers, scoring reads the items by norm; without,
# it takes every item's product.
WITH_NORMALIZERS = {"score_by_norm", "rank_items"}
WITHOUT_NORMALIZERS = {"row_products", "score_rows", "rank_items"}
# A filter other than the history exclusion: answered through `allowed` masks (the models
# here are built by hand, so their one event type is "", and "click" matches nothing).
NOT_CLICKED = FilterCall(
    parse_filter("not_clicked", 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")')
)


def random_model(users: int = 20, items: int = 300, factors: int = 8) -> LocalModel:
    """Random factors and histories, with stored normalisers (the approximate index's need)."""
    rng = np.random.default_rng(11)
    seen = np.sort(np.stack([rng.choice(items, 10, replace=False) for _ in range(users)]), axis=1)
    model = LocalModel(
        user_ids=np.array([f"u{i:03d}" for i in range(users)]),
        item_ids=np.array([f"i{i:04d}" for i in range(items)]),
        user_factors=rng.standard_normal((users, factors)).astype(np.float32),
        # Norms over decades, as ALS gives them: scoring reads the items by norm.
        item_factors=(
            rng.standard_normal((items, factors))
            * rng.permutation(0.9 ** np.arange(items))[:, np.newaxis]
        ).astype(np.float32),
        popularity=rng.integers(0, 50, items),
        history_indptr=np.arange(0, users * 10 + 1, 10, dtype=np.int64),
        history_indices=seen.ravel().astype(np.int32),
        similar_indices=np.full((items, 3), -1, dtype=np.int32),
        similar_scores=np.zeros((items, 3), dtype=np.float32),
        meta={"trained_at": "2026-01-01T00:00:00+00:00", "params": {"factors": factors}},
    )
    normalizers = log_normalizers(model.user_factors, model.item_factors)
    return dataclasses.replace(model, user_log_normalizer=normalizers)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory as `make serve` leaves it: model and precomputed answers."""
    model = random_model()
    path = tmp_path_factory.mktemp("warm") / "model"
    save_model(model, path)
    save_answers(compute_answers(model, top=TOP, threads=1), model, path)
    return path


def traffic(backend: LocalBackend) -> None:
    """Requests of every kind a server passes on, other ids and sizes than start() uses."""
    model = backend.model
    users = model.user_ids.tolist()[::-1]
    items = model.item_ids.tolist()[::-1]
    for n in (1, TOP, TOP + 1, 25, 26, 100, MAX_NUM_RESULTS):
        backend.recommend_without_scoring(users[0], n)
        backend.recommend_without_scoring("cold", n)
        backend.recommend(users[1], n)
    for size in BATCHES:
        backend.recommend_many([(users[k % len(users)], 26 + k) for k in range(size)])
    backend.recommend_many([(users[2], 30), ("cold", 30), (users[3], MAX_NUM_RESULTS)])
    for size in BATCHES:  # filtered: the kernel with a mask per row
        requests = [(users[k % len(users)], 3 + k) for k in range(size)]
        backend.recommend_many(requests, [NOT_CLICKED] * size)
    backend.recommend(users[1], MAX_NUM_RESULTS, NOT_CLICKED)
    backend.recommend("cold", 10, NOT_CLICKED)
    for user in (users[4], "cold"):
        backend.rerank(user, items[:1])
        backend.rerank(user, items[:20])
        backend.rerank(user, items[:MAX_RERANK_ITEMS])
        backend.rerank(user, ["nope", *items[:3], "nada"])
        backend.rerank(user, ["nope"])
    for item in (items[5], "nope"):
        backend.similar_items(item, 2)
        backend.similar_items(item, MAX_NUM_RESULTS)
    backend.popular_items(3)
    backend.popular_items(MAX_NUM_RESULTS, user_id=users[0])
    backend.info()


@pytest.fixture(scope="module")
def bare_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model without normalisers or precomputed answers: every call scored whole."""
    model = dataclasses.replace(random_model(), user_log_normalizer=None)
    path = tmp_path_factory.mktemp("warm-bare") / "model"
    save_model(model, path)
    return path


@pytest.fixture
def kernel_types(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], set[tuple[str, tuple]]]]:
    """Records the numba argument types of every served kernel call, from now on."""
    seen: set[tuple[str, tuple]] = set()

    def spy(name: str, kernel: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            seen.add((name, tuple(numba.typeof(arg) for arg in args)))
            return kernel(*args)

        return call

    for name in SERVED_KERNELS:
        kernel = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, spy(name, kernel))  # what warm_up calls
        monkeypatch.setattr(scoring, name, spy(name, kernel))  # what serving calls

    def taken() -> set[tuple[str, tuple]]:
        calls = set(seen)
        seen.clear()
        return calls

    yield taken


@pytest.mark.parametrize("mmap", [True, False], ids=["memory-mapped", "in-memory"])
@pytest.mark.parametrize(
    ("ann", "normalizers"),
    [(False, True), (False, False), (True, True)],
    ids=["exact", "exact-no-normalizers", "approximate"],
)
def test_serving_calls_the_kernels_with_the_types_warm_up_compiles(
    model_dir: Path,
    bare_model_dir: Path,
    kernel_types: Callable[[], set],
    mmap: bool,
    ann: bool,
    normalizers: bool,
) -> None:
    """warm_up (what `make install` caches) and serving agree on every argument type, so
    neither a memory-mapped model (read-only arrays) nor an in-memory one compiles anew."""
    kernels.warm_up()
    compiled = kernel_types()
    assert {name for name, _ in compiled} == set(SERVED_KERNELS)
    directory = model_dir if normalizers else bare_model_dir
    config = LocalBackendConfig(model_dir=directory, mmap=mmap, **(ANN if ann else {}))
    backend = LocalBackend(config)
    backend.start()
    assert (backend._ann is not None) is ann
    kernel_types()  # start() itself may call them with anything: it runs before SERVING
    traffic(backend)
    served = kernel_types()
    expected = WITH_NORMALIZERS if normalizers else WITHOUT_NORMALIZERS
    assert {name for name, _ in served} == expected
    assert served <= compiled


def test_in_memory_models_call_the_kernels_with_the_types_warm_up_compiles(
    kernel_types: Callable[[], set],
) -> None:
    kernels.warm_up()
    compiled = kernel_types()
    backend = LocalBackend.from_model(random_model())  # evaluation and tuning serve so
    kernel_types()
    traffic(backend)
    assert kernel_types() <= compiled


def test_start_answers_every_kind_of_request_before_it_returns(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What start() runs: all four methods, num_results within and beyond the table, single
    and batched scoring on both sides of the matrix-product threshold, cold users, a
    filtered row (scored against a mask of allowed items), re-ranking of known and unknown
    ids, the approximate index."""
    calls: list[tuple[str, tuple]] = []
    for method in ("recommend_without_scoring", "recommend_many", "_recommend_filtered",
                   "rerank", "similar_items", "popular_items"):  # fmt: skip
        original = getattr(LocalBackend, method)

        def record(self: LocalBackend, *args: Any, _name=method, _original=original) -> Any:
            calls.append((_name, args))
            return _original(self, *args)

        monkeypatch.setattr(LocalBackend, method, record)
    searches: list[tuple] = []
    build_index = LocalBackend._inner_product_index
    monkeypatch.setattr(
        LocalBackend,
        "_inner_product_index",
        lambda self, model: _counting(build_index(self, model), searches),
    )
    backend = LocalBackend(LocalBackendConfig(model_dir=model_dir, **ANN))
    backend.start()
    by_name: dict[str, list[tuple]] = {}
    for name, args in calls:
        by_name.setdefault(name, []).append(args)
    known = set(backend.model.user_ids.tolist())
    lookups = by_name["recommend_without_scoring"]
    assert {n <= TOP for _, n in lookups} == {True, False}
    assert {user in known for user, _ in lookups} == {True, False}
    batches = by_name["recommend_many"]
    # recommend_many(requests) from start(), recommend_many(requests, filters) via recommend
    sizes = {sum(user in known for user, _ in batch) for batch, *_ in batches}
    assert 1 in sizes and max(sizes) >= GEMM_FROM_ROWS
    assert any(n > TOP for batch, *_ in batches for _, n in batch)
    assert any(user not in known for batch, *_ in batches for user, _ in batch)
    # The filtered path: user vectors, one mask over the model's items per row.
    filtered = by_name["_recommend_filtered"]
    factors, num_items = backend.model.user_factors.shape[1], backend.model.num_items
    for vectors, counts, allowed, *_ in filtered:
        assert vectors.shape == (len(counts), factors) and len(counts) >= 1
        assert allowed.shape == (len(counts), num_items) and allowed.dtype == np.bool_
        assert allowed.any()
    assert any(n > 0 for _, counts, *_ in filtered for n in counts)
    assert searches  # the approximate index answered
    items = set(backend.model.item_ids.tolist())
    reranks = by_name["rerank"]
    assert {user in known for user, _ in reranks} == {True, False}
    assert any(all(i in items for i in ids) for _, ids in reranks)
    assert any(any(i not in items for i in ids) for _, ids in reranks)
    assert {item in items for item, _ in by_name["similar_items"]} == {True, False}
    assert by_name["popular_items"]


def _counting(index: Any, searches: list) -> Any:
    """`index` with its searches counted in `searches`."""
    search = index.search

    def counted(*args: Any) -> Any:
        searches.append(args)
        return search(*args)

    index.search = counted
    return index


# Run in a fresh interpreter: numba's dispatchers are per process, and this suite's other
# tests may already have compiled whatever the first request would need.
FRESH_PROCESS = """
import json, sys
from pathlib import Path
from numba.core.registry import CPUDispatcher
from recs.backends.local import kernels
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
sys.path.insert(0, sys.argv[3])
from tests.backends.local.test_warm_start import traffic

backend = LocalBackend(LocalBackendConfig(model_dir=Path(sys.argv[1]), **json.loads(sys.argv[2])))
backend.start()
dispatchers = {n: d for n, d in vars(kernels).items() if isinstance(d, CPUDispatcher)}
loaded = lambda: {n: sorted(map(str, d.signatures)) for n, d in dispatchers.items()}
after_start = loaded()
traffic(backend)
print(json.dumps({"after_start": after_start, "after_traffic": loaded()}))
"""


@pytest.mark.parametrize("config", [{}, ANN], ids=["exact", "approximate"])
def test_no_kernel_is_compiled_or_loaded_after_start(model_dir: Path, config: dict) -> None:
    """In a fresh process, as the server runs it: start(), then every kind of request;
    numba compiles or loads from its cache nothing more after start() returned."""
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(model_dir), json.dumps(config), str(root)],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    loaded = json.loads(done.stdout.splitlines()[-1])
    for name in SERVED_KERNELS:
        assert loaded["after_start"][name], f"{name} not ready after start()"
    assert loaded["after_traffic"] == loaded["after_start"]
