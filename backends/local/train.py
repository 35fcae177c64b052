"""Training of the local engine: prepared dataset -> LocalModel -> model directory.

`fit_model` works in memory (the tuner and evaluation call it); `train` adds reading the
dataset (plus the real-time events `recs events export` wrote, `backends.local.export`), the
data fingerprint and the atomic save behind `recs train`.

Steps, each vectorised so that reading and mapping never dominate ALS itself:
1. ids -> dense indices with Arrow's dictionary encoding (ids kept sorted ascending);
2. per-event confidence from the event type (and optionally EVENT_VALUE), summed per
   (user, item) pair into a SciPy CSR matrix;
3. implicit's ALS on that matrix (users, re-ranking);
4. popularity = distinct users per item; what filters see of each user's interactions,
   the 100 most recent per event type (`backends.local.recent`);
5. top-K similar items (see `backends.local.similar`);
6. optionally, each user's softmax log-normaliser over every item
   (`backends.local.scoring.log_normalizers`), so serving skips an exp pass per call.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from recs.backends.local.artifacts import LocalModel, save_model
from recs.backends.local.export import events_meta, read_export
from recs.backends.local.params import TrainParams
from recs.backends.local.recent import recent_interactions
from recs.backends.local.scoring import log_normalizers
from recs.backends.local.similar import similar_neighbours
from recs.backends.local.trending import training_tail

if TYPE_CHECKING:
    from implicit.cpu.als import AlternatingLeastSquares
from recs.pipeline.dataset import (
    INTERACTION_COLUMNS,
    INTERACTION_TYPES,
    INTERACTIONS_FILE,
    ITEMS_FILE,
    DatasetError,
    encode_ids,
    read_interactions,
    read_items,
)

logger = logging.getLogger(__name__)

# Progress callback: (stage name, fraction of that stage done in [0, 1]).
StageProgress = Callable[[str, float], None]


def fit_model(
    interactions: pa.Table,
    params: TrainParams,
    items: pa.Table | None = None,
    progress: bool = False,
    similar: bool = True,
) -> LocalModel:
    """Fit a LocalModel on an interactions table (`pipeline.dataset` columns), in memory.

    `items` (the catalog), when given, only adds catalog counts to the model's meta: the
    model knows the items that have interactions, as those are all it can score.
    `similar=False` skips the similar-items neighbours (every item gets none): the tuner
    scores recommendations only and saves that time on each trial.
    Raises DatasetError when the table is empty or has empty ids.
    """
    started = time.perf_counter()
    if interactions.num_rows == 0:
        raise DatasetError("interactions: no rows to train on")
    with _progress_display(progress) as report:
        report("encoding ids", 0.0)
        pairs, user_ids, item_ids, codes = _interaction_matrix(interactions, params)
        recent = recent_interactions(interactions, *codes, num_users=len(user_ids))
        trend_items, trend_times = training_tail(codes[1], interactions.column("TIMESTAMP"))
        report("encoding ids", 1.0)

        confidences = pairs.copy()
        confidences.eliminate_zeros()  # zero-weight events still count as history
        user_factors, item_factors = _fit_als(
            confidences, params, lambda f: report("ALS iterations", f)
        )
        if similar:
            similar_indices, similar_scores = similar_neighbours(
                confidences if params.similar_use_confidence else _binary(confidences),
                item_factors,
                params.similar_method,
                params.similar_neighbours,
                lambda f: report("similar items", f),
            )
        else:
            similar_indices = np.full((len(item_ids), 0), -1, dtype=np.int32)
            similar_scores = np.zeros((len(item_ids), 0), dtype=np.float32)
        # Serving then scores only the top n dot products (no exp pass over the catalog).
        user_log_normalizer = (
            log_normalizers(
                user_factors,
                item_factors,
                on_progress=lambda f: report("softmax normalizers", f),
            )
            if params.log_normalizers
            else None
        )
    popularity = np.bincount(pairs.indices, minlength=len(item_ids)).astype(np.int64)
    model = LocalModel(
        user_ids=user_ids,
        item_ids=item_ids,
        user_factors=user_factors,
        item_factors=item_factors,
        popularity=popularity,
        history_indptr=recent.history_indptr,
        history_indices=recent.history_indices,
        similar_indices=similar_indices,
        similar_scores=similar_scores,
        event_types=recent.event_types,
        recent_indptr=recent.recent_indptr,
        recent_items=recent.recent_items,
        recent_types=recent.recent_types,
        user_log_normalizer=user_log_normalizer,
        confidence_indptr=pairs.indptr.astype(np.int64),
        confidence_indices=pairs.indices.astype(np.int32),
        confidence_data=pairs.data.astype(np.float32),
        trend_items=trend_items,
        trend_times=trend_times,
    )
    model.meta = _meta(model, params, interactions, items, pairs.nnz, time.perf_counter() - started)
    return model


def train(
    data_dir: str | Path,
    out_dir: str | Path,
    params: TrainParams,
    progress: bool = False,
    events: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """Train on the prepared dataset in `data_dir` and save the model to `out_dir`.

    `events`: files written by `recs events export` (backends.local.export), whose rows
    are trained on with the dataset's; the model's `meta["events"]` records the last stored
    event they hold (`through_seq`), so that serving replays only the events after it.
    Returns a summary: users, items, interactions, seconds, model_bytes, out_dir, and with
    `events` the events' count and through_seq.
    Raises DatasetError when the dataset or an events file is missing or malformed.
    """
    started = time.perf_counter()
    data_dir = Path(data_dir)
    interactions = read_interactions(data_dir)
    items = read_items(data_dir)
    event_files = [Path(path) for path in events]
    exported = [read_export(path) for path in event_files]
    events_info = events_meta([export for _, export in exported]) if exported else None
    if exported:
        interactions = concat_interactions([interactions, *(table for table, _ in exported)])
    with ThreadPoolExecutor(max_workers=1) as pool:  # hashing overlaps with training
        fingerprint = pool.submit(_fingerprint, data_dir, event_files)
        model = fit_model(interactions, params, items, progress=progress)
        model.meta["data"] = fingerprint.result()
    if events_info is not None:
        model.meta["events"] = events_info
    model_bytes = save_model(model, out_dir)
    counts = model.meta["counts"]
    summary = {
        "users": counts["users"],
        "items": counts["items"],
        "interactions": counts["interactions"],
        "seconds": round(time.perf_counter() - started, 3),
        "training_seconds": model.meta["training_seconds"],
        "model_bytes": model_bytes,
        "out_dir": str(out_dir),
    }
    if events_info is not None:
        summary["events"] = events_info["count"]
        summary["events_through_seq"] = events_info["through_seq"]
    return summary


def concat_interactions(tables: Sequence[pa.Table]) -> pa.Table:
    """Interactions tables one after the other, in the declared columns; a column one table
    lacks reads in its rows as empty cells would (text "", numbers null), and columns
    outside the declared ones are dropped."""
    present = [c for c in INTERACTION_COLUMNS if any(c in t.column_names for t in tables)]

    def column(table: pa.Table, name: str) -> pa.Array | pa.ChunkedArray:
        kind = INTERACTION_TYPES[name]
        if name in table.column_names:
            return table.column(name).cast(kind)
        if pa.types.is_string(kind):
            return pa.repeat(pa.scalar("", kind), table.num_rows)
        return pa.nulls(table.num_rows, kind)

    return pa.concat_tables(
        pa.table([column(table, name) for name in present], names=present) for table in tables
    )


def interaction_matrix(
    interactions: pa.Table, params: TrainParams
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """(users x items confidence matrix, user ids, item ids) of an interactions table.

    Repeated (user, item) events are summed; entries whose weights sum to zero are kept
    (they still count as history).
    """
    pairs, user_ids, item_ids, _ = _interaction_matrix(interactions, params)
    return pairs, user_ids, item_ids


def _interaction_matrix(
    interactions: pa.Table, params: TrainParams
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """`interaction_matrix`, and each row's (user code, item code)."""
    user_codes, user_ids = encode_ids(interactions, "USER_ID")
    item_codes, item_ids = encode_ids(interactions, "ITEM_ID")
    weights = event_confidence(interactions, params)
    pairs = sp.csr_matrix((weights, (user_codes, item_codes)), shape=(len(user_ids), len(item_ids)))
    pairs.sum_duplicates()
    return pairs, user_ids, item_ids, (user_codes, item_codes)


