"""The local engine's durable record of real-time events and items: SQLite in WAL mode.

PutEvents and PutItems answer OK only once their rows are committed here, so `kill -9` at any
moment loses nothing acknowledged: a restarted server (and every other worker, which polls the
same file) replays the rows into its model state. Why SQLite (stdlib `sqlite3`): one file, ACID
commits, and WAL mode lets the server's worker processes read while one writes.

**Group commit.** One writer thread owns the write connection. Callers queue their rows and
wait; the writer takes everything queued, inserts it in one transaction and commits once
(`synchronous = FULL`: the commit is on disk, not only in the OS cache, when it returns), then
wakes every caller of that group. Concurrent calls so share one fsync instead of paying one each.

Rows only grow (a `seq` per table); readers ask for what follows the last `seq` they applied.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from recs.backends.base import CatalogItem, Event
from recs.backends.errors import BackendUnavailableError, ModelLoadError

logger = logging.getLogger(__name__)

DB_FILE = "events.sqlite3"
OPEN_SECONDS = 10.0  # how long opening retries while other processes create the file
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT,                 -- NULL: an anonymous visitor, known by session_id
    session_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_value REAL,
    item_id TEXT NOT NULL,
    sent_at REAL NOT NULL,        -- seconds since the epoch
    recommendation_id TEXT NOT NULL,
    impression TEXT NOT NULL,     -- JSON list of item ids
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT NOT NULL,
    title TEXT NOT NULL,
    url TEXT NOT NULL,
    properties TEXT NOT NULL,     -- JSON object: catalog column -> value
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as stored: who sent it (`user_id` None for an anonymous session) and when."""

    seq: int
    user_id: str | None
    session_id: str
    event: Event

    @property
    def subject(self) -> str:
        """Whose event it is: the user, or the anonymous session."""
        return self.user_id if self.user_id is not None else self.session_id


@dataclass(frozen=True, slots=True)
class StoredItem:
    seq: int
    item: CatalogItem


@dataclass(slots=True)
class _Write:
    sql: str
    rows: list[tuple]
    done: Future


