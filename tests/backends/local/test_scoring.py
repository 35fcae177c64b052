"""Serve-time maths: the two scoring entry points against the softmax definition."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from recs.backends.local.scoring import rank_distinct_scores, rank_scores, recommend_scores


def test_rank_scores_are_stable_for_large_dot_products() -> None:
    item_factors = np.array([[1000.0], [1000.0], [-1000.0]], dtype=np.float32)
    order, scores = rank_scores(np.ones(1, dtype=np.float32), item_factors, np.arange(3))
    assert order.tolist() == [0, 1, 2]
    np.testing.assert_allclose(scores, [0.5, 0.5, 0.0])


@pytest.mark.parametrize("n", [0, 1, 3, 5, 9])
def test_recommend_scores_best_first_ties_by_index(n: int) -> None:
    item_factors = np.array([[0.2], [0.5], [0.2], [0.9], [0.5]], dtype=np.float32)
    items, _ = recommend_scores(np.ones(1, dtype=np.float32), item_factors, np.array([]), n)
    assert items.tolist() == [3, 1, 4, 0, 2][:n]


def test_rank_scores_keeps_input_order_for_ties() -> None:
    item_factors = np.array([[0.2], [0.5], [0.2], [0.9], [0.5]], dtype=np.float32)
    order, _ = rank_scores(np.ones(1, dtype=np.float32), item_factors, np.arange(5))
    assert order.tolist() == [3, 1, 4, 0, 2]


def test_recommend_scores_exclude_seen_and_are_shares_of_every_item() -> None:
    item_factors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    user = np.array([2.0, 1.0], dtype=np.float32)
    items, scores = recommend_scores(user, item_factors, np.array([2]), n=10)
    assert items.tolist() == [0, 1, 3]
    # The softmax runs over every item, the seen item 2 (logit 3) included.
    logits = np.array([2.0, 1.0, 3.0, -2.0])
    shares = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(scores, shares[[0, 1, 3]], rtol=1e-6)
    assert scores.sum() == pytest.approx(1.0 - shares[2])


def test_recommend_scores_head_keeps_full_distribution() -> None:
    item_factors = np.eye(4, dtype=np.float32)
    user = np.array([4.0, 3.0, 2.0, 1.0], dtype=np.float32)
    _, full = recommend_scores(user, item_factors, np.array([], dtype=np.int32), n=4)
    items, head = recommend_scores(user, item_factors, np.array([], dtype=np.int32), n=2)
    assert items.tolist() == [0, 1]
    np.testing.assert_allclose(head, full[:2])


def test_recommend_scores_when_everything_was_seen() -> None:
    items, scores = recommend_scores(
        np.ones(2, dtype=np.float32), np.eye(2, dtype=np.float32), np.array([0, 1]), n=5
    )
    assert items.size == 0 and scores.size == 0


def test_rank_scores_softmax_over_the_given_items() -> None:
    item_factors = np.eye(3, dtype=np.float32)
    user = np.array([0.0, 1.0, 2.0], dtype=np.float32)
    order, scores = rank_scores(user, item_factors, np.array([0, 2]))
    assert order.tolist() == [1, 0]  # positions in the input: item 2 first
    np.testing.assert_allclose(scores, softmax(np.array([2.0, 0.0])))


def test_rank_distinct_scores_ranks_distinct_model_items_with_their_softmax() -> None:
    item_factors = np.array([[0.2], [0.5], [0.2], [0.9], [0.5]], dtype=np.float32)
    user = np.ones(1, dtype=np.float32)
    positions = np.array([4, 0, 3, 2], dtype=np.int64)
    ranked = rank_distinct_scores(user, item_factors, positions)
    assert ranked is not None
    assert ranked[0].tolist() == [2, 0, 1, 3]  # items 3, 4, 0, 2; the tie in input order
    np.testing.assert_allclose(ranked[1], softmax(np.array([0.9, 0.5, 0.2, 0.2])), rtol=1e-6)


@pytest.mark.parametrize(
    "positions", [[4, 0, 4], [1, -1, 2], [-1], [3, 3]], ids=["repeat", "unknown", "only", "pair"]
)
def test_rank_distinct_scores_declines_repeated_or_unknown_items(positions: list[int]) -> None:
    item_factors = np.eye(5, dtype=np.float32)
    assert (
        rank_distinct_scores(
            np.ones(5, dtype=np.float32), item_factors, np.array(positions, dtype=np.int64)
        )
        is None
    )


def test_rank_distinct_scores_finds_a_repeat_among_many_equal_scores() -> None:
    item_factors = np.zeros((600, 2), dtype=np.float32)  # every score equal
    positions = np.array([*range(499), 7], dtype=np.int64)
    user = np.ones(2, dtype=np.float32)
    assert rank_distinct_scores(user, item_factors, positions) is None
    ranked = rank_distinct_scores(user, item_factors, np.arange(500, dtype=np.int64))
    assert ranked is not None and ranked[0].tolist() == list(range(500))
