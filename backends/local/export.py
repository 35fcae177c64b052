"""Exporting the event store for the next training: nothing acknowledged is lost at retraining.

`recs events export` writes the stored real-time events (backends.local.event_store) as rows
of `interactions.csv` (`pipeline.dataset`'s columns, written by `pipeline.output`'s atomic
writer), so that `recs train --events FILE` or a Personalize INCREMENTAL import includes them,
and optionally the stored items as rows of `items.csv` (the last version of each id).

Beside the events file goes a sidecar, `FILE.json`:

    {"through_seq": K, "state_dir": "/abs/path/of/the/state/dir", "events": N}

K is the last stored `seq` the file holds (every event up to it, 0 for an empty store). A
model trained on the file records K as `meta["events"]["through_seq"]`, and a LocalBackend
on that model replays only the stored events after K: each event counts once, in the model
or in the live state, never in both.

Row mapping: USER_ID is the user id, or for an anonymous visitor the session id (the id
they are asked recommendations under); TIMESTAMP is `sent_at` in whole seconds; EVENT_VALUE
empty when the event had none. Event ids, recommendation ids and impressions have no column
in interactions.csv and are left out.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from recs.backends.base import CatalogItem
from recs.backends.local.event_store import DB_FILE, EventStore, StoredEvent
from recs.pipeline.dataset import (
    INTERACTION_COLUMNS,
    INTERACTION_TYPES,
    ITEM_COLUMNS,
    DatasetError,
    read_interactions,
)
from recs.pipeline.output import CsvFileWriter, write_csv

logger = logging.getLogger(__name__)

# Rows read from the store per query: memory stays bounded whatever the store holds.
EXPORT_CHUNK = 10_000
SIDECAR_SUFFIX = ".json"

INTERACTIONS_SCHEMA = pa.schema([(name, INTERACTION_TYPES[name]) for name in INTERACTION_COLUMNS])

# Progress callback: rows exported since the last call.
Advance = Callable[[int], None]


class ExportError(ValueError):
    """The state directory cannot be exported; the message names it."""


class NoStateDirError(ExportError):
    """The state directory, or the event store in it, does not exist."""


@dataclass(frozen=True, slots=True)
class EventsExport:
    """What an events file holds, as its sidecar says: `events` rows, every stored event
    with a seq up to `through_seq` (`first_seq` 0 when there are none or it is not known)."""

    path: Path
    events: int
    first_seq: int
    through_seq: int
    state_dir: str

    def summary(self) -> str:
        """`exported N events (seq 1..K) -> FILE`."""
        span = f" (seq {self.first_seq}..{self.through_seq})" if self.events else ""
        noun = "event" if self.events == 1 else "events"
        return f"exported {self.events:,} {noun}{span} -> {self.path}"


@dataclass(frozen=True, slots=True)
class ItemsExport:
    """An items file: `items` distinct ids from `versions` stored rows."""

    path: Path
    items: int
    versions: int

    def summary(self) -> str:
        noun = "item" if self.items == 1 else "items"
        return f"exported {self.items:,} {noun} ({self.versions:,} stored versions) -> {self.path}"


def sidecar_path(events_file: str | Path) -> Path:
    """`FILE.json`: where the sidecar of an events file is."""
    path = Path(events_file)
    return path.with_name(path.name + SIDECAR_SUFFIX)


# --- exporting ---------------------------------------------------------------------------------


def open_state(state_dir: str | Path) -> EventStore:
    """The event store of `state_dir`, opened; NoStateDirError when the directory or its
    database is missing (nothing is created), ModelLoadError when it cannot be opened."""
    state_dir = Path(state_dir)
    if not state_dir.is_dir():
        raise NoStateDirError(f"{state_dir}: no such state directory")
    if not (state_dir / DB_FILE).is_file():
        raise NoStateDirError(
            f"{state_dir}: no event store ({DB_FILE}) in it: is it the state_dir of a local "
            f"server (default <model_dir>-state)?"
        )
    return EventStore(state_dir).open()


def count_events(state_dir: str | Path) -> int | None:
    """How many events the store holds now (a read-only look, for the progress display);
    None when it cannot be told."""
    path = Path(state_dir) / DB_FILE
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return int(connection.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        finally:
            connection.close()
    except (sqlite3.Error, OSError):
        return None


def export_events(
    store: EventStore,
    out: str | Path,
    *,
    chunk: int = EXPORT_CHUNK,
    advance: Advance | None = None,
) -> EventsExport:
    """Write every stored event to `out` as interactions.csv rows, then its sidecar.

    Reads `chunk` rows at a time. Events stored while the export runs are included up to
    the last chunk read; the sidecar's `through_seq` is the last seq written. The old
    sidecar is removed before the new file takes its place, so a crash in between leaves a
    file without sidecar (which `recs train --events` refuses), never a file whose
    sidecar claims fewer events than it holds (which would apply them twice).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sidecar = sidecar_path(out)
    first_seq = through_seq = 0
    writer = CsvFileWriter(out, INTERACTIONS_SCHEMA)
    try:
        while rows := store.events_after(through_seq, limit=chunk):
            first_seq = first_seq or rows[0].seq
            through_seq = rows[-1].seq
            writer.write(interaction_rows(rows))
            if advance is not None:
                advance(len(rows))
        sidecar.unlink(missing_ok=True)
        writer.commit()
    except BaseException:
        writer.discard()
        raise
    export = EventsExport(
        out, writer.rows, first_seq, through_seq, str(store.path.parent.resolve())
    )
    _write_json_atomically(
        sidecar,
        {"through_seq": export.through_seq, "state_dir": export.state_dir, "events": export.events},
    )
    return export