class EventStore:
    """Appends events and items durably (group commit) and reads them back in order."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / DB_FILE
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        # Held while queueing a write and while closing: nothing is queued behind the stop.
        self._accepting = threading.Lock()
        self.commits = 0  # transactions committed (each one fsync), for tests and benches

    def open(self) -> EventStore:
        """Create or open the database; ModelLoadError naming the file when it cannot.

        Workers start together and open the same file: creating it (the switch to WAL, the
        schema) takes SQLite's write lock, which it may refuse at once ("database is locked")
        rather than wait for, so opening is retried for up to `OPEN_SECONDS`.
        """
        deadline = time.monotonic() + OPEN_SECONDS
        while True:
            try:
                writer = self._create()
                self._reader = self._connect()
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise ModelLoadError(
                        f"{self.path}: cannot open the event store ({exc})"
                    ) from exc
                time.sleep(0.05)
            except (sqlite3.Error, OSError) as exc:
                raise ModelLoadError(f"{self.path}: cannot open the event store ({exc})") from exc
        self._writer = threading.Thread(
            target=self._write_loop, args=(writer,), name="event-store-writer", daemon=True
        )
        self._writer.start()
        return self

    def _create(self) -> sqlite3.Connection:
        """The write connection, the schema created (or checked) through it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = self._connect()
        try:
            writer.executescript(_SCHEMA)
            # OR IGNORE: a worker creating the same new store at the same moment may have
            # written it first; then its version is the one to check.
            writer.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )
            version = writer.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if version[0] != str(SCHEMA_VERSION):
                raise ModelLoadError(
                    f"{self.path}: event store schema {version[0]}, this code reads "
                    f"{SCHEMA_VERSION}"
                )
            writer.commit()
        except BaseException:
            writer.close()
            raise
        return writer

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA busy_timeout = 5000")  # other workers' commits
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
        connection.isolation_level = "DEFERRED"
        return connection

    def close(self) -> None:
        """Commit what is queued, then stop the writer. Safe to call more than once."""
        with self._accepting:
            writer, self._writer = self._writer, None
            if writer is not None:
                self._queue.put(None)  # after every queued write: each one is answered
        if writer is not None:
            writer.join(timeout=10)
        if self._reader is not None:
            with self._read_lock:
                self._reader.close()
            self._reader = None

    # --- writing ------------------------------------------------------------------------

    def append_events(self, user_id: str | None, session_id: str, events: Sequence[Event]) -> None:
        """Store `events` durably; returns once they are committed."""
        self.submit_events(user_id, session_id, events).result()

    def submit_events(
        self, user_id: str | None, session_id: str, events: Sequence[Event]
    ) -> Future:
        """Queue `events` for the next commit without waiting: the future is done once they
        are committed (its exception says why not). For callers that must not block, such
        as the server's event loop."""
        now = time.time()
        rows = [
            (
                user_id,
                session_id,
                e.event_id,
                e.event_type,
                e.event_value,
                e.item_id,
                e.sent_at,
                e.recommendation_id,
                json.dumps(list(e.impression)),
                now,
            )
            for e in events
        ]
        return self._submit(
            "INSERT INTO events (user_id, session_id, event_id, event_type, event_value, "
            "item_id, sent_at, recommendation_id, impression, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def append_items(self, items: Sequence[CatalogItem]) -> None:
        """Store `items` durably; returns once they are committed."""
        now = time.time()
        rows = [
            (i.item_id, i.title, i.url, json.dumps(dict(i.properties), sort_keys=True), now)
            for i in items
        ]
        self._write(
            "INSERT INTO items (item_id, title, url, properties, received_at) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    def _write(self, sql: str, rows: list[tuple]) -> None:
        self._submit(sql, rows).result()

    def _submit(self, sql: str, rows: list[tuple]) -> Future:
        done: Future = Future()
        with self._accepting:
            if self._writer is None:
                raise BackendUnavailableError("the event store is not open")
            self._queue.put(_Write(sql, rows, done))
        return done

    def _write_loop(self, connection: sqlite3.Connection) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            group = [first]
            while True:  # everything queued meanwhile commits with it
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                group.append(more)
            self._commit(connection, group)
        connection.close()

    def _commit(self, connection: sqlite3.Connection, group: list[_Write]) -> None:
        try:
            by_statement: dict[str, list[tuple]] = {}
            for write in group:  # one executemany per statement for the whole group
                by_statement.setdefault(write.sql, []).extend(write.rows)
            with connection:  # one transaction, committed (and synced) on exit
                for sql, rows in by_statement.items():
                    connection.executemany(sql, rows)
            self.commits += 1
        except Exception as exc:  # the writer must survive anything: callers wait on it
            logger.error(
                "event store %s: commit of %d calls failed: %s", self.path, len(group), exc
            )
            error = BackendUnavailableError("the event store could not commit; retry")
            for write in group:
                if not write.done.cancelled():  # a caller that gave up (its deadline)
                    write.done.set_exception(error)
            return
        for write in group:
            if not write.done.cancelled():
                write.done.set_result(None)

    # --- reading ------------------------------------------------------------------------

    def events_after(self, seq: int, limit: int = 10_000) -> list[StoredEvent]:
        """Committed events with a `seq` above `seq`, oldest first."""
        rows = self._read(
            "SELECT seq, user_id, session_id, event_id, event_type, event_value, item_id, "
            "sent_at, recommendation_id, impression FROM events WHERE seq > ? "
            "ORDER BY seq LIMIT ?",
            (seq, limit),
        )
        return [
            StoredEvent(
                seq=row[0],
                user_id=row[1],
                session_id=row[2],
                event=Event(
                    event_type=row[4],
                    item_id=row[6],
                    sent_at=row[7],
                    event_id=row[3],
                    event_value=row[5],
                    recommendation_id=row[8],
                    impression=tuple(json.loads(row[9])),
                ),
            )
            for row in rows
        ]

    def items_after(self, seq: int, limit: int = 10_000) -> list[StoredItem]:
        """Committed items with a `seq` above `seq`, oldest first."""
        rows = self._read(
            "SELECT seq, item_id, title, url, properties FROM items WHERE seq > ? "
            "ORDER BY seq LIMIT ?",
            (seq, limit),
        )
        return [
            StoredItem(row[0], CatalogItem(row[1], row[2], row[3], json.loads(row[4])))
            for row in rows
        ]

    def _read(self, sql: str, parameters: tuple) -> list[tuple]:
        if self._reader is None:
            raise BackendUnavailableError("the event store is not open")
        with self._read_lock:
            return self._reader.execute(sql, parameters).fetchall()
