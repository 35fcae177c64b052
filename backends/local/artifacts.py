"""The trained local model: its arrays, and the model directory that stores them.

A model directory holds one `.npy` file per array (uncompressed, so `np.load(mmap_mode="r")`
maps it and several server processes share the same pages) and `meta.json`. Everything
loads with `allow_pickle=False`: ids are NumPy unicode arrays, never Python objects.

Saving is atomic: the files go to a temporary directory beside the target, which is then
renamed into place, so a reader never sees a half-written model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recs.backends.errors import ModelLoadError

# 2: scores are shares of every item's softmax (user_log_normalizer over every item), the
# history is what filters see (recent_*, event_types). Version 1 models must be retrained.
FORMAT_VERSION = 2
META_FILE = "meta.json"

# Array name -> (expected dtype kind(s), number of dimensions). Each is stored as NAME.npy.
ARRAY_SPECS: dict[str, tuple[str, int]] = {
    "user_ids": ("U", 1),
    "item_ids": ("U", 1),
    "user_factors": ("f", 2),
    "item_factors": ("f", 2),
    "popularity": ("iu", 1),
    "history_indptr": ("iu", 1),
    "history_indices": ("iu", 1),
    "similar_indices": ("i", 2),
    "similar_scores": ("f", 2),
    "event_types": ("U", 1),
    "recent_indptr": ("iu", 1),
    "recent_items": ("i", 1),
    "recent_types": ("iu", 1),
}
# Arrays a model may lack (models trained before they existed still load and serve).
OPTIONAL_ARRAY_SPECS: dict[str, tuple[str, int]] = {
    "user_log_normalizer": ("f", 1),
    "confidence_indptr": ("iu", 1),
    "confidence_indices": ("i", 1),
    "confidence_data": ("f", 1),
    "trend_items": ("i", 1),
    "trend_times": ("i", 1),
}


@dataclass
class LocalModel:
    """A trained local model, as plain NumPy arrays.

    Rows of `user_factors` follow `user_ids`, rows of `item_factors`, `popularity` and
    `similar_*` follow `item_ids`. A user's history (the items to exclude from their
    recommendations) is `history_indices[history_indptr[u]:history_indptr[u + 1]]`, the CSR
    layout of the training matrix. `similar_indices[i]` lists item i's nearest neighbours
    best first, padded with -1; `similar_scores[i]` their similarity in [0, 1].
    What filters see of user u's interactions (the 100 most recent per event type,
    `backends.local.recent`) is the CSR slice `recent_*[recent_indptr[u]:recent_indptr[u + 1]]`
    of (item, event type) pairs, `recent_types` indexing the lower-cased `event_types`; the
    history is that window's distinct items.
    `confidence_*`, when present, is the training matrix ALS saw (before `alpha`): each
    user's summed event confidence per item, so a user's vector can be solved again with
    events received since (`backends.local.live`).
    `trend_items` / `trend_times`, when present, are the training events of the last two days,
    oldest first (model item index, time in seconds): what trending counts
    (`backends.local.trending`).
    `user_log_normalizer[u]`, when present, is the log of the softmax denominator of user
    u over every item, so a recommendation's score is `exp(dot - user_log_normalizer[u])`
    without a pass over the catalog.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    popularity: np.ndarray
    history_indptr: np.ndarray
    history_indices: np.ndarray
    similar_indices: np.ndarray
    similar_scores: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    user_log_normalizer: np.ndarray | None = None
    confidence_indptr: np.ndarray | None = None
    confidence_indices: np.ndarray | None = None
    confidence_data: np.ndarray | None = None
    trend_items: np.ndarray | None = None  # the last two days of training events (trending)
    trend_times: np.ndarray | None = None
    # Training always sets these; a model built otherwise (tests, benchmarks) gets its
    # history as the window, under one event type named "" (only "*" matches it).
    event_types: np.ndarray = None  # type: ignore[assignment]
    recent_indptr: np.ndarray = None  # type: ignore[assignment]
    recent_items: np.ndarray = None  # type: ignore[assignment]
    recent_types: np.ndarray = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.recent_indptr is None:
            self.event_types = np.array([""])
            self.recent_indptr = np.asarray(self.history_indptr, dtype=np.int64)
            self.recent_items = np.asarray(self.history_indices, dtype=np.int32)
            self.recent_types = np.zeros(len(self.history_indices), dtype=np.int16)

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    def arrays(self) -> dict[str, np.ndarray]:
        """The model's arrays by file stem (optional ones only when present)."""
        arrays = {name: getattr(self, name) for name in ARRAY_SPECS}
        for name in OPTIONAL_ARRAY_SPECS:
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        return arrays


