"""Serve-time scoring: softmax over candidates and top-n selection, vectorised with NumPy.

Scores follow Amazon Personalize's user-personalization recipe: the softmax of the
user-item dot products over the candidate items, so they lie in [0, 1] and sum to 1 over
all candidates. No Python loop touches individual items.

`recommend_batch` scores several users with one matrix product: the item factors (the
big array, 12.8 MB for 50k items x 64 factors) stream through the CPU once per batch
instead of once per user, which is what bounds a single user's matrix-vector product.
Per user it then does one argpartition for the top n and one float32 exp pass for the
softmax normaliser (the log-sum-exp over that user's candidates, computed in the batch:
it depends on which items the user has seen, so it cannot be shared between users).
"""

from __future__ import annotations

from collections.abc import Sequence

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
    return recommend_batch(np.asarray(user_vector)[np.newaxis], item_factors, [seen], [n])[0]


def recommend_batch(
    user_vectors: np.ndarray,
    item_factors: np.ndarray,
    seen: Sequence[np.ndarray],
    ns: Sequence[int],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`recommend_scores` for each row of `user_vectors` (with its `seen` and `n`), at once.

    A batch of one takes the same path, so an answer does not depend on whether its
    request was scored alone or with others (up to float rounding in the matrix product).
    """
    logits = np.asarray(user_vectors, dtype=item_factors.dtype) @ item_factors.T
    if logits.dtype != np.float32 and logits.dtype != np.float64:
        logits = logits.astype(np.float64)
    answers = []
    num_items = logits.shape[1]
    for row, seen_items, n in zip(logits, seen, ns, strict=True):
        row[seen_items] = -np.inf
        n = min(n, num_items - len(seen_items))
        if n <= 0:
            answers.append((np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float64)))
            continue
        best = top_n(row, n)
        peak = np.float64(row[best[0]])
        # The softmax normaliser over the candidates (seen items are -inf: exp gives 0),
        # in the row's precision with a float64 sum; the returned heads in float64.
        normaliser = np.exp(row - row.dtype.type(peak)).sum(dtype=np.float64)
        answers.append((best, np.exp(row[best].astype(np.float64) - peak) / normaliser))
    return answers


def rank_scores(
    user_vector: np.ndarray, item_factors: np.ndarray, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Order `items` (item indices) best first for a user, with the softmax over them."""
    probabilities = softmax(item_factors[items] @ user_vector)
    order = top_n(probabilities, len(items))
    return order, probabilities[order]
