"""Trending now (backends.local.trending): the formula on constructed logs whose answer is
known, then the local engine's GetTrendingItems from training data, filters and PutEvents."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from recs.backends.base import Event
from recs.backends.filtering import FilterSet
from recs.backends.local.artifacts import load_model
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model, train
from recs.backends.local.trending import REFRESH_SECONDS, TAIL_SECONDS, Trending, training_tail
from recs.pipeline.output import write_csv

HOUR = 3600
NOW = 1_709_251_200


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _events(counts: dict[int, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """item -> (events in the interval before, events in the latest interval), 1 h each."""
    items, times = [], []
    for item, (previous, current) in counts.items():
        items += [item] * (previous + current)
        times += [NOW - HOUR - 60 * (k + 1) for k in range(previous)]
        times += [NOW - 60 * k for k in range(current)]
    order = np.argsort(times, kind="stable")
    return np.array(items)[order], np.array(times)[order]


def test_items_rank_by_increase_then_current_then_popularity() -> None:
    # Popularity order of the model's 6 items: 5, 4, 3, 2, 1, 0.
    popular = np.array([5, 4, 3, 2, 1, 0])
    items, times = _events({0: (1, 5), 1: (0, 3), 2: (6, 2), 3: (0, 4), 4: (1, 5)})
    order, scores = Trending("1h", items, times, popular).ranking()
    # increases: 0: +4, 1: +3, 2: -4, 3: +4, 4: +4, 5: none (0)
    # +4 ties: current 5 (items 0 and 4: popularity puts 4 first), then 3 (current 4).
    assert order.tolist() == [4, 0, 3, 1, 5, 2]
    assert scores.tolist() == pytest.approx([4 / 15, 4 / 15, 4 / 15, 3 / 15, 0, 0])


def test_no_interaction_in_the_two_intervals_gives_the_popular_items() -> None:
    popular = np.array([2, 0, 1])
    order, scores = Trending("1h", None, None, popular).ranking()
    assert order.tolist() == [2, 0, 1] and not scores.any()
    old = np.array([NOW - 10 * HOUR, NOW - 9 * HOUR]), np.array([0, 1])
    trending = Trending("1h", old[1], old[0], popular)
    trending.add([1], [NOW])  # now moves on: the training events are outside both intervals
    assert trending.ranking()[0].tolist() == [1, 2, 0]


def test_the_interval_decides_what_counts() -> None:
    popular = np.array([0, 1])
    # Item 1: 3 events 2-3 h ago, then 1 in the last hour; item 0: 2 in the last hour.
    items = np.array([1, 1, 1, 1, 0, 0])
    times = np.array([NOW - 170 * 60, NOW - 160 * 60, NOW - 150 * 60, NOW - 5, NOW - 4, NOW])
    assert Trending("1h", items, times, popular).ranking()[0].tolist() == [0, 1]
    # With 3 h both fall in the latest interval: item 1 has 4, item 0 has 2.
    assert Trending("3h", items, times, popular).ranking()[0].tolist() == [1, 0]


def test_items_the_model_does_not_know_trend_once_they_have_events() -> None:
    clock = Clock()
    trending = Trending("1h", *_events({0: (2, 2)}), np.array([0, 1]), clock=clock)
    assert trending.ranking()[0].tolist() == [0, 1]
    trending.add([7, 7, 7], [NOW, NOW, NOW])  # universe index 7: a catalog-only video
    assert trending.ranking()[0].tolist() == [0, 1]  # within REFRESH_SECONDS: as it was
    clock.now += REFRESH_SECONDS
    order, scores = trending.ranking()
    assert order.tolist() == [7, 0, 1]
    assert scores[0] == 1.0


def test_training_keeps_the_last_two_days_oldest_first() -> None:
    times = np.array([NOW, NOW - TAIL_SECONDS, NOW - TAIL_SECONDS + 1, NOW - 5])
    items, kept = training_tail(np.array([0, 1, 2, 3]), times)
    assert items.tolist() == [2, 3, 0]
    assert kept.tolist() == [NOW - TAIL_SECONDS + 1, NOW - 5, NOW]


# The local engine ------------------------------------------------------------------------

USERS = [f"u{k}" for k in range(8)]
# v1 is watched by everyone long ago (most popular); v2 rises in the last hour; v3 falls.
ROWS = (
    [(user, "v1", NOW - 30 * HOUR) for user in USERS]
    + [(user, "v3", NOW - HOUR - 600) for user in USERS[:5]]
    + [(user, "v3", NOW - 60) for user in USERS[5:6]]
    + [(user, "v2", NOW - 120 + k) for k, user in enumerate(USERS[:4])]
    + [(user, "v4", NOW - 20 * HOUR) for user in USERS[:6]]
)


def _interactions() -> pa.Table:
    return pa.table(
        {
            "USER_ID": [r[0] for r in ROWS],
            "ITEM_ID": [r[1] for r in ROWS],
            "TIMESTAMP": pa.array([r[2] for r in ROWS], pa.int64()),
            "EVENT_TYPE": ["watched"] * len(ROWS),
        }
    )


PARAMS = TrainParams(factors=4, iterations=3, random_state=0)


def test_the_engine_answers_the_formula_on_its_training_data() -> None:
    backend = LocalBackend.from_model(
        fit_model(_interactions(), PARAMS),
        config=LocalBackendConfig(model_dir=Path("mem"), mmap=False, trend_interval="1h"),
    )
    answer = backend.trending_items(4)
    # v2: +4 (4 in the last hour); v1 and v4: 0 (popularity: v1 8 users, v4 6); v3: 1 - 5 = -4.
    assert answer.item_ids == ["v2", "v1", "v4", "v3"]
    assert answer.scores == [1.0, 0.0, 0.0, 0.0]
    assert backend.trending_items(2).item_ids == ["v2", "v1"]
    assert backend.info().details["trend_interval"] == "1h"


def test_filters_apply_to_the_trending_answer() -> None:
    filters = FilterSet.from_expressions({})  # the default exclude_interacted
    backend = LocalBackend.from_model(
        fit_model(_interactions(), PARAMS),
        config=LocalBackendConfig(model_dir=Path("mem"), mmap=False, trend_interval="1h"),
        filters=filters,
    )
    seen = filters.resolve("exclude_interacted", {})
    # u0 interacted with v1, v2, v3 and v4: nothing left; u7 only with v1.
    assert backend.trending_items(4, "u0", seen).item_ids == []
    assert backend.trending_items(4, "u7", seen).item_ids == ["v2", "v4", "v3"]


def test_put_events_move_the_ranking_new_videos_included(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_csv(_interactions(), data / "interactions.csv")
    write_csv(
        pa.table(
            {"ITEM_ID": ["v1", "v2", "v3", "v4", "fresh"], "TITLE": ["a", "b", "c", "d", "e"]}
        ),
        data / "items.csv",
    )
    train(data, tmp_path / "model", PARAMS)
    assert load_model(tmp_path / "model").trend_items is not None
    backend = LocalBackend(
        LocalBackendConfig(
            model_dir=tmp_path / "model",
            state_dir=tmp_path / "state",
            catalog=data / "items.csv",
            trend_interval="1h",
        )
    )
    backend.start()
    try:
        assert backend.trending_items(1).item_ids == ["v2"]
        # "fresh", a catalog video the model never saw, gets 6 events now: it leads.
        for k in range(6):
            backend.put_events(f"n{k}", f"s{k}", [Event("watched", "fresh", float(NOW + 1))])
        deadline = time.monotonic() + 5 * REFRESH_SECONDS
        while backend.trending_items(1).item_ids != ["fresh"]:
            assert time.monotonic() < deadline, backend.trending_items(3).item_ids
            time.sleep(0.05)
    finally:
        backend.close()
