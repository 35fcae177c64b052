"""Nothing lost at retraining (#15): the event store exported for training, and counted once.

`export_events` writes the stored events as interactions.csv rows (an anonymous visitor under
its session id, an event without value with an empty EVENT_VALUE) in chunks, with a sidecar
naming the last seq written; `export_items` the last version of each stored item. `train`
with `events=` trains on them and records the sidecar's through_seq in the model's meta;
end to end, a LocalBackend on the retrained model replays only the events stored after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from recs.backends.base import CatalogItem, Event
from recs.backends.local.artifacts import load_model
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.backends.local.event_store import DB_FILE, EventStore
from recs.backends.local.export import (
    NoStateDirError,
    export_events,
    export_items,
    open_state,
    read_export,
    sidecar_path,
)
from recs.backends.local.params import TrainParams
from recs.backends.local.train import train
from recs.pipeline.dataset import DatasetError, read_interactions, read_items
from tests.backends.contract import TINY_DATASET

SENT_AT = 1_700_200_000.75
PARAMS = TrainParams(factors=8, iterations=10, random_state=0)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state_dir: Path) -> Iterator[EventStore]:
    opened = EventStore(state_dir).open()
    yield opened
    opened.close()


def watched(item: str, k: int = 0, value: float | None = 1.0, kind: str = "watched") -> Event:
    return Event(kind, item, SENT_AT + k, event_id=f"e-{item}-{k}", event_value=value)


def rows_of(table: pa.Table) -> list[tuple]:
    return list(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))


# --- export ----------------------------------------------------------------------------------


def test_events_round_trip_through_interactions_csv(store: EventStore, tmp_path: Path) -> None:
    store.append_events("u01", "s-1", [watched("a1", 0, 0.8), watched("b2", 1, None, "clicked")])
    store.append_events(None, "anon-9", [watched("p", 2, 0.0)])
    out = tmp_path / "export" / "interactions.csv"

    export = export_events(store, out)

    table = read_interactions(out.parent)
    assert table.column_names == ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"]
    assert rows_of(table) == [
        ("u01", "a1", 1_700_200_000, "watched", 0.8),
        ("u01", "b2", 1_700_200_001, "clicked", None),  # no value: an empty cell
        ("anon-9", "p", 1_700_200_002, "watched", 0.0),  # anonymous: the session id
    ]
    assert out.read_text().splitlines()[0] == "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE"
    assert (export.events, export.first_seq, export.through_seq) == (3, 1, 3)
    assert export.summary() == f"exported 3 events (seq 1..3) -> {out}"
    assert not list(out.parent.glob(".*partial"))


def test_the_sidecar_names_the_last_seq_and_the_state_dir(
    store: EventStore, state_dir: Path, tmp_path: Path
) -> None:
    store.append_events("u01", "s-1", [watched("a1", k) for k in range(4)])
    out = tmp_path / "events.csv"

    export_events(store, out)

    assert sidecar_path(out) == tmp_path / "events.csv.json"
    assert json.loads(sidecar_path(out).read_text()) == {
        "through_seq": 4,
        "state_dir": str(state_dir.resolve()),
        "events": 4,
    }
    table, read = read_export(out)
    assert table.num_rows == 4
    assert (read.through_seq, read.events, read.state_dir) == (4, 4, str(state_dir.resolve()))


def test_export_reads_in_chunks(store: EventStore, tmp_path: Path) -> None:
    for k in range(7):  # one call each: seqs 1..7
        store.append_events(f"u{k}", "s", [watched(f"i{k}", k)])
    chunks: list[int] = []

    export = export_events(store, tmp_path / "events.csv", chunk=3, advance=chunks.append)

    assert chunks == [3, 3, 1]
    assert (export.events, export.through_seq) == (7, 7)
    table, _ = read_export(tmp_path / "events.csv")
    assert table.column("USER_ID").to_pylist() == [f"u{k}" for k in range(7)]


def test_an_empty_store_gives_a_header_and_through_seq_0(store: EventStore, tmp_path: Path) -> None:
    out = tmp_path / "events.csv"

    export = export_events(store, out)

    assert out.read_text() == "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\n"
    assert json.loads(sidecar_path(out).read_text())["through_seq"] == 0
    assert export.summary() == f"exported 0 events -> {out}"
    assert read_export(out)[0].num_rows == 0


def test_a_second_export_replaces_the_first(store: EventStore, tmp_path: Path) -> None:
    out = tmp_path / "events.csv"
    store.append_events("u01", "s", [watched("a1")])
    export_events(store, out)
    store.append_events("u02", "s", [watched("a2")])

    export_events(store, out)

    table, export = read_export(out)
    assert table.column("USER_ID").to_pylist() == ["u01", "u02"]
    assert export.through_seq == 2


def test_items_export_keeps_the_last_version_of_each_id(store: EventStore, tmp_path: Path) -> None:
    store.append_items(
        [
            CatalogItem("v1", "Old title", "https://v/1", {"CATEGORIES": "pets", "DURATION": "10"}),
            CatalogItem("v2", "Second", "", {"CREATION_TIMESTAMP": "1714564800", "MOOD": "calm"}),
        ]
    )
    store.append_items([CatalogItem("v1", "New title", "https://v/1b", {"DURATION": "12.5"})])
    out = tmp_path / "items.csv"

    export = export_items(store, out, chunk=1)

    assert (export.items, export.versions) == (2, 3)
    header = out.read_text().splitlines()[0]
    assert header == "ITEM_ID,TITLE,URL,CATEGORIES,DURATION,CREATION_TIMESTAMP,MOOD"
    items = read_items(out)
    assert items is not None
    assert rows_of(items) == [
        ("v1", "New title", "https://v/1b", "", 12.5, None, ""),
        ("v2", "Second", "", "", None, 1714564800, "calm"),
    ]


def test_a_missing_state_dir_or_store_is_named(tmp_path: Path) -> None:
    with pytest.raises(NoStateDirError, match="nowhere: no such state directory"):
        open_state(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoStateDirError, match=DB_FILE):
        open_state(tmp_path / "empty")
    assert not (tmp_path / "empty" / DB_FILE).exists()  # nothing created


# --- training on exported events -------------------------------------------------------------


def test_train_with_events_records_through_seq_and_learns_a_new_user(
    store: EventStore, tmp_path: Path
) -> None:
    store.append_events("newbie", "s-n", [watched("a1", 0), watched("a2", 1)])
    store.append_events(None, "anon-1", [watched("b1", 2)])
    out = tmp_path / "events.csv"
    export_events(store, out)

    summary = train(TINY_DATASET, tmp_path / "model", PARAMS, events=[out])

    model = load_model(tmp_path / "model", mmap=False)
    assert model.meta["events"] == {"through_seq": 3, "files": [str(out)], "count": 3}
    assert model.meta["counts"]["interactions"] == 33 + 3
    assert (summary["events"], summary["events_through_seq"]) == (3, 3)
    assert {"newbie", "anon-1"} <= set(model.user_ids.tolist())
    assert len(model.meta["data"]["events_sha256"]) == 1
    assert "interactions_sha256" in model.meta["data"]


def test_train_without_events_records_none(tmp_path: Path) -> None:
    train(TINY_DATASET, tmp_path / "model", PARAMS)
    meta = load_model(tmp_path / "model", mmap=False).meta
    assert "events" not in meta
    assert "events_sha256" not in meta["data"]


def test_several_events_files_record_the_highest_through_seq(tmp_path: Path) -> None:
    outs = []
    for name, count in (("one", 2), ("two", 5)):
        store = EventStore(tmp_path / name).open()
        try:
            store.append_events(f"user-{name}", "s", [watched("a1", k) for k in range(count)])
            outs.append(export_events(store, tmp_path / f"{name}.csv").path)
        finally:
            store.close()

    train(TINY_DATASET, tmp_path / "model", PARAMS, events=outs)

    events = load_model(tmp_path / "model", mmap=False).meta["events"]
    assert events == {"through_seq": 5, "files": [str(p) for p in outs], "count": 7}


def test_an_events_file_without_sidecar_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "events.csv"
    out.write_text("USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\nu1,a1,1,watched,\n")
    with pytest.raises(DatasetError, match=r"events\.csv: no sidecar events\.csv\.json"):
        train(TINY_DATASET, tmp_path / "model", PARAMS, events=[out])
    assert not (tmp_path / "model").exists()


def test_a_file_that_differs_from_its_sidecar_is_refused(store: EventStore, tmp_path: Path) -> None:
    store.append_events("u01", "s", [watched("a1")])
    out = tmp_path / "events.csv"
    export_events(store, out)
    with out.open("a") as file:
        file.write("u02,a2,1700000000,watched,1\n")
    with pytest.raises(DatasetError, match="2 rows, but its sidecar"):
        train(TINY_DATASET, tmp_path / "model", PARAMS, events=[out])
    sidecar_path(out).write_text('{"through_seq": "3"}')
    with pytest.raises(DatasetError, match="malformed sidecar"):
        train(TINY_DATASET, tmp_path / "model", PARAMS, events=[out])


def test_two_exports_of_one_store_are_refused(store: EventStore, tmp_path: Path) -> None:
    store.append_events("u01", "s", [watched("a1")])
    first = export_events(store, tmp_path / "first.csv").path
    store.append_events("u01", "s", [watched("a2")])
    second = export_events(store, tmp_path / "second.csv").path
    with pytest.raises(DatasetError, match="give only the newest"):
        train(TINY_DATASET, tmp_path / "model", PARAMS, events=[first, second])


# --- end to end: retrained, reloaded, nothing applied twice ----------------------------------


def test_exported_events_are_in_the_model_and_not_applied_twice(tmp_path: Path) -> None:
    model_dir, state_dir, out = tmp_path / "model", tmp_path / "state", tmp_path / "ev.csv"
    train(TINY_DATASET, model_dir, PARAMS)
    config = LocalBackendConfig(model_dir=model_dir, state_dir=state_dir, mmap=False)
    first = LocalBackend(config)
    first.start()
    try:
        first.put_events("newbie", "s-n", [watched("a1", 0), watched("a2", 1)])
        first.put_events(None, "anon-1", [watched("b1", 2)])
        store = open_state(state_dir)
        try:
            assert export_events(store, out).through_seq == 3
        finally:
            store.close()
        first.put_events("late", "s-l", [watched("b2", 3)])  # after the export
    finally:
        first.close()

    train(TINY_DATASET, model_dir, PARAMS, events=[out])  # into the same model directory

    second = LocalBackend(config)
    second.start()
    try:
        assert second.model.meta["events"]["through_seq"] == 3
        assert "newbie" in second._user_index and "anon-1" in second._user_index
        assert second._live_subject("newbie") is None  # in the model, not replayed
        assert second._live_subject("anon-1") is None
        late = second._live_subject("late")  # stored after the export: replayed
        assert late is not None and late.events == 1
        assert "late" not in second._user_index
        answer = second.recommend("newbie", 25)
        assert not {"a1", "a2"} & set(answer.item_ids)  # the model's history excludes them
    finally:
        second.close()
