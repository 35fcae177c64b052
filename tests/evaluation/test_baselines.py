"""The baselines: trained on the split's training data only, answering like a backend."""

from __future__ import annotations

import pyarrow as pa
import pytest

from recs.evaluation.baselines import BASELINE_NAMES, fit_baselines
from recs.evaluation.split import split_interactions


@pytest.fixture(scope="module")
def trained():
    from tests.evaluation.conftest import make_interactions

    split = split_interactions(make_interactions(), seed=0)
    return split, fit_baselines(split.train)


def seen_by(train: pa.Table, user: str) -> set[str]:
    rows = train.filter(pa.compute.equal(train.column("USER_ID"), user))
    return set(rows.column("ITEM_ID").to_pylist())


def test_the_three_baselines(trained) -> None:
    _, baselines = trained
    assert [b.name for b in baselines] == list(BASELINE_NAMES)


def test_recommendations_exclude_the_users_own_items(trained) -> None:
    split, baselines = trained
    user = split.train.column("USER_ID")[0].as_py()
    for baseline in baselines:
        items = baseline.recommend(user, 10)
        assert len(items) == len(set(items)) == 10, baseline.name
        assert not set(items) & seen_by(split.train, user), baseline.name


def test_popularity_orders_by_distinct_users(trained) -> None:
    split, baselines = trained
    popularity = baselines[0]
    counts = split.train.group_by("ITEM_ID").aggregate([("USER_ID", "count_distinct")])
    by_item = dict(zip(*(counts.column(c).to_pylist() for c in counts.column_names), strict=True))
    ranked = popularity.recommend("a user nobody knows", 5)
    assert [by_item[i] for i in ranked] == sorted(by_item.values(), reverse=True)[:5]


def test_rerank_is_a_permutation_with_unknown_items_last(trained) -> None:
    split, baselines = trained
    user = split.train.column("USER_ID")[0].as_py()
    candidates = ["i001", "unknown-1", "i005", "i003", "unknown-2", "i001"]
    for baseline in baselines:
        ranked = baseline.rerank(user, candidates)
        assert sorted(ranked) == sorted(set(candidates)), baseline.name
        assert ranked[-2:] == ["unknown-1", "unknown-2"], baseline.name


def test_unknown_baseline_name() -> None:
    with pytest.raises(ValueError, match="unknown baseline"):
        fit_baselines(pa.table({"USER_ID": ["u"], "ITEM_ID": ["i"]}), names=["nope"])
