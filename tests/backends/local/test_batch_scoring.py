"""Batched scoring gives the answers of scoring each user alone."""

from __future__ import annotations

import numpy as np
import pytest

from backends.local.artifacts import LocalModel
from backends.local.backend import LocalBackend
from backends.local.scoring import BLOCK, recommend_batch, recommend_scores, top_n, top_n_rows


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
def test_recommend_batch_follows_the_definition(num_items: int) -> None:
    rng = np.random.default_rng(num_items)
    items = rng.standard_normal((num_items, 16)).astype(np.float32)
    users = rng.standard_normal((9, 16)).astype(np.float32)
    seen = [rng.choice(num_items, size=k, replace=False) for k in range(0, 27, 3)]
    ns = [1, 5, 25, 7, 40, 3, 25, 25, 2]
    batched = recommend_batch(users, items, seen, ns)
    for k in range(len(users)):
        expected_items, expected_scores = reference_recommend(users[k], items, seen[k], ns[k])
        got_items, got_scores = batched[k]
        assert got_items.tolist() == expected_items.tolist()
        np.testing.assert_allclose(got_scores, expected_scores, rtol=1e-5)
        alone_items, alone_scores = recommend_scores(users[k], items, seen[k], ns[k])
        assert alone_items.tolist() == got_items.tolist()
        np.testing.assert_allclose(alone_scores, got_scores, rtol=1e-5)  # float32 products


def test_blocked_top_n_keeps_every_tie_in_index_order() -> None:
    rng = np.random.default_rng(3)
    scores = np.round(rng.standard_normal(30 * BLOCK), 1).astype(np.float32)  # many ties
    scores[rng.choice(len(scores), 500, replace=False)] = -np.inf
    for n in (1, 10, 25):
        best = top_n(scores, n)
        reference = np.lexsort((np.arange(len(scores)), -scores))[:n]
        assert scores[best].tolist() == scores[reference].tolist()
        assert np.all(np.diff(scores[best]) <= 0)


def test_a_user_who_saw_everything_gets_nothing() -> None:
    items = np.eye(3, dtype=np.float32)
    answers = recommend_batch(
        np.ones((2, 3), dtype=np.float32), items, [np.arange(3), np.array([1])], [5, 5]
    )
    assert answers[0][0].tolist() == []
    assert sorted(answers[1][0].tolist()) == [0, 2]
    assert answers[1][1].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("length", [300, 30 * BLOCK + 5])
def test_top_n_rows_matches_the_definition_row_by_row(length: int) -> None:
    rng = np.random.default_rng(length)
    rows = rng.standard_normal((6, length)).astype(np.float32)
    rows[3] = np.round(rows[3], 1)  # many ties: the blocked selection must still be exact
    rows[4, : length // 2] = -np.inf
    for n in (1, 7, 25):
        best = top_n_rows(rows, n)
        for r, row in enumerate(rows):
            reference = np.lexsort((np.arange(length), -row))[:n]
            assert row[best[r]].tolist() == row[reference].tolist()
            if r != 3:
                assert best[r].tolist() == reference.tolist()