def new_als(params: TrainParams) -> AlternatingLeastSquares:
    """implicit's ALS model configured by `params` (float32 factors)."""
    from implicit.cpu.als import AlternatingLeastSquares

    return AlternatingLeastSquares(
        factors=params.factors,
        regularization=params.regularization,
        alpha=params.alpha,
        iterations=params.iterations,
        random_state=params.random_state,
        dtype=np.float32,
    )


def event_confidence(table: pa.Table, params: TrainParams) -> np.ndarray:
    """Each event's confidence: its type's weight, times EVENT_VALUE if so configured.

    Event types missing from `params.event_weights` (or an absent EVENT_TYPE column)
    get `params.default_event_weight`; a missing EVENT_VALUE counts as 1.
    """
    if "EVENT_TYPE" in table.column_names:
        encoded = pc.dictionary_encode(table.column("EVENT_TYPE")).unify_dictionaries()
        types = encoded.chunk(0).dictionary.to_pylist() if encoded.num_chunks else []
        unknown = sorted(t for t in types if t not in params.event_weights)
        if unknown:
            logger.info(
                "event type(s) %s not in event_weights: weight %s",
                ", ".join(map(repr, unknown)),
                params.default_event_weight,
            )
        type_weights = np.array([params.weight_of(t) for t in types], dtype=np.float32)
        codes = np.concatenate([chunk.indices.to_numpy() for chunk in encoded.chunks])
        weights = type_weights[codes]
    else:
        weights = np.full(table.num_rows, params.default_event_weight, dtype=np.float32)
    if params.use_event_value and "EVENT_VALUE" in table.column_names:
        values = pc.fill_null(table.column("EVENT_VALUE"), 1.0).to_numpy()
        weights = weights * np.clip(values, 0.0, None).astype(np.float32)
    if params.recency_half_life is not None:
        weights = weights * recency_factors(table, params.recency_half_life)
    return weights


