"""The local engine's event store: SQLite in WAL mode, group commit, durable once acknowledged.

Round trips of every field, increasing sequence numbers, several calls sharing one commit,
rows kept across a reopen and across `kill -9` of the writing process (every acknowledged
event is there exactly once), and a store that cannot be opened named in a ModelLoadError.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from recs.backends.base import CatalogItem, Event
from recs.backends.errors import BackendUnavailableError, ModelLoadError
from recs.backends.local.event_store import DB_FILE, EventStore, StoredEvent

SENT_AT = 1_700_100_000.25


@pytest.fixture
def store(tmp_path: Path):
    opened = EventStore(tmp_path / "state").open()
    yield opened
    opened.close()


def event(k: int, **fields: object) -> Event:
    return Event(**{"event_type": "watched", "item_id": f"i{k}", "sent_at": SENT_AT + k, **fields})


# --- round trips ---------------------------------------------------------------------------------


def test_every_field_of_an_event_round_trips(store: EventStore) -> None:
    full = Event(
        event_type="Watched",
        item_id="a1",
        sent_at=SENT_AT,
        event_id="ev-1",
        event_value=0.75,
        recommendation_id="rec-42",
        impression=("a1", "a2", "b3"),
    )
    bare = Event(event_type="clicked", item_id="b2", sent_at=SENT_AT + 1)
    store.append_events("u01", "s-1", [full, bare])
    store.append_events(None, "anonymous-session", [event(7, event_value=0.0)])

    rows = store.events_after(0)

    assert [(r.user_id, r.session_id, r.event) for r in rows] == [
        ("u01", "s-1", full),
        ("u01", "s-1", bare),
        (None, "anonymous-session", event(7, event_value=0.0)),
    ]
    assert rows[1].event.event_value is None  # absent, not 0
    assert rows[1].event.impression == ()
    assert rows[2].event.event_value == 0.0  # a zero is kept as a zero
    assert [r.subject for r in rows] == ["u01", "u01", "anonymous-session"]
    assert all(isinstance(r, StoredEvent) for r in rows)


def test_items_round_trip(store: EventStore) -> None:
    first = CatalogItem("new1", "A new video", "https://x/new1.mp4", {"CATEGORIES": "a|b"})
    second = CatalogItem("new2")
    store.append_items([first, second])
    rows = store.items_after(0)
    assert [r.item for r in rows] == [first, second]
    assert rows[0].seq < rows[1].seq
    assert store.items_after(rows[0].seq)[0].item == second


def test_sequence_numbers_increase_and_events_after_reads_what_follows(
    store: EventStore,
) -> None:
    for k in range(5):
        store.append_events("u01", "s", [event(2 * k), event(2 * k + 1)])
    rows = store.events_after(0)
    seqs = [r.seq for r in rows]
    assert len(rows) == 10
    assert seqs == sorted(set(seqs))  # strictly increasing
    assert [r.event.item_id for r in rows] == [f"i{k}" for k in range(10)]
    after = store.events_after(seqs[3])
    assert [r.seq for r in after] == seqs[4:]
    assert store.events_after(seqs[-1]) == []
    assert [r.seq for r in store.events_after(0, limit=3)] == seqs[:3]


def test_an_empty_store_has_nothing_after_zero(store: EventStore) -> None:
    assert store.events_after(0) == []
    assert store.items_after(0) == []


# --- group commit --------------------------------------------------------------------------------


def test_concurrent_appenders_share_commits_and_every_row_is_stored(store: EventStore) -> None:
    threads, calls_each = 24, 8
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def append(t: int) -> None:
        try:
            start.wait()
            for k in range(calls_each):
                store.append_events(
                    f"u{t}", f"s{t}", [event(k, event_id=f"{t}-{k}-{j}") for j in range(2)]
                )
        except BaseException as exc:
            failures.append(exc)

    before = store.commits
    workers = [threading.Thread(target=append, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not failures
    calls = threads * calls_each
    commits = store.commits - before
    assert 1 <= commits < calls, f"{commits} commits for {calls} calls"

    rows = store.events_after(0, limit=100_000)
    ids = [r.event.event_id for r in rows]
    assert len(ids) == calls * 2 == len(set(ids))
    assert set(ids) == {
        f"{t}-{k}-{j}" for t in range(threads) for k in range(calls_each) for j in (0, 1)
    }
    # Each call's rows are contiguous and in order: one call is never split across commits.
    for t in range(threads):
        mine = [r for r in rows if r.user_id == f"u{t}"]
        assert [r.event.event_id for r in mine] == [
            f"{t}-{k}-{j}" for k in range(calls_each) for j in (0, 1)
        ]


def test_one_call_is_one_commit(store: EventStore) -> None:
    before = store.commits
    store.append_events("u01", "s", [event(k) for k in range(10)])
    assert store.commits == before + 1


# --- durability ----------------------------------------------------------------------------------


def test_rows_survive_close_and_reopen(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = EventStore(state).open()
    first.append_events("u01", "s", [event(1, event_value=0.5)])
    first.append_items([CatalogItem("new1", "T")])
    first.close()
    first.close()  # safe twice

    again = EventStore(state).open()
    try:
        rows = again.events_after(0)
        assert [(r.user_id, r.event) for r in rows] == [("u01", event(1, event_value=0.5))]
        assert [r.item.item_id for r in again.items_after(0)] == ["new1"]
        again.append_events("u02", "s", [event(2)])
        assert [r.seq for r in again.events_after(0)] == [rows[0].seq, rows[0].seq + 1]
    finally:
        again.close()


def test_a_second_store_on_the_same_file_reads_what_the_first_commits(tmp_path: Path) -> None:
    """Two server workers: each opens the same file; one's commits are the other's reads."""
    state = tmp_path / "state"
    writer, reader = EventStore(state).open(), EventStore(state).open()
    try:
        assert reader.events_after(0) == []
        writer.append_events("u01", "s", [event(1)])
        assert [r.event for r in reader.events_after(0)] == [event(1)]
        reader.append_events("u02", "s", [event(2)])
        assert [r.user_id for r in writer.events_after(0)] == ["u01", "u02"]
    finally:
        writer.close()
        reader.close()


def test_appending_after_close_is_refused(tmp_path: Path) -> None:
    closed = EventStore(tmp_path / "state").open()
    closed.close()
    with pytest.raises(BackendUnavailableError):
        closed.append_events("u01", "s", [event(1)])
    with pytest.raises(BackendUnavailableError):
        closed.events_after(0)


def test_appending_before_open_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError):
        EventStore(tmp_path / "state").append_events("u01", "s", [event(1)])


def test_close_while_appending_leaves_no_caller_waiting(tmp_path: Path) -> None:
    """Closing (server shutdown) while calls are queued: each call is answered, committed or
    refused with BackendUnavailableError, and none waits forever; what was acknowledged is
    stored."""
    state = tmp_path / "state"
    closing = EventStore(state).open()
    acked: list[str] = []
    refused: list[str] = []
    stop = threading.Event()

    def append(t: int) -> None:
        k = 0
        while not stop.is_set():
            name = f"{t}-{k}"
            try:
                closing.append_events("u", "s", [event(k, event_id=name)])
            except BackendUnavailableError:
                refused.append(name)
                return
            acked.append(name)
            k += 1

    appenders = [threading.Thread(target=append, args=(t,), daemon=True) for t in range(4)]
    for appender in appenders:
        appender.start()
    while len(acked) < 20:
        time.sleep(0.001)
    closing.close()
    stop.set()
    deadline = time.monotonic() + 5
    for appender in appenders:
        appender.join(timeout=max(0.0, deadline - time.monotonic()))
    waiting = sum(appender.is_alive() for appender in appenders)
    assert waiting == 0, f"{waiting} of 4 callers still waiting for an answer after close()"

    reopened = EventStore(state).open()
    try:
        stored = {r.event.event_id for r in reopened.events_after(0, limit=1_000_000)}
    finally:
        reopened.close()
    assert set(acked) <= stored


def test_a_row_sqlite_cannot_bind_fails_its_call_and_the_writer_survives(
    store: EventStore,
) -> None:
    """An int beyond SQLite's 64 bits (a caller of the Python API, not the wire, where
    values are doubles) raises OverflowError in the writer thread: that call must fail, not
    leave the writer dead and every later call waiting forever."""
    outcome: dict[str, object] = {}

    def call(name: str, value: float) -> None:
        try:
            store.append_events("u", "s", [event(1, event_id=name, event_value=value)])
            outcome[name] = "ok"
        except Exception as exc:
            outcome[name] = exc

    for name, value in (("huge", 2**70), ("fine", 0.5)):
        caller = threading.Thread(target=call, args=(name, value), daemon=True)
        caller.start()
        caller.join(timeout=5)
        assert not caller.is_alive(), f"the {name!r} call is still waiting for the writer"
    assert isinstance(outcome["huge"], BackendUnavailableError)
    assert outcome["fine"] == "ok"
    assert [r.event.event_id for r in store.events_after(0)] == ["fine"]


_APPENDER = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from recs.backends.base import Event
    from recs.backends.local.event_store import EventStore

    store = EventStore(Path(sys.argv[1])).open()
    lock = threading.Lock()
    print("open", flush=True)

    def append(t):
        k = 0
        while True:
            name = f"{t}-{k}"
            done = Event("watched", "i" + name, 1.0, event_id=name)
            store.append_events("u" + str(t), "s", [done])
            with lock:
                print("acked", name, flush=True)
            k += 1

    for t in range(4):
        threading.Thread(target=append, args=(t,), daemon=True).start()
    threading.Event().wait()
    """
)


