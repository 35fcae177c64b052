"""Precomputed answers: every user's top-K recommendations, computed once per model.

The local model does not change between trainings (no events arrive while it serves), so a
user's recommendations are a function of the model alone: scoring them per request repeats
the same product with every item's factors for the same answer. `recs precompute` scores
every user once, in batches on every core, with the very kernel serving uses, and stores the
K best items and their probabilities beside the model; the server then answers
GetRecommendations with `num_results <= K` by a table lookup, which costs microseconds, and
scores the rest exactly. This is what Personalize's batch recommendations are to its
campaigns.

Files in the model directory: `answers_items.npy` (int32, users x K, item indices best
first, -1 after a user's last candidate), `answers_scores.npy` (float64, same shape,
softmax probabilities over the user's candidates) and `answers.json`, which records K
and the fingerprint of the model they were computed from: a table from another model (a
retrained one copied over, say) is refused at load, never served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recs.backends.errors import ModelLoadError
from recs.backends.local.artifacts import LocalModel, load_array, padded_row_head
from recs.backends.local.scoring import recommend_rows

logger = logging.getLogger(__name__)

ITEMS_FILE = "answers_items.npy"
SCORES_FILE = "answers_scores.npy"
# Each user's softmax log-normaliser, found on the way: a filtered call then scores only the
# items its filter allows (scoring.recommend_filtered). Optional: older tables lack it.
NORMALIZERS_FILE = "answers_normalizers.npy"
META_FILE = "answers.json"
DEFAULT_TOP = 25  # GetRecommendations' default num_results
# Users per kernel call: enough for the matrix product (see kernels.GEMM_FROM_ROWS),
# few enough that their scores (users x items floats) stay near the CPU caches.
_BATCH_SCORES = 4 << 20


@dataclass(frozen=True)
class AnswerTable:
    """Each user's `top` best items (row = user index) and their probabilities."""

    items: np.ndarray  # int32 (users, top); -1 pads rows with fewer candidates
    scores: np.ndarray  # float64 (users, top); 0 where items is -1
    normalizers: np.ndarray | None = None  # float64 (users,): log softmax denominators

    @property
    def top(self) -> int:
        return self.items.shape[1]

    def row(self, user: int, num_results: int) -> tuple[list[int], list[float]]:
        """The user's best `num_results` items (model indices) and their scores, as lists."""
        return padded_row_head(self.items[user], self.scores[user], num_results)


def model_fingerprint(model: LocalModel) -> str:
    """A digest of what the answers depend on: the model's metadata (data hashes,
    parameters, training time) and its shape."""
    described = {  # format_version: added by save_model, so a model fits before and after
        "meta": {key: value for key, value in model.meta.items() if key != "format_version"},
        "users": model.num_users,
        "items": model.num_items,
        "factors": int(model.user_factors.shape[1]),
    }
    text = json.dumps(described, sort_keys=True, default=str)  # str: in-memory metas only
    return hashlib.sha256(text.encode()).hexdigest()