def interaction_rows(rows: Sequence[StoredEvent]) -> pa.RecordBatch:
    """Stored events as a batch of interactions.csv columns (see the module docstring)."""
    return pa.record_batch(
        [
            pa.array([row.subject for row in rows], pa.string()),
            pa.array([row.event.item_id for row in rows], pa.string()),
            pa.array([math.floor(row.event.sent_at) for row in rows], pa.int64()),
            pa.array([row.event.event_type for row in rows], pa.string()),
            pa.array([row.event.event_value for row in rows], pa.float64()),
        ],
        schema=INTERACTIONS_SCHEMA,
    )


def export_items(
    store: EventStore,
    out: str | Path,
    *,
    chunk: int = EXPORT_CHUNK,
    advance: Advance | None = None,
) -> ItemsExport:
    """Write the stored items to `out` as items.csv rows: the last version of each id (in
    the order the ids first came), the items.csv columns, then any other property, sorted."""
    latest: dict[str, CatalogItem] = {}
    seq = versions = 0
    while rows := store.items_after(seq, limit=chunk):
        for row in rows:
            latest[row.item.item_id] = row.item
        seq = rows[-1].seq
        versions += len(rows)
        if advance is not None:
            advance(len(rows))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(catalog_table(latest.values()), out)
    return ItemsExport(out, len(latest), versions)


def catalog_table(items: Iterable[CatalogItem]) -> pa.Table:
    """Items as an items.csv table, every column text (empty where an item lacks it)."""
    items = list(items)
    extra = sorted({key for item in items for key in item.properties} - set(ITEM_COLUMNS))
    columns: dict[str, list[str]] = {name: [] for name in [*ITEM_COLUMNS, *extra]}
    for item in items:
        values = {**item.properties, "ITEM_ID": item.item_id, "TITLE": item.title, "URL": item.url}
        for name, column in columns.items():
            column.append(str(values.get(name, "")))
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


def _write_json_atomically(path: Path, content: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


# --- reading, for training ---------------------------------------------------------------------


def read_export(path: str | Path) -> tuple[pa.Table, EventsExport]:
    """An events file (read like interactions.csv) and what its sidecar says.

    DatasetError naming the file when the sidecar is missing or malformed (without it we
    cannot know which stored events the file holds) or the row count differs from it.
    """
    path = Path(path)
    export = read_sidecar(path)
    table = read_interactions(path)
    if table.num_rows != export.events:
        raise DatasetError(
            f"{path}: {table.num_rows:,} rows, but its sidecar {sidecar_path(path)} says "
            f"{export.events:,}: export again with `recs events export`"
        )
    return table, export


def read_sidecar(path: str | Path) -> EventsExport:
    """The sidecar of the events file `path`; DatasetError naming what is wrong."""
    path = Path(path)
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        raise DatasetError(
            f"{path}: no sidecar {sidecar.name} beside it (written by `recs events export`): "
            f"cannot tell which stored events it holds"
        )
    try:
        content = json.loads(sidecar.read_text(encoding="utf-8"))
        through_seq, events = content["through_seq"], content["events"]
        state_dir = content["state_dir"]
        valid = (
            all(type(n) is int and n >= 0 for n in (through_seq, events))
            and isinstance(state_dir, str)
            and (events == 0) == (through_seq == 0)
        )
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise DatasetError(
            f"{sidecar}: malformed sidecar (expected "
            f'{{"through_seq": K, "state_dir": "...", "events": N}}): export again'
        )
    return EventsExport(path, events, 0, through_seq, state_dir)


def events_meta(exports: Sequence[EventsExport]) -> dict[str, Any]:
    """`meta["events"]` of a model trained on these events files: the highest through_seq
    (the LocalBackend replays the stored events after it), the files and their row count.

    DatasetError when two files export the same state directory: each export holds every
    event of its store, so their rows would count twice.
    """
    by_state: dict[str, EventsExport] = {}
    for export in exports:
        if not export.events:
            continue
        other = by_state.setdefault(export.state_dir, export)
        if other is not export:
            raise DatasetError(
                f"{other.path} and {export.path} both export {export.state_dir}: each export "
                f"holds every event stored there, so give only the newest"
            )
    if len(by_state) > 1:
        logger.warning(
            "events of %d state directories (%s): the model records the highest through_seq, "
            "which only the state directory it is served with should be read against",
            len(by_state),
            ", ".join(sorted(by_state)),
        )
    return {
        "through_seq": max((e.through_seq for e in exports), default=0),
        "files": [str(e.path) for e in exports],
        "count": sum(e.events for e in exports),
    }
