"""Training: id encoding, confidence weights, the fitted model's arrays and `train`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from recs.backends.local.artifacts import LocalModel, load_model
from recs.backends.local.params import TrainParams
from recs.backends.local.train import event_confidence, fit_model, train
from recs.pipeline.dataset import DatasetError, encode_ids
from tests.backends.contract import HISTORY, MODEL_ITEMS

from .conftest import FAST_PARAMS


def events(rows: list[tuple[str, str, str, float | None]]) -> pa.Table:
    users, items, types, values = zip(*rows, strict=True)
    return pa.table(
        {
            "USER_ID": list(users),
            "ITEM_ID": list(items),
            "TIMESTAMP": pa.array(range(len(rows)), pa.int64()),
            "EVENT_TYPE": list(types),
            "EVENT_VALUE": pa.array(values, pa.float64()),
        }
    )


def test_encode_ids_sorted_ascending_across_chunks() -> None:
    table = pa.Table.from_batches(
        [
            pa.record_batch({"USER_ID": ["u3", "u1"]}),
            pa.record_batch({"USER_ID": ["u2", "u3"]}),
        ]
    )
    codes, ids = encode_ids(table, "USER_ID")
    assert ids.tolist() == ["u1", "u2", "u3"]
    assert ids.dtype.kind == "U"
    assert codes.tolist() == [2, 0, 1, 2]


def test_encode_ids_rejects_empty_ids() -> None:
    with pytest.raises(DatasetError, match="ITEM_ID"):
        encode_ids(pa.table({"ITEM_ID": ["a", ""]}), "ITEM_ID")


def test_event_confidence_by_type_and_value() -> None:
    table = events(
        [
            ("u", "a", "watched", 0.5),
            ("u", "b", "clicked", 0.2),
            ("u", "c", "shared", None),
        ]
    )
    params = TrainParams(
        event_weights={"watched": 3.0, "clicked": 1.0},
        default_event_weight=0.5,
        use_event_value=False,
    )
    assert event_confidence(table, params).tolist() == [3.0, 1.0, 0.5]
    with_value = params.model_copy(update={"use_event_value": True})
    np.testing.assert_allclose(event_confidence(table, with_value), [1.5, 0.2, 0.5])


def test_event_confidence_without_event_type_column() -> None:
    table = events([("u", "a", "watched", 1.0)]).drop_columns(["EVENT_TYPE"])
    assert event_confidence(table, TrainParams(default_event_weight=0.7)).tolist() == [
        pytest.approx(0.7)
    ]


def test_fit_model_on_the_tiny_dataset(tiny_model: LocalModel) -> None:
    assert tiny_model.user_ids.tolist() == sorted(HISTORY)
    assert tiny_model.item_ids.tolist() == sorted(MODEL_ITEMS)
    assert tiny_model.user_factors.shape == (9, FAST_PARAMS.factors)
    assert tiny_model.item_factors.dtype == np.float32
    items = tiny_model.item_ids
    for u, user in enumerate(tiny_model.user_ids):
        start, end = tiny_model.history_indptr[u], tiny_model.history_indptr[u + 1]
        assert set(items[tiny_model.history_indices[start:end]]) == HISTORY[user]
    popularity = dict(zip(items.tolist(), tiny_model.popularity.tolist(), strict=True))
    assert popularity == {
        "p": 5, "a1": 4, "a2": 4, "b1": 4, "b2": 4, "a3": 3, "b3": 3, "orphan1": 1, "orphan2": 1,
    }  # fmt: skip


def test_fit_model_meta_counts(tiny_model: LocalModel) -> None:
    counts = tiny_model.meta["counts"]
    assert counts["interactions"] == 33
    assert counts["user_item_pairs"] == 29
    assert counts["catalog_items_without_interactions"] == 1  # cold1
    assert counts["items_missing_from_catalog"] == 2  # orphan1, orphan2
    assert tiny_model.meta["params"] == FAST_PARAMS.model_dump(mode="json")


def test_fit_model_is_deterministic(tiny_interactions: pa.Table) -> None:
    first = fit_model(tiny_interactions, FAST_PARAMS)
    second = fit_model(tiny_interactions, FAST_PARAMS)
    np.testing.assert_array_equal(first.user_factors, second.user_factors)
    np.testing.assert_array_equal(first.similar_indices, second.similar_indices)


def test_zero_weight_events_still_count_as_history() -> None:
    table = events(
        [("u1", "a", "watched", 1.0), ("u1", "b", "skipped", 1.0), ("u2", "b", "watched", 1.0)]
    )
    model = fit_model(table, TrainParams(factors=2, iterations=2, default_event_weight=0.0))
    assert model.history_indices[: model.history_indptr[1]].tolist() == [0, 1]
    assert model.popularity.tolist() == [1, 2]


def test_fit_model_rejects_an_empty_table(tiny_interactions: pa.Table) -> None:
    with pytest.raises(DatasetError, match="no rows"):
        fit_model(tiny_interactions.slice(0, 0), FAST_PARAMS)


def test_train_writes_a_loadable_model_with_fingerprint(tiny_dataset: Path, tmp_path: Path) -> None:
    summary = train(tiny_dataset, tmp_path / "model", FAST_PARAMS)
    assert (summary["users"], summary["items"], summary["interactions"]) == (9, 9, 33)
    assert summary["model_bytes"] > 0
    model = load_model(tmp_path / "model")
    digest = hashlib.sha256((tiny_dataset / "interactions.csv").read_bytes()).hexdigest()
    assert model.meta["data"]["interactions_sha256"] == digest
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    assert set(meta["versions"]) >= {"implicit", "numpy", "scipy", "pyarrow"}
    assert meta["training_seconds"] >= 0


def test_train_on_a_missing_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"interactions\.csv"):
        train(tmp_path, tmp_path / "model", FAST_PARAMS)
    assert not (tmp_path / "model").exists()
