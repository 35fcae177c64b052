"""The split's invariants: Personalize's protocol, disjoint holdout, seeded reproducibility."""

from __future__ import annotations

import collections

import pyarrow as pa
import pytest

from recs.evaluation.split import (
    holdout_count,
    read_holdout,
    read_manifest,
    read_train,
    read_training_side,
    split_interactions,
    write_split,
)
from recs.pipeline.dataset import read_interactions
from recs.pipeline.output import write_interactions


def rows(table: pa.Table) -> collections.Counter:
    columns = [table.column(c).to_pylist() for c in table.column_names]
    return collections.Counter(zip(*columns, strict=True))


def test_every_row_is_in_exactly_one_side(interactions: pa.Table) -> None:
    split = split_interactions(interactions, seed=1)
    assert rows(split.train) + rows(split.holdout) == rows(interactions)


def test_ten_percent_of_users_are_test_users_each_with_a_holdout(interactions: pa.Table) -> None:
    split = split_interactions(interactions, seed=1)
    assert len(split.test_users) == 6  # 10% of 60
    assert set(split.holdout.column("USER_ID").to_pylist()) == set(split.test_users)


def test_holdout_is_each_test_users_newest_ten_percent(interactions: pa.Table) -> None:
    split = split_interactions(interactions, seed=3)
    by_user = collections.defaultdict(list)
    for row in interactions.to_pylist():
        by_user[row["USER_ID"]].append(row)
    held = collections.Counter(split.holdout.column("USER_ID").to_pylist())
    train_times = collections.defaultdict(list)
    for row in split.train.to_pylist():
        train_times[row["USER_ID"]].append(row["TIMESTAMP"])
    for user in split.test_users:
        assert held[user] == holdout_count(len(by_user[user]))
        held_times = [r["TIMESTAMP"] for r in split.holdout.to_pylist() if r["USER_ID"] == user]
        # Nothing kept as input is newer than anything held out.
        assert max(train_times[user], default=0) <= min(held_times)


@pytest.mark.parametrize(
    ("count", "expected"), [(1, 1), (5, 1), (10, 1), (11, 2), (15, 2), (20, 2), (21, 3)]
)
def test_holdout_count_is_ceil_of_ten_percent_and_at_least_one(count: int, expected: int) -> None:
    assert holdout_count(count) == expected


def test_same_seed_same_split_other_seed_other_users(interactions: pa.Table) -> None:
    first = split_interactions(interactions, seed=7)
    again = split_interactions(interactions, seed=7)
    assert rows(first.holdout) == rows(again.holdout)
    assert first.test_users != split_interactions(interactions, seed=8).test_users


def test_split_does_not_depend_on_row_order(interactions: pa.Table) -> None:
    reversed_rows = interactions.take(pa.array(range(interactions.num_rows - 1, -1, -1)))
    assert rows(split_interactions(reversed_rows, seed=2).holdout) == rows(
        split_interactions(interactions, seed=2).holdout
    )


def test_eligible_users_limits_who_is_drawn(interactions: pa.Table) -> None:
    eligible = [f"u{n:03d}" for n in range(0, 60, 2)]
    split = split_interactions(interactions, seed=0, eligible_users=eligible)
    assert set(split.test_users) <= set(eligible)
    assert len(split.test_users) == 3  # 10% of the 30 eligible users


def test_bad_fraction_is_rejected(interactions: pa.Table) -> None:
    with pytest.raises(ValueError, match="test_user_fraction"):
        split_interactions(interactions, test_user_fraction=0.0)


def test_written_split_round_trips_and_train_is_a_prepared_dataset(
    interactions: pa.Table, tmp_path
) -> None:
    source = write_interactions(interactions, tmp_path / "data")
    (source / "items.csv").write_text("ITEM_ID,TITLE\ni000,Zero\n")
    split = split_interactions(read_interactions(source), seed=4)
    out = write_split(split, tmp_path / "split", source, {"seed": 4})
    assert rows(read_train(out)) == rows(split.train)
    assert rows(read_holdout(out)) == rows(split.holdout)
    assert (out / "train" / "items.csv").read_text() == "ITEM_ID,TITLE\ni000,Zero\n"
    assert (out / "train" / "interactions.schema.json").is_file()
    manifest = read_manifest(out)
    assert manifest["seed"] == 4
    assert manifest["counts"]["test_users"] == 6
    assert manifest["counts"]["holdout_interactions"] == split.holdout.num_rows


def test_training_side_of_a_split_names_its_test_users_without_the_holdout(
    interactions: pa.Table, tmp_path
) -> None:
    split = split_interactions(interactions, seed=6)
    out = write_split(split, tmp_path / "split", None, {"seed": 6})
    (out / "holdout" / "interactions.csv").unlink()
    for path in (out, out / "train"):
        train, test_users = read_training_side(path)
        assert rows(train) == rows(split.train)
        assert test_users == split.test_users
    plain = write_interactions(interactions, tmp_path / "plain")
    assert read_training_side(plain)[1] == []
