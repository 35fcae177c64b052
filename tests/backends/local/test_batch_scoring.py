"""Batched scoring gives the answers of scoring each user alone."""

from __future__ import annotations

import numpy as np
import pytest

from recs.backends.local.artifacts import LocalModel
from recs.backends.local.backend import LocalBackend
from recs.backends.local.kernels import BLOCK, GEMM_FROM_ROWS
from recs.backends.local.scoring import recommend_batch, recommend_rows, recommend_scores


def reference_recommend(
    user: np.ndarray, items: np.ndarray, seen: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The definition, in float64: softmax over unseen items, best n, ties by index."""
    logits = items.astype(np.float64) @ user.astype(np.float64)
    candidates = np.setdiff1d(np.arange(len(items)), seen)
    weights = np.exp(logits[candidates] - logits[candidates].max())
    probabilities = weights / weights.sum()
    order = np.lexsort((candidates, -probabilities))[:n]
    return candidates[order], probabilities[order]


def test_recommend_many_matches_recommend_one_by_one(tiny_model: LocalModel) -> None:
    backend = LocalBackend.from_model(tiny_model)
    requests = [(u, n) for u in [*tiny_model.user_ids.tolist(), "nobody"] for n in (1, 3, 25)]
    together = backend.recommend_many(requests)
    for (user_id, n), answer in zip(requests, together, strict=True):
        alone = backend.recommend(user_id, n)
        assert [i.item_id for i in answer.items] == [i.item_id for i in alone.items]
        assert [i.score for i in answer.items] == pytest.approx(
            [i.score for i in alone.items], rel=1e-5
        )


@pytest.mark.parametrize("num_items", [40, 20 * BLOCK + 17])  # short rows and blocked top-n
@pytest.mark.parametrize("num_users", [9, GEMM_FROM_ROWS + 3])  # per-user products, one product
def test_recommend_batch_follows_the_definition(num_items: int, num_users: int) -> None:
    rng = np.random.default_rng(num_items + num_users)
    items = rng.standard_normal((num_items, 16)).astype(np.float32)
    users = rng.standard_normal((num_users, 16)).astype(np.float32)
    seen = [rng.choice(num_items, size=3 * k % 27, replace=False) for k in range(num_users)]
    ns = [[1, 5, 25, 7, 40, 3, 25, 25, 2][k % 9] for k in range(num_users)]
    batched = recommend_batch(users, items, seen, ns)
    for k in range(len(users)):
        expected_items, expected_scores = reference_recommend(users[k], items, seen[k], ns[k])
        got_items, got_scores = batched[k]
        assert got_items.tolist() == expected_items.tolist()
        np.testing.assert_allclose(got_scores, expected_scores, rtol=1e-5)
        alone_items, alone_scores = recommend_scores(users[k], items, seen[k], ns[k])
        assert alone_items.tolist() == got_items.tolist()
        np.testing.assert_allclose(alone_scores, got_scores, rtol=1e-5)  # float32 products


@pytest.mark.parametrize("num_items", [300, 30 * BLOCK + 5])
def test_ties_come_in_index_order_and_the_blocked_search_misses_none(num_items: int) -> None:
    rng = np.random.default_rng(3)
    # one factor: the dot product is the item's value times the user's; rounded values
    # make many exact ties, spread over blocks the top-n search may skip
    values = np.round(rng.standard_normal(num_items), 1).astype(np.float32)
    items = values[:, np.newaxis]
    users = np.array([[1.0], [2.0], [-1.0]], dtype=np.float32)
    seen = [rng.choice(num_items, 40, replace=False), np.array([], dtype=np.int64)] * 2
    for n in (1, 10, 25, 60):
        batched = recommend_batch(users, items, seen[:3], [n] * 3)
        for k, (got_items, got_scores) in enumerate(batched):
            expected_items, expected_scores = reference_recommend(users[k], items, seen[k], n)
            assert got_items.tolist() == expected_items.tolist()
            np.testing.assert_allclose(got_scores, expected_scores, rtol=1e-5)


def test_stored_normalizers_give_the_computed_scores() -> None:
    rng = np.random.default_rng(5)
    items = rng.standard_normal((5 * BLOCK + 3, 8)).astype(np.float32)
    users = rng.standard_normal((4, 8)).astype(np.float32)
    indptr = np.array([0, 3, 3, 10, 12])
    indices = rng.choice(len(items), 12, replace=False).astype(np.int32)
    items_t = np.ascontiguousarray(items.T)
    rows = np.arange(4)
    computed = recommend_rows(users, items_t, rows, indptr, indices, [7] * 4)
    normalizers = np.array(
        [
            np.log(
                np.exp(reference_logits(users[r], items, indices[indptr[r] : indptr[r + 1]])).sum()
            )
            for r in rows
        ]
    )
    given = recommend_rows(users, items_t, rows, indptr, indices, [7] * 4, normalizers)
    for (a_items, a_scores), (b_items, b_scores) in zip(computed, given, strict=True):
        assert a_items.tolist() == b_items.tolist()
        np.testing.assert_allclose(a_scores, b_scores, rtol=1e-5)


def reference_logits(user: np.ndarray, items: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """The user's float64 dot products with every item outside `seen`."""
    logits = items.astype(np.float64) @ user.astype(np.float64)
    return np.delete(logits, seen)


def test_a_user_who_saw_everything_gets_nothing() -> None:
    items = np.eye(3, dtype=np.float32)
    answers = recommend_batch(
        np.ones((2, 3), dtype=np.float32), items, [np.arange(3), np.array([1])], [5, 5]
    )
    assert answers[0][0].tolist() == []
    assert sorted(answers[1][0].tolist()) == [0, 2]
    assert answers[1][1].sum() == pytest.approx(1.0)
