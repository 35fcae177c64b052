"""The backend contract on the local engine: trained by `train`, loaded from disk, serving
the contract's filters against the dataset's items.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from recs.backends.base import Backend
from recs.backends.filtering import FilterSet
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model, train
from recs.pipeline.dataset import read_interactions
from tests.backends.contract import ALL, BackendContract
from tests.backends.filter_reference import ReferenceFilters
from tests.backends.local.conftest import FAST_PARAMS


class TestLocalBackendContract(BackendContract):
    def make_backend(self, dataset_dir: Path) -> Backend:
        model_dir = self.tmp_path_factory.mktemp("local") / "model"
        train(dataset_dir, model_dir, TrainParams())
        backend = LocalBackend(LocalBackendConfig(model_dir=model_dir, catalog=dataset_dir))
        backend.use_filters(FilterSet.from_expressions(self.FILTERS))
        backend.start()
        return backend


# The window of 100 interactions per user per event type -------------------------------------

WINDOW_FILTERS = {
    "unwatched": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")',
    "unseen": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")',
    "not_only_watched": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE NOT IN ("watched")',
    "watched": 'INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("Watched")',
    "clicked": 'INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("clicked")',
}


@pytest.fixture(scope="module")
def heavy_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user with more than 100 interactions of one event type, and equal timestamps on the
    window's edge (the later row is the more recent)."""
    # watched: w005-w103 (99), then tie-second (the 100th), tie-first, w000-w004, old
    rows = [("heavy", f"w{k:03d}", 10_000 + k, "watched") for k in range(5, 104)]
    rows += [("heavy", "tie-first", 9_999, "watched"), ("heavy", "tie-second", 9_999, "watched")]
    rows += [("heavy", f"w{k:03d}", 1_000 + k, "watched") for k in range(5)]
    rows += [("heavy", "w000", 1, "clicked"), ("heavy", "w050", 2, "CLICKED")]
    rows += [("heavy", "old", 5, "Watched")]  # the same event type, whatever the case
    for user in range(6):  # others, so that every item has a neighbour or two
        rows += [(f"other{user}", f"w{k:03d}", 20_000 + k, "watched") for k in range(0, 104, 3)]
        rows += [(f"other{user}", i, 30_000, "clicked") for i in ("tie-first", "tie-second", "old")]
    directory = tmp_path_factory.mktemp("heavy")
    with (directory / "interactions.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"])
        writer.writerows((*row, "") for row in rows)
    return directory


@pytest.mark.parametrize("name", sorted(WINDOW_FILTERS))
def test_interactions_filters_see_the_100_most_recent_per_event_type(
    heavy_dataset: Path, name: str
) -> None:
    model = fit_model(read_interactions(heavy_dataset), FAST_PARAMS)
    filters = FilterSet.from_expressions(WINDOW_FILTERS)
    backend = LocalBackend.from_model(model, filters=filters)
    reference = ReferenceFilters(heavy_dataset)
    watched = reference.user_items("heavy", ["watched"])
    assert "tie-second" in watched and "tie-first" not in watched and "w003" not in watched
    call = filters.resolve(name, {})
    assert call is not None
    unfiltered = backend.popular_items(ALL)
    expected = [i for i in unfiltered.item_ids if reference.keeps(call, i, "heavy")]
    if name == "unwatched":  # watched, but before the 100 most recent watches
        assert {"w003", "tie-first", "old"} <= set(expected)
    assert backend.popular_items(ALL, "heavy", call).item_ids == expected
    everything = backend.rerank("heavy", unfiltered.item_ids)
    kept = [i for i in everything.item_ids if reference.keeps(call, i, "heavy")]
    assert backend.rerank("heavy", unfiltered.item_ids, call).item_ids == kept
    recommended = backend.recommend("heavy", ALL, call).item_ids
    assert set(recommended) == set(reference.kept(call, unfiltered.item_ids, "heavy"))


def test_the_default_filter_excludes_the_window_only(heavy_dataset: Path) -> None:
    model = fit_model(read_interactions(heavy_dataset), FAST_PARAMS)
    backend = LocalBackend.from_model(model)
    reference = ReferenceFilters(heavy_dataset)
    candidates = set(backend.popular_items(ALL).item_ids)
    assert set(backend.recommend("heavy", ALL).item_ids) == candidates - reference.user_items(
        "heavy"
    )