def compute_answers(
    model: LocalModel,
    top: int = DEFAULT_TOP,
    threads: int | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> AnswerTable:
    """Score every user exactly (as serving does) and keep their `top` best items."""
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    num_users = model.num_users
    items = np.full((num_users, top), -1, dtype=np.int32)
    scores = np.zeros((num_users, top), dtype=np.float64)
    found_normalizers = np.zeros(num_users, dtype=np.float64)
    items_t = np.ascontiguousarray(np.asarray(model.item_factors, dtype=np.float32).T)
    batch = int(np.clip(_BATCH_SCORES // max(model.num_items, 1), 1, 64))
    normalizers = model.user_log_normalizer

    def score(start: int) -> int:
        stop = min(start + batch, num_users)
        rows = np.arange(start, stop)
        answers = recommend_rows(
            model.user_factors[start:stop],
            items_t,
            rows,
            model.history_indptr,
            model.history_indices,
            [top] * len(rows),
            log_normalizers=None if normalizers is None else normalizers[start:stop],
            out_normalizers=found_normalizers[start:stop],
        )
        for row, (found, probabilities) in zip(rows.tolist(), answers, strict=True):
            items[row, : len(found)] = found
            scores[row, : len(found)] = probabilities
        return stop

    with ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:
        for stop in pool.map(score, range(0, num_users, batch)):
            if on_progress is not None:
                on_progress(stop / num_users)
    if on_progress is not None and num_users == 0:
        on_progress(1.0)
    return AnswerTable(items, scores, found_normalizers)


def save_answers(table: AnswerTable, model: LocalModel, model_dir: Path) -> int:
    """Store `table` in `model_dir`, each file replaced atomically; returns bytes written.

    The metadata goes last: until it names this model, a reader refuses the arrays.
    """
    (model_dir / META_FILE).unlink(missing_ok=True)
    arrays = [(ITEMS_FILE, table.items), (SCORES_FILE, table.scores)]
    if table.normalizers is not None:
        arrays.append((NORMALIZERS_FILE, table.normalizers))
    else:
        (model_dir / NORMALIZERS_FILE).unlink(missing_ok=True)
    for name, array in arrays:
        partial = model_dir / f".{name}.partial"
        with open(partial, "wb") as out:
            np.save(out, array, allow_pickle=False)
        partial.replace(model_dir / name)
    meta = {"top": table.top, "model_fingerprint": model_fingerprint(model)}
    partial = model_dir / f".{META_FILE}.partial"
    partial.write_text(json.dumps(meta, indent=2) + "\n")
    partial.replace(model_dir / META_FILE)
    return (
        sum((model_dir / name).stat().st_size for name, _ in arrays)
        + (model_dir / META_FILE).stat().st_size
    )


def load_answers(model_dir: Path, model: LocalModel) -> AnswerTable | None:
    """The stored answers if they were computed from `model`, else None (with a warning
    saying why and how to recompute them). Absent answers are not worth a warning."""
    meta_path = model_dir / META_FILE
    if not meta_path.is_file():
        return None
    hint = f"recompute them with `recs precompute --model {model_dir}`"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        items = load_array(model_dir / ITEMS_FILE, mmap=True)
        scores = load_array(model_dir / SCORES_FILE, mmap=True)
    except (OSError, ValueError, ModelLoadError) as exc:  # JSON, Unicode: ValueErrors
        logger.warning(
            "precomputed answers in %s unreadable (%s): scoring per request; %s",
            model_dir,
            exc,
            hint,
        )
        return None
    if not isinstance(meta, dict) or meta.get("model_fingerprint") != model_fingerprint(model):
        logger.warning(
            "precomputed answers in %s belong to another model: scoring per request; %s",
            model_dir,
            hint,
        )
        return None
    top = meta.get("top")
    expected = (model.num_users, top)
    if (
        items.shape != expected
        or scores.shape != expected
        or items.dtype != np.int32
        or scores.dtype != np.float64
    ):
        logger.warning(
            "precomputed answers in %s have shapes %s/%s (%s/%s), expected %s "
            "int32/float64: scoring per request; %s",
            model_dir,
            items.shape,
            scores.shape,
            items.dtype,
            scores.dtype,
            expected,
            hint,
        )
        return None
    normalizers = _stored_normalizers(model_dir, model.num_users)
    items, scores = np.asarray(items), np.asarray(scores)
    found = items >= 0
    if items.size and (
        items.min() < -1
        or items.max() >= model.num_items
        or bool((found[:, 1:] & ~found[:, :-1]).any())  # padding only after a row's items
    ):
        logger.warning(
            "precomputed answers in %s name items outside the model or pad rows in the "
            "middle: scoring per request; %s",
            model_dir,
            hint,
        )
        return None
    return AnswerTable(items, scores, normalizers)


def _stored_normalizers(model_dir: Path, num_users: int) -> np.ndarray | None:
    """The table's normalisers when stored and of the right shape (else None, quietly:
    they only make filtered calls cheaper)."""
    path = model_dir / NORMALIZERS_FILE
    if not path.is_file():
        return None
    try:
        normalizers = load_array(path, mmap=True)
    except ModelLoadError:
        return None
    if normalizers.shape != (num_users,) or normalizers.dtype != np.float64:
        return None
    return np.asarray(normalizers)
