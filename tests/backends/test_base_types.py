"""The domain types every backend returns."""

from __future__ import annotations

import pytest

from recs.backends.base import Recommendations, ScoredItem


def test_an_answer_pairs_each_item_with_its_score() -> None:
    answer = Recommendations.of([ScoredItem("v1", 0.75), ScoredItem("v2", 0.25)], "rid")
    assert answer == Recommendations(["v1", "v2"], [0.75, 0.25], "rid")
    assert answer.items == [ScoredItem("v1", 0.75), ScoredItem("v2", 0.25)]


def test_ids_and_scores_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="2 item ids but 1 scores"):
        Recommendations(["v1", "v2"], [0.5])
