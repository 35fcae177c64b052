"""`recs evaluate replay` on a constructed dataset where learning from events must help."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from recs.backends.local.artifacts import save_model
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model
from recs.cli.main import main
from recs.evaluation.replay import Scores, choose_cold_users
from recs.evaluation.split import read_train
from recs.pipeline.dataset import read_interactions
from recs.pipeline.output import write_interactions

GROUP_ITEMS = 40  # group A: a00..a39, group B: b00..b39


def two_taste_groups(num_users: int = 80, seed: int = 0) -> pa.Table:
    """Users watch within one of two groups of items; odd users switch to the other group
    for their newest 40% of events, so what they do next is only learnable from events."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {"USER_ID": [], "ITEM_ID": [], "TIMESTAMP": [], "EVENT_TYPE": []}
    popularity = 1.0 / np.arange(1, GROUP_ITEMS + 1)
    popularity /= popularity.sum()
    for user in range(num_users):
        first, second = ("a", "b") if user % 2 == 0 else ("b", "a")
        count = 30
        items = rng.choice(GROUP_ITEMS, size=count, replace=False, p=popularity)
        switch = count if user % 4 < 2 else int(count * 0.6)
        for position, item in enumerate(items):
            group = first if position < switch else second
            rows["USER_ID"].append(f"u{user:03d}")
            rows["ITEM_ID"].append(f"{group}{item:02d}")
            rows["TIMESTAMP"].append(1_700_000_000 + 60 * position)
            rows["EVENT_TYPE"].append("watched")
    return pa.table(
        {
            "USER_ID": pa.array(rows["USER_ID"], pa.string()),
            "ITEM_ID": pa.array(rows["ITEM_ID"], pa.string()),
            "TIMESTAMP": pa.array(rows["TIMESTAMP"], pa.int64()),
            "EVENT_TYPE": pa.array(rows["EVENT_TYPE"], pa.string()),
        }
    )


@pytest.fixture
def split_and_model(tmp_path):
    data = write_interactions(two_taste_groups(), tmp_path / "data")
    split = tmp_path / "split"
    assert main(["evaluate", "split", "--data", str(data), "--out", str(split), "--seed", "1"]) == 0
    train = read_train(split)
    model = fit_model(train, TrainParams(factors=8, iterations=10, regularization=0.05))
    save_model(model, tmp_path / "model")
    return split, tmp_path / "model"


def test_replay_command_real_time_beats_static_and_cold_beats_popularity(
    split_and_model, tmp_path, capsys
) -> None:
    split, model = split_and_model
    out = tmp_path / "replay.json"
    status = main(
        [
            "evaluate", "replay", "--split", str(split), "--model", str(model),
            "--cold-fraction", "0.5", "--json", str(out),
        ]
    )  # fmt: skip
    assert status == 0
    printed = capsys.readouterr().out
    assert "real-time" in printed and "popularity" in printed and "replayed 4 test users" in printed
    document = json.loads(out.read_text())
    assert document["warm_users"] == 4 and document["cold_users"] == 4
    warm, cold = document["warm"], document["cold"]
    assert warm["realtime"]["steps"] == warm["static"]["steps"] > 0
    assert warm["realtime"]["hr"] >= warm["static"]["hr"]
    assert cold["realtime"]["steps"] > 0
    assert cold["realtime"]["hr"] > cold["popularity"]["hr"]
    assert cold["realtime"]["hr"] > cold["static"]["hr"]


def test_switching_users_are_learned_only_in_real_time(tmp_path, capsys) -> None:
    """Every test user switches group and the held-out part is the switch: the static answer
    (the old group) misses, the real-time one follows the new group."""
    table = two_taste_groups(num_users=40)
    users = table.column("USER_ID").to_pylist()
    times = table.column("TIMESTAMP").to_numpy()
    switchers = {f"u{u:03d}" for u in range(40) if u % 4 >= 2}
    test = sorted(switchers)[:6]
    # Held out: the test users' newest 12 events (the last 12 of 30: all after the switch).
    held = np.array([u in test for u in users]) & (times >= 1_700_000_000 + 60 * 18)
    split = tmp_path / "split"
    write_interactions(table.filter(pa.array(~held)), split / "train")
    write_interactions(table.filter(pa.array(held)), split / "holdout")
    (split / "split.json").write_text(json.dumps({"seed": 0}))
    (split / "test_users.csv").write_text("USER_ID\n" + "\n".join(test) + "\n")
    model = fit_model(read_interactions(split / "train"), TrainParams(factors=8, iterations=10))
    save_model(model, tmp_path / "model")
    out = tmp_path / "replay.json"
    status = main(
        [
            "evaluate", "replay", "--split", str(split), "--model", str(tmp_path / "model"),
            "--cold-fraction", "0", "--json", str(out),
        ]
    )  # fmt: skip
    assert status == 0
    warm = json.loads(out.read_text())["warm"]
    assert warm["realtime"]["hr"] > max(2 * warm["static"]["hr"], warm["static"]["hr"] + 0.05)


def test_scores_leave_out_repeats_and_early_steps() -> None:
    scores = Scores()
    scores.add("u", 0, ["x", "y"], "y", 10, repeat=False)  # hit at rank 2
    scores.add("u", 1, ["x"], "x", 10, repeat=True)  # repeat: left out by default
    scores.add("v", 5, ["z"], "w", 10, repeat=False)  # miss
    summary = scores.summary()
    assert summary["steps"] == 2 and summary["hr"] == 0.5
    assert summary["ndcg"] == pytest.approx((1 / np.log2(3)) / 2)
    assert scores.summary(repeats=True)["steps"] == 3
    assert scores.summary(min_seen=5) == {
        "hr": 0.0, "ndcg": 0.0, "hr_user": 0.0, "ndcg_user": 0.0, "steps": 1, "users": 1
    }  # fmt: skip


def test_cold_users_are_seeded_and_bounded() -> None:
    users = [f"u{k}" for k in range(10)]
    assert choose_cold_users(users, 0.3, 0) == choose_cold_users(users, 0.3, 0)
    assert len(choose_cold_users(users, 0.3, 0)) == 3
    assert choose_cold_users(users, 0.0, 0) == []
    with pytest.raises(ValueError):
        choose_cold_users(users, 1.0, 0)


def test_replay_refuses_a_directory_that_is_not_a_split(tmp_path, caplog) -> None:
    status = main(["evaluate", "replay", "--split", str(tmp_path), "--model", str(tmp_path)])
    assert status == 1
    assert "not a split directory" in caplog.text
