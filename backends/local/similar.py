"""Precomputed similar items (the local emulation of SIMS), kept as top-K neighbour lists.

Three methods, chosen by `TrainParams.similar_method` (see bench/similar_items.py for the
measurement that picked the default):

- `cosine`: implicit's CosineRecommender, cosine of item columns of the user-item
  confidence matrix: co-occurrence in user histories, as SIMS does;
- `bm25`: implicit's BM25Recommender, the same co-occurrence with BM25 weighting that
  discounts very active users and very popular items;
- `als`: cosine of the ALS item factors.

Every method yields, per item, at most K other items with a positive similarity, best
first (ties by item index), scores in [0, 1] (bm25 scores are scaled by each item's best
neighbour's, since raw BM25 similarities are unbounded).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender
from implicit.utils import ParameterWarning

# Rows of the ALS item-item similarity computed at once: bounds memory to
# _ALS_BLOCK * num_items float32 values.
_ALS_BLOCK = 512


def similar_neighbours(
    user_items: sp.csr_matrix,
    item_factors: np.ndarray,
    method: str,
    k: int,
    on_progress: Callable[[float], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-`k` neighbours of every item: (indices int32, scores float32), shape (items, k).

    Rows are padded with index -1 and score 0 where an item has fewer than `k` neighbours.
    `on_progress` receives the fraction done (ALS method only reports along the way).
    """
    n_items = user_items.shape[1]
    if method == "als":
        rows, cols, scores = _als_pairs(item_factors, k, on_progress)
    elif method in ("cosine", "bm25"):
        recommender = CosineRecommender if method == "cosine" else BM25Recommender
        knn = recommender(K=k + 1, num_threads=0)  # +1: an item is usually its own best match
        with warnings.catch_warnings():  # implicit converts its own COO product to CSR
            warnings.simplefilter("ignore", ParameterWarning)
            knn.fit(user_items, show_progress=False)
        similarity = knn.similarity.tocoo()
        rows, cols, scores = similarity.row, similarity.col, similarity.data
    else:
        raise ValueError(f"unknown similar_method {method!r}")
    indices, values = _top_k_table(rows, cols, scores, n_items, k)
    if method == "bm25":
        best = values[:, :1]
        values = np.divide(values, best, out=np.zeros_like(values), where=best > 0)
    if on_progress is not None:
        on_progress(1.0)
    return indices, np.clip(values, 0.0, 1.0).astype(np.float32)


def _als_pairs(
    item_factors: np.ndarray, k: int, on_progress: Callable[[float], None] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k+1 most cosine-similar items of every item, as (row, col, score) triples."""
    factors = np.asarray(item_factors, dtype=np.float32)
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    unit = np.divide(factors, norms, out=np.zeros_like(factors), where=norms > 0)
    n_items = len(unit)
    take = min(k + 1, n_items)
    rows, cols, scores = [], [], []
    for start in range(0, n_items, _ALS_BLOCK):
        block = unit[start : start + _ALS_BLOCK] @ unit.T
        top = np.argpartition(-block, take - 1, axis=1)[:, :take]
        rows.append(np.repeat(np.arange(start, start + len(block)), take))
        cols.append(top.ravel())
        scores.append(np.take_along_axis(block, top, axis=1).ravel())
        if on_progress is not None:
            on_progress(min(1.0, (start + len(block)) / n_items))
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(scores)


def _top_k_table(
    rows: np.ndarray, cols: np.ndarray, scores: np.ndarray, n_items: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Scatter (row, col, score) triples into per-row top-k tables, excluding self-pairs."""
    keep = (rows != cols) & (scores > 0)
    rows, cols, scores = rows[keep], cols[keep], scores[keep]
    order = np.lexsort((cols, -scores, rows))  # by row, best score first, ties by index
    rows, cols, scores = rows[order], cols[order], scores[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
    within = rank < k
    indices = np.full((n_items, k), -1, dtype=np.int32)
    values = np.zeros((n_items, k), dtype=np.float32)
    indices[rows[within], rank[within]] = cols[within]
    values[rows[within], rank[within]] = scores[within]
    return indices, values
