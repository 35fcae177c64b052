"""Metrics against hand-computed examples, including Personalize's documented ones."""

from __future__ import annotations

import math

import pytest

from recs.evaluation.metrics import (
    auc,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    reciprocal_rank_at_k,
    recommendation_metrics,
)


def ranked_with_hits_at(positions: list[int], length: int = 25) -> tuple[list[str], set[str]]:
    """A ranked list of `length` ids whose items at the 1-based `positions` are relevant."""
    ranked = [f"i{rank}" for rank in range(1, length + 1)]
    return ranked, {f"i{p}" for p in positions} | {"never-recommended"}


def test_ndcg_matches_personalize_documented_example() -> None:
    ranked, relevant = ranked_with_hits_at([2, 5])
    assert ndcg_at_k(ranked, relevant, 5) == pytest.approx(0.6241, abs=5e-5)
    expected = (1 / math.log(3) + 1 / math.log(6)) / (1 / math.log(2) + 1 / math.log(3))
    assert ndcg_at_k(ranked, relevant, 5) == pytest.approx(expected)


def test_ndcg_ideal_counts_only_hits_inside_the_top_k() -> None:
    ranked, relevant = ranked_with_hits_at([1, 7])
    assert ndcg_at_k(ranked, relevant, 5) == pytest.approx(1.0)  # one hit, at rank 1
    assert ndcg_at_k(ranked, relevant, 10) == pytest.approx(
        (1 + 1 / math.log2(8)) / (1 + 1 / math.log2(3))
    )
    assert ndcg_at_k(ranked, {"nowhere"}, 10) == 0.0


def test_mrr_matches_personalize_documented_example() -> None:
    users = {"a": [4, 10], "b": [2, 4, 12], "c": [6]}
    recommended, relevant = {}, {}
    for user, positions in users.items():
        recommended[user], relevant[user] = ranked_with_hits_at(positions)
    metrics = recommendation_metrics(recommended, relevant, ks=[25])
    assert metrics["mean_reciprocal_rank_at_25"] == pytest.approx(0.3056, abs=5e-5)
    assert reciprocal_rank_at_k(*ranked_with_hits_at([30], length=40), k=25) == 0.0


def test_precision_and_recall() -> None:
    ranked, relevant = ranked_with_hits_at([1, 4, 9])
    assert precision_at_k(ranked, relevant, 10) == pytest.approx(0.30)
    assert precision_at_k(ranked, relevant, 5) == pytest.approx(2 / 5)
    assert recall_at_k(ranked, relevant, 5) == pytest.approx(2 / 4)  # 4 relevant items
    assert recall_at_k(ranked, set(), 5) == 0.0


def test_repeated_item_counts_once() -> None:
    assert precision_at_k(["a", "a", "b"], {"a"}, 3) == pytest.approx(1 / 3)


def test_recommendation_metrics_average_over_users_and_cover_the_catalog() -> None:
    recommended = {"u1": ["a", "b", "c", "d", "e"], "u2": ["a", "f", "g", "h", "i"]}
    relevant = {"u1": {"a"}, "u2": {"x"}, "u3": {"a"}}  # u3 got nothing: counts as 0
    metrics = recommendation_metrics(recommended, relevant, ks=[5], num_dataset_items=18)
    assert metrics["precision_at_5"] == pytest.approx((1 / 5) / 3)
    assert metrics["normalized_discounted_cumulative_gain_at_5"] == pytest.approx(1 / 3)
    assert metrics["mean_reciprocal_rank_at_25"] == pytest.approx(1 / 3)
    assert metrics["coverage"] == pytest.approx(9 / 18)


def test_auc_counts_correctly_ordered_pairs() -> None:
    assert auc(["p", "n1", "n2"], {"p"}) == 1.0
    assert auc(["n1", "n2", "p"], {"p"}) == 0.0
    # p1 beats n1, n2; p2 beats n2 only: 3 of 4 pairs.
    assert auc(["p1", "n1", "p2", "n2"], {"p1", "p2"}) == pytest.approx(3 / 4)
    assert math.isnan(auc(["p"], {"p"}))


def test_ranking_metrics() -> None:
    ranked = {"u1": ["p", "n1", "n2"], "u2": ["n1", "p", "n2"]}
    metrics = ranking_metrics(ranked, {"u1": {"p"}, "u2": {"p"}})
    assert metrics["ranking_auc"] == pytest.approx((1.0 + 0.5) / 2)
    assert metrics["ranking_ndcg"] == pytest.approx((1.0 + 1 / math.log2(3)) / 2)