def save_model(model: LocalModel, out_dir: str | Path) -> int:
    """Write `model` to `out_dir` atomically, replacing any model there; returns bytes written.

    The new directory is complete before it takes the target's name; an old model at
    `out_dir` is moved aside first and deleted after, so `out_dir` holds either the old
    or the new model in full (or, for an instant, nothing), never a mix.
    """
    validate_model(model, source="model to save")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        tmp_dir.chmod(0o755)  # mkdtemp makes it private; a model is for every reader
        for name, array in model.arrays().items():
            np.save(tmp_dir / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        meta = {**model.meta, "format_version": FORMAT_VERSION}
        (tmp_dir / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        size = sum(p.stat().st_size for p in tmp_dir.iterdir())
        _replace_dir(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return size


def _replace_dir(new_dir: Path, target: Path) -> None:
    old_dir = None
    if target.exists():
        old_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.rename(target, old_dir / target.name)
    os.rename(new_dir, target)
    if old_dir is not None:
        shutil.rmtree(old_dir, ignore_errors=True)


def load_model(model_dir: str | Path, mmap: bool = True) -> LocalModel:
    """Load and validate a model directory; ModelLoadError naming the file on any problem.

    With `mmap` the arrays are read-only memory maps (pages shared between processes and
    loaded on first touch); without it they are read into memory.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelLoadError(f"{model_dir}: model directory not found (run `recs train`)")
    meta = _load_meta(model_dir / META_FILE)
    arrays = {name: load_array(model_dir / f"{name}.npy", mmap=mmap) for name in ARRAY_SPECS}
    for name in OPTIONAL_ARRAY_SPECS:
        if (model_dir / f"{name}.npy").exists():
            arrays[name] = load_array(model_dir / f"{name}.npy", mmap=mmap)
    model = LocalModel(**arrays, meta=meta)
    validate_model(model, source=str(model_dir))
    return model


def _load_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: missing (incomplete model directory)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: unreadable or not JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelLoadError(
            f"{path}: model format_version {version!r}, this code reads {FORMAT_VERSION}; "
            "retrain with `recs train`"
        )
    return meta


def load_array(path: Path, mmap: bool) -> np.ndarray:
    """One `.npy` file, never unpickling; ModelLoadError naming it when missing or corrupt."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: missing (incomplete model directory)") from None
    except (OSError, ValueError, EOFError) as exc:
        raise ModelLoadError(f"{path}: corrupt or not a NumPy array file ({exc})") from exc


def validate_model(model: LocalModel, source: str) -> None:
    """Check dtypes, shapes and cross-array consistency; ModelLoadError names the array."""
    arrays = model.arrays()
    for name, (kinds, ndim) in {**ARRAY_SPECS, **OPTIONAL_ARRAY_SPECS}.items():
        if name not in arrays:
            continue
        array = arrays[name]
        if array.dtype.kind not in kinds or array.ndim != ndim:
            raise ModelLoadError(
                f"{source}: {name}.npy has dtype {array.dtype} and {array.ndim} dimension(s), "
                f"expected kind {kinds!r} with {ndim}"
            )
    n_users, n_items = model.num_users, model.num_items

    def check(ok: bool, name: str, problem: str) -> None:
        if not ok:
            raise ModelLoadError(f"{source}: {name}.npy {problem}")

    uf, itf = model.user_factors, model.item_factors
    check(uf.shape[0] == n_users, "user_factors", f"has {uf.shape[0]} rows for {n_users} users")
    check(itf.shape[0] == n_items, "item_factors", f"has {itf.shape[0]} rows for {n_items} items")
    check(uf.shape[1] == itf.shape[1], "user_factors", "and item_factors differ in factors")
    check(bool(np.isfinite(uf).all()), "user_factors", "holds NaN or infinite values")
    check(bool(np.isfinite(itf).all()), "item_factors", "holds NaN or infinite values")
    check(model.popularity.shape == (n_items,), "popularity", "is not one count per item")
    indptr, indices = model.history_indptr, model.history_indices
    check(len(indptr) == n_users + 1, "history_indptr", f"has {len(indptr)} entries, not users+1")
    check(
        len(indptr) > 0 and indptr[0] == 0 and indptr[-1] == len(indices),
        "history_indptr",
        "does not span history_indices",
    )
    check(bool((np.diff(indptr) >= 0).all()), "history_indptr", "is not non-decreasing")
    check(
        len(indices) == 0 or (indices.min() >= 0 and indices.max() < n_items),
        "history_indices",
        "refers to items outside item_ids",
    )
    if model.trend_items is not None or model.trend_times is not None:
        items, times = model.trend_items, model.trend_times
        check(
            items is not None and times is not None and len(items) == len(times),
            "trend_items",
            "and trend_times are not one time per event",
        )
        check(
            len(items) == 0 or (items.min() >= 0 and items.max() < n_items),  # type: ignore[arg-type,union-attr]
            "trend_items",
            "refers to items outside item_ids",
        )
    check(
        len(model.recent_indptr) == n_users + 1
        and model.recent_indptr[-1] == len(model.recent_items) == len(model.recent_types),
        "recent_indptr",
        "does not span recent_items and recent_types, one row per user",
    )
    check(
        len(model.recent_items) == 0
        or (model.recent_items.min() >= 0 and model.recent_items.max() < n_items),
        "recent_items",
        "refers to items outside item_ids",
    )
    check(
        len(model.recent_types) == 0
        or (model.recent_types.min() >= 0 and model.recent_types.max() < len(model.event_types)),
        "recent_types",
        "refers to event types outside event_types",
    )
    sim_idx, sim_scores = model.similar_indices, model.similar_scores
    check(sim_idx.shape[0] == n_items, "similar_indices", f"has {sim_idx.shape[0]} rows")
    check(
        sim_scores.shape == sim_idx.shape,
        "similar_scores",
        f"has shape {sim_scores.shape}, similar_indices.npy {sim_idx.shape}",
    )
    check(
        sim_idx.size == 0 or (sim_idx.min() >= -1 and sim_idx.max() < n_items),
        "similar_indices",
        "refers to items outside item_ids",
    )
    if model.confidence_indptr is not None:
        cptr, cidx, cdata = model.confidence_indptr, model.confidence_indices, model.confidence_data
        check(
            cidx is not None
            and cdata is not None
            and len(cptr) == n_users + 1
            and cptr[-1] == len(cidx) == len(cdata),
            "confidence_indptr",
            "does not span confidence_indices and confidence_data, one row per user",
        )
        check(
            cidx is None or len(cidx) == 0 or (cidx.min() >= 0 and cidx.max() < n_items),
            "confidence_indices",
            "refers to items outside item_ids",
        )
    normalizer = model.user_log_normalizer
    if normalizer is not None:
        check(
            normalizer.shape == (n_users,),
            "user_log_normalizer",
            f"has shape {normalizer.shape}, expected one value per user ({n_users})",
        )
        check(
            not bool((np.isnan(normalizer) | (normalizer == np.inf)).any()),
            "user_log_normalizer",
            "holds NaN or +infinite values",
        )


def padded_row_head(
    indices: np.ndarray, scores: np.ndarray, count: int
) -> tuple[list[int], list[float]]:
    """The first `count` entries of one row padded with -1 at its end (`similar_*`, the
    precomputed answers), the padding left out, as lists. The row is cut to `count` before
    `tolist` (a similar-items row holds 100 neighbours, an answer asks for 25: a Python
    object per entry left out would cost more than the view), else one `tolist` per array:
    each numpy call costs microseconds on a busy event loop, far more than its work."""
    count = max(count, 0)
    if count < len(indices):
        indices, scores = indices[:count], scores[:count]
    head = indices.tolist()
    if head and head[-1] < 0:
        head = head[: head.index(-1)]
        return head, scores[: len(head)].tolist()
    return head, scores.tolist()