def test_kill_9_loses_no_acknowledged_event(tmp_path: Path) -> None:
    state = tmp_path / "state"
    child = subprocess.Popen(
        [sys.executable, "-c", _APPENDER, str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    acked: list[str] = []
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "open", (
            child.stderr.read() if child.stderr else ""
        )
        deadline = time.monotonic() + 60
        while len(acked) < 40 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            acked.append(line.split()[1])
        os.kill(child.pid, signal.SIGKILL)  # mid-flight: other appends are queued or committing
        # Acks already written to the pipe before the kill are acknowledged events too.
        rest, _ = child.communicate(timeout=30)
        complete = rest.split("\n")[:-1]  # a line cut by the kill has no newline
        acked += [line.split()[1] for line in complete if line.startswith("acked ")]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert len(acked) >= 40

    reopened = EventStore(state).open()
    try:
        stored = [r.event.event_id for r in reopened.events_after(0, limit=1_000_000)]
    finally:
        reopened.close()
    counts: dict[str, int] = {}
    for name in stored:
        counts[name] = counts.get(name, 0) + 1
    missing = [name for name in acked if name not in counts]
    assert not missing, f"acknowledged but lost: {missing}"
    assert all(counts[name] == 1 for name in acked)
    assert max(counts.values()) == 1  # nothing stored twice, acknowledged or not
    assert len(stored) >= len(acked)


# --- the file ------------------------------------------------------------------------------------


def test_the_database_is_in_wal_mode_with_full_sync(store: EventStore) -> None:
    store.append_events("u01", "s", [event(1)])
    assert store.path.name == DB_FILE
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    assert store.path.with_name(DB_FILE + "-wal").exists()
    synchronous = store._reader.execute("PRAGMA synchronous").fetchone()[0]
    assert synchronous == 2  # FULL


def test_the_state_dir_is_created(tmp_path: Path) -> None:
    state = tmp_path / "deep" / "er" / "state"
    opened = EventStore(state).open()
    opened.close()
    assert (state / DB_FILE).is_file()


def test_a_corrupt_database_is_a_model_load_error_naming_the_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / DB_FILE).write_bytes(b"this is not an SQLite database\n" * 200)
    with pytest.raises(ModelLoadError) as caught:
        EventStore(state).open()
    assert str(state / DB_FILE) in str(caught.value)


def test_a_directory_in_place_of_the_database_is_a_model_load_error(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / DB_FILE).mkdir(parents=True)
    with pytest.raises(ModelLoadError) as caught:
        EventStore(state).open()
    assert str(state / DB_FILE) in str(caught.value)


def test_a_state_dir_that_is_a_file_is_a_model_load_error_naming_it(tmp_path: Path) -> None:
    """`state_dir` pointing at a regular file (a typo in the config): the store cannot be
    created, and the start must fail as a ModelLoadError naming the path, not a raw OSError."""
    state = tmp_path / "state"
    state.write_text("not a directory")
    with pytest.raises(ModelLoadError) as caught:
        EventStore(state).open()
    assert str(state) in str(caught.value)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    EventStore(state).open().close()
    with sqlite3.connect(state / DB_FILE) as connection:
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(ModelLoadError) as caught:
        EventStore(state).open()
    assert "99" in str(caught.value) and str(state / DB_FILE) in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_an_unwritable_state_dir_is_a_model_load_error(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o555)
    try:
        with pytest.raises(ModelLoadError) as caught:
            EventStore(state).open()
        assert str(state / DB_FILE) in str(caught.value)
    finally:
        state.chmod(0o755)


def test_processes_starting_together_all_open_the_new_store(tmp_path: Path) -> None:
    """Workers start at once and each creates the same store: none may be refused with
    "database is locked" (the switch to WAL and the schema take SQLite's write lock)."""
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from recs.backends.base import Event
        from recs.backends.local.event_store import EventStore
        store = EventStore(Path({str(tmp_path / "state")!r})).open()
        store.append_events("u", "s", [Event("watched", "i", 1.0)])
        store.close()
        """
    )
    children = [
        subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    for child in children:
        _, errors = child.communicate(timeout=60)
        assert child.returncode == 0, errors
    store = EventStore(tmp_path / "state").open()
    try:
        assert len(store.events_after(0)) == 6
    finally:
        store.close()


def test_a_caller_that_gives_up_does_not_break_the_writer(tmp_path: Path) -> None:
    """The server cancels the wait of a PutEvents whose deadline passed: its events are still
    committed (the call may have been accepted), and the writer keeps answering others."""
    store = EventStore(tmp_path / "state").open()
    try:
        abandoned = store.submit_events("u1", "s", [Event("watched", "i1", 1.0)])
        abandoned.cancel()
        store.append_events("u2", "s", [Event("watched", "i2", 2.0)])
        assert [row.event.item_id for row in store.events_after(0)] == ["i1", "i2"]
    finally:
        store.close()
