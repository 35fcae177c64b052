"""Serve-time scoring: softmax over candidates and top-n selection, vectorised with NumPy.

Scores follow Amazon Personalize's user-personalization recipe: the softmax of the
user-item dot products over the candidate items, so they lie in [0, 1] and sum to 1 over
all candidates. Per request this is one matrix-vector product, one exp and one
argpartition; no Python loop touches individual items.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax in float64; entries of -inf get probability 0."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.size == 0:
        return logits
    shifted = logits - logits.max()
    weights = np.exp(shifted)
    return weights / weights.sum()


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the `n` highest scores, best first; equal scores in index order."""
    n = min(max(n, 0), len(scores))
    if n == 0:
        return np.empty(0, dtype=np.intp)
    # Take the n best (argpartition is O(len)), then order just those.
    candidates = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    candidates = np.sort(candidates)  # index order, so the stable sort breaks ties by index
    return candidates[np.argsort(-scores[candidates], kind="stable")]


def recommend_scores(
    user_vector: np.ndarray, item_factors: np.ndarray, seen: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The best `n` unseen items for a user: (item indices, softmax probabilities).

    The softmax runs over every item not in `seen`, so the probabilities of all
    candidates sum to 1 and any top-n slice is that distribution's head.
    """
    logits = (item_factors @ user_vector).astype(np.float64)
    logits[seen] = -np.inf
    n = min(n, len(logits) - len(seen))
    if n <= 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float64)
    probabilities = softmax(logits)
    best = top_n(probabilities, n)
    return best, probabilities[best]


def rank_scores(
    user_vector: np.ndarray, item_factors: np.ndarray, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Order `items` (item indices) best first for a user, with the softmax over them."""
    probabilities = softmax(item_factors[items] @ user_vector)
    order = top_n(probabilities, len(items))
    return order, probabilities[order]