def recency_factors(table: pa.Table, half_life: float) -> np.ndarray:
    """Per event, 0.5 ** (events of the same user strictly newer than it / half_life).

    A user's newest events weigh 1 whatever their absolute age, so light and heavy users
    are treated alike; events with equal timestamps get the same factor.
    """
    codes = pc.dictionary_encode(table.column("USER_ID").combine_chunks()).indices.to_numpy()
    times = table.column("TIMESTAMP").to_numpy()
    order = np.lexsort((-times, codes))  # per user, newest first
    sorted_codes, sorted_times = codes[order], times[order]
    index = np.arange(len(order))
    new_user = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]
    new_time = new_user | np.r_[True, sorted_times[1:] != sorted_times[:-1]]
    user_start = np.maximum.accumulate(np.where(new_user, index, 0))
    time_start = np.maximum.accumulate(np.where(new_time, index, 0))
    newer = np.empty(len(order), dtype=np.float64)
    newer[order] = time_start - user_start  # events of the user before this tie group
    return np.power(0.5, newer / half_life).astype(np.float32)


def _binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """The same sparsity pattern with every stored value 1 (who interacted with what)."""
    ones = matrix.copy()
    ones.data = np.ones_like(ones.data)
    return ones


def _fit_als(
    confidences: sp.csr_matrix, params: TrainParams, on_progress: Callable[[float], None]
) -> tuple[np.ndarray, np.ndarray]:
    als = new_als(params)

    def after_iteration(iteration: int, _seconds: float, _loss: float | None) -> None:
        on_progress((iteration + 1) / params.iterations)

    on_progress(0.0)
    als.fit(confidences, show_progress=False, callback=after_iteration)
    return (
        np.ascontiguousarray(als.user_factors, dtype=np.float32),
        np.ascontiguousarray(als.item_factors, dtype=np.float32),
    )


def _meta(
    model: LocalModel,
    params: TrainParams,
    interactions: pa.Table,
    items: pa.Table | None,
    user_item_pairs: int,
    seconds: float,
) -> dict[str, Any]:
    counts: dict[str, int] = {
        "users": model.num_users,
        "items": model.num_items,
        "interactions": interactions.num_rows,
        "user_item_pairs": user_item_pairs,
    }
    if items is not None:
        catalog = set(items.column("ITEM_ID").to_pylist())
        known = set(model.item_ids.tolist())
        counts["catalog_items"] = len(catalog)
        counts["catalog_items_without_interactions"] = len(catalog - known)
        counts["items_missing_from_catalog"] = len(known - catalog)
    return {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training_seconds": round(seconds, 3),
        "params": params.model_dump(mode="json"),
        "counts": counts,
        "versions": {
            "python": platform.python_version(),
            **{lib: version(lib) for lib in ("implicit", "numpy", "scipy", "pyarrow")},
        },
    }


def _fingerprint(data_dir: Path, event_files: Sequence[Path] = ()) -> dict[str, Any]:
    """sha256 of the dataset files (and of the events files, in their order), so a model
    says exactly what it was trained on."""
    fingerprint: dict[str, Any] = {"interactions_sha256": _sha256(data_dir / INTERACTIONS_FILE)}
    if (data_dir / ITEMS_FILE).is_file():
        fingerprint["items_sha256"] = _sha256(data_dir / ITEMS_FILE)
    if event_files:
        fingerprint["events_sha256"] = [_sha256(path) for path in event_files]
    return fingerprint


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _progress_display(enabled: bool) -> Iterator[StageProgress]:
    """A rich progress display with one bar per training stage (a no-op when disabled)."""
    if not enabled:
        yield lambda _stage, _fraction: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:<16}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False) as display:
        tasks: dict[str, Any] = {}

        def report(stage: str, fraction: float) -> None:
            if stage not in tasks:
                tasks[stage] = display.add_task(stage, total=1.0)
            display.update(tasks[stage], completed=fraction)

        yield report
