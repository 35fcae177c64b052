"""Item exploration (backends.local.exploration): which videos count as new, their factors
from their categories, how many slots they get and where, and the local engine's answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from recs.backends.base import CatalogItem
from recs.backends.filtering import FilterSet
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.backends.local.exploration import (
    DAY,
    EXPLORATION_REASON,
    NewItems,
    exploration_slots,
    explore,
    find_new_items,
)
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model
from recs.pipeline.output import write_csv

NOW = 1_709_251_200


def test_new_items_are_recent_unknown_videos_with_a_known_category() -> None:
    factors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    universe = {"c1": 0, "m1": 1, "cm": 2, "new": 3, "old": 4, "odd": 5, "bare": 6}
    catalog = pa.table(
        {
            "ITEM_ID": ["c1", "m1", "cm", "new", "old", "odd", "bare"],
            "CATEGORIES": [
                "comedy",
                "music",
                "Comedy|music",
                "comedy|music",
                "comedy",
                "opera",
                None,
            ],
            "CREATION_TIMESTAMP": [0, 0, 0, NOW - DAY, NOW - 40 * DAY, NOW, NOW],
        }
    )
    new = find_new_items(factors, universe, catalog, [], float(NOW), 30.0)
    assert new.items.tolist() == [3]  # old: too old; odd: no known category; bare: none
    comedy = (factors[0] + factors[2]) / 2  # c1 and cm
    music = (factors[1] + factors[2]) / 2  # m1 and cm
    assert new.factors[0] == pytest.approx((comedy + music) / 2)
    # PutItems' version of a video wins: "old" re-created today becomes new.
    added = [CatalogItem("old", properties={"CATEGORIES": "music", "CREATION_TIMESTAMP": str(NOW)})]
    new = find_new_items(factors, universe, catalog, added, float(NOW), 30.0)
    assert new.items.tolist() == [3, 4]
    assert new.factors[1] == pytest.approx(music)


@pytest.mark.parametrize(
    ("weight", "n", "slots"), [(0, 10, 0), (0.3, 10, 2), (0.3, 20, 3), (1, 10, 5), (1, 25, 13)]
)
def test_slots_follow_the_weight(weight: float, n: int, slots: int) -> None:
    assert exploration_slots(weight, n) == slots


def _names(items: np.ndarray) -> list[str]:
    return [f"n{i}" for i in items]


def test_the_best_new_items_for_the_user_are_spread_through_the_answer() -> None:
    new = NewItems(np.array([10, 11, 12]), np.array([[1, 0], [0, 1], [2, 0]], dtype=np.float32))
    base = [f"b{k}" for k in range(10)]
    items, scores, marked = explore(
        base, [0.1] * 10, np.array([1.0, 0.0]), new, _names, None, 0.6, 10, None
    )
    # 3 slots: n12 (dot 2), n10 (dot 1), n11 (dot 0), at evenly spread positions.
    assert len(items) == 10
    assert [items[p] for p in sorted(marked)] == ["n12", "n10", "n11"]
    assert sorted(marked) == [1, 5, 8]
    assert [i for i in items if i.startswith("b")] == base[:7]
    assert all(scores[p] == 0.0 for p in marked)  # no normaliser: no score


def test_the_filter_mask_and_a_weight_of_zero_keep_new_items_out() -> None:
    new = NewItems(np.array([3, 4]), np.array([[1, 0], [2, 0]], dtype=np.float32))
    allowed = np.array([True, True, True, True, False])
    items, _, marked = explore(
        ["a", "b"], [0.5, 0.4], np.array([1.0, 0]), new, _names, allowed, 1.0, 2, 0.0
    )
    assert [items[p] for p in marked] == ["n3"]
    items, _, marked = explore(
        ["a", "b"], [0.5, 0.4], np.array([1.0, 0]), new, _names, None, 0.0, 2, 0.0
    )
    assert items == ["a", "b"] and not marked


# The local engine ------------------------------------------------------------------------

COMEDY = [f"c{k}" for k in range(6)]
MUSIC = [f"m{k}" for k in range(6)]


def _model_and_catalog(tmp_path: Path) -> tuple[object, Path]:
    rows = []
    for u in range(12):
        fan_of = COMEDY if u % 2 == 0 else MUSIC
        for k, item in enumerate(fan_of[: 3 + u % 3]):
            rows.append((f"u{u}", item, NOW - 3600 * (u + k)))
    interactions = pa.table(
        {
            "USER_ID": [r[0] for r in rows],
            "ITEM_ID": [r[1] for r in rows],
            "TIMESTAMP": pa.array([r[2] for r in rows], pa.int64()),
            "EVENT_TYPE": ["watched"] * len(rows),
        }
    )
    model = fit_model(interactions, TrainParams(factors=4, iterations=10, random_state=0))
    ids = [*COMEDY, *MUSIC, "new_comedy", "new_music", "old_comedy"]
    catalog = pa.table(
        {
            "ITEM_ID": ids,
            "TITLE": ids,
            "CATEGORIES": ["comedy"] * 6 + ["music"] * 6 + ["comedy", "music", "comedy"],
            "CREATION_TIMESTAMP": [NOW - 90 * DAY] * 12 + [NOW - DAY, NOW - DAY, NOW - 60 * DAY],
        }
    )
    path = tmp_path / "items.csv"
    write_csv(catalog, path)
    return model, path


def _backend(tmp_path: Path, weight: float) -> LocalBackend:
    model, catalog = _model_and_catalog(tmp_path)
    config = LocalBackendConfig(
        model_dir=tmp_path / "mem", mmap=False, catalog=catalog, exploration_weight=weight
    )
    return LocalBackend.from_model(model, config=config, filters=FilterSet.from_expressions({}))


def test_a_new_video_reaches_the_users_whose_taste_matches_its_category(tmp_path: Path) -> None:
    backend = _backend(tmp_path, 0.4)  # 10 results: 2 slots, both new videos
    for user, first_new in (("u0", "new_comedy"), ("u1", "new_music")):
        answer = backend.recommend(user, 10)
        # Picks fill the spread positions best first: the first is the user's best new video.
        explored = [answer.item_ids[p] for p in sorted(answer.reasons or {})]
        assert explored[0] == first_new
        assert set(explored) == {"new_comedy", "new_music"}
        assert all(r == (EXPLORATION_REASON,) for r in (answer.reasons or {}).values())
        assert "old_comedy" not in answer.item_ids  # older than the cut-off
    assert backend.info().details["exploration_weight"] == "0.4"


def test_without_exploration_no_new_video_is_recommended(tmp_path: Path) -> None:
    backend = _backend(tmp_path, 0.0)
    answer = backend.recommend("u0", 10)
    assert not answer.reasons
    assert not {"new_comedy", "new_music"} & set(answer.item_ids)


def test_a_video_on_demand_catalog_gives_its_genres() -> None:
    factors = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    universe = {"c1": 0, "m1": 1, "new": 2}
    catalog = pa.table(
        {
            "ITEM_ID": ["c1", "m1", "new"],
            "GENRES": ["Comedy", "Music", "Comedy"],
            "CREATION_TIMESTAMP": [0, 0, NOW],
        }
    )
    new = find_new_items(factors, universe, catalog, [], float(NOW), 30.0)
    assert new.items.tolist() == [2]
    assert new.factors[0] == pytest.approx(factors[0])
