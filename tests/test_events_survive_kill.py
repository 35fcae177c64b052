"""`kill -9` of a serving `recs serve` loses no acknowledged PutEvents call.

A real `recs serve` (one worker, then two sharing the port) on the tiny model; client threads
send PutEvents one call after another (a watched video each, distinct event ids) and record each
OK. Once at least 30 calls are acknowledged, the whole process group (the supervisor and its
workers) is killed with SIGKILL while calls are still in flight. Then: every acknowledged event
is in the event store on disk, and a `recs serve` started again on the same model and state dir
replays them: no user is recommended a video they were acknowledged to have watched.
Calls in flight at the kill may or may not be stored (they were never answered OK).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest
import tomli_w
from google.protobuf.timestamp_pb2 import Timestamp

from recs.backends.local.event_store import EventStore
from recs.v1 import recommendation_service_pb2 as pb
from recs.v1 import recommendation_service_pb2_grpc as pb_grpc
from tests.backends.contract import TINY_DATASET
from tests.test_end_to_end import ENV, RECS, free_port, run_recs, wait_serving

USERS = [f"u0{i}" for i in range(1, 10)]
ALL = 25  # more than the tiny catalog holds: every recommendable video
ACKNOWLEDGED_BEFORE_KILL = 30
SENDERS = 3  # concurrent callers, so that the kill can fall inside a group commit
GENEROUS = 30.0  # seconds: waits only, nothing is timed


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kill") / "model"
    done = run_recs("train", "--data", str(TINY_DATASET), "--out", str(out), "--factors", "8")
    assert done.returncode == 0, done.stderr
    return out


class Serving:
    """`recs serve` in a process group of its own (so that SIGKILL reaches its workers)."""

    def __init__(self, config: Path, port: int, workers: int, log: Path) -> None:
        self.log = log.open("a")
        self.process = subprocess.Popen(
            [*RECS, "serve", "--config", str(config), "--port", str(port),
             "--workers", str(workers), "--grace", "2"],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=ENV, start_new_session=True,
        )  # fmt: skip
        ready = self.process.stdout.readline() if self.process.stdout else ""
        assert ready.startswith("ready:"), log.read_text()
        self.target = f"127.0.0.1:{port}"
        wait_serving(self.target)

    def kill(self) -> None:
        """SIGKILL to the whole group: the supervisor and every worker, at once."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=GENEROUS)
        self.log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=GENEROUS)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def recommended(target: str, user: str) -> list[str]:
    """The user's recommendations, on a new channel (with two workers: either of them)."""
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)
        answer = stub.GetRecommendations(
            pb.GetRecommendationsRequest(user_id=user, num_results=ALL), timeout=10
        )
    return [item.item_id for item in answer.items]


def send_until_stopped(
    target: str, sender: int, candidates: dict[str, list[str]],
    acknowledged: list[tuple[str, str, str]], lock: threading.Lock, stop: threading.Event,
) -> None:  # fmt: skip
    """PutEvents one call after another until an error (the kill) or `stop`; records each OK
    as (event_id, user, item)."""
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)
        n = 0
        while not stop.is_set():
            user = USERS[(sender + n * SENDERS) % len(USERS)]
            items = candidates[user]
            item = items[n % len(items)]
            event_id = f"kill-{sender}-{n}"
            sent_at = Timestamp()
            sent_at.GetCurrentTime()
            request = pb.PutEventsRequest(
                user_id=user,
                session_id=f"s-{user}",
                events=[
                    pb.Event(event_id=event_id, event_type="watched", event_value=1.0,
                             item_id=item, sent_at=sent_at)
                ],
            )  # fmt: skip
            try:
                stub.PutEvents(request, timeout=GENEROUS)
            except grpc.RpcError:
                return  # the server is gone: this call was not acknowledged
            with lock:
                acknowledged.append((event_id, user, item))
            n += 1


@pytest.mark.parametrize("workers", [1, 2])
def test_acknowledged_events_survive_sigkill(model_dir: Path, tmp_path: Path, workers: int) -> None:
    state_dir = tmp_path / "state"
    config = tmp_path / "serve.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "backend": "local",
                "catalog": str(TINY_DATASET / "items.csv"),
                "local": {"model_dir": str(model_dir), "state_dir": str(state_dir)},
            }
        )
    )
    port = free_port()
    server = Serving(config, port, workers, tmp_path / "serve.log")
    try:
        # The videos each user is recommended now: watching one must remove it.
        candidates = {user: recommended(server.target, user) for user in USERS}
        assert all(candidates.values()), candidates
        acknowledged: list[tuple[str, str, str]] = []
        lock, stop = threading.Lock(), threading.Event()
        senders = [
            threading.Thread(
                target=send_until_stopped,
                args=(server.target, k, candidates, acknowledged, lock, stop),
                daemon=True,
            )
            for k in range(SENDERS)
        ]
        for thread in senders:
            thread.start()
        deadline = time.monotonic() + GENEROUS
        while len(acknowledged) < ACKNOWLEDGED_BEFORE_KILL:
            assert time.monotonic() < deadline, f"only {len(acknowledged)} calls acknowledged"
            assert any(t.is_alive() for t in senders), (tmp_path / "serve.log").read_text()
            time.sleep(0.005)
        server.kill()  # mid-stream: the senders are still calling
        for thread in senders:
            thread.join(timeout=GENEROUS)
        stop.set()
        assert not any(t.is_alive() for t in senders)
    finally:
        stop.set()
        server.stop()
    with lock:
        acked = list(acknowledged)
    assert len(acked) >= ACKNOWLEDGED_BEFORE_KILL

    # On disk, before any server runs again: every acknowledged event, as sent.
    store = EventStore(state_dir).open()
    try:
        stored = {e.event.event_id: e for e in store.events_after(0, limit=1_000_000)}
    finally:
        store.close()
    missing = [event_id for event_id, _, _ in acked if event_id not in stored]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged events lost: {missing[:5]}"
    for event_id, user, item in acked:
        event = stored[event_id]
        assert (event.user_id, event.event.item_id, event.event.event_type) == (
            user, item, "watched",
        )  # fmt: skip

    # A server started again replays them: no acknowledged watched video is recommended.
    watched: dict[str, set[str]] = {}
    for _, user, item in acked:
        watched.setdefault(user, set()).add(item)
    again = Serving(config, free_port(), workers, tmp_path / "serve-again.log")
    try:
        deadline = time.monotonic() + GENEROUS
        while True:
            # several rounds on new channels: with two workers, each answers some of them
            shown = {
                user: [item for _ in range(2 * workers) for item in recommended(again.target, user)]
                for user in watched
            }
            still = {user: watched[user] & set(items) for user, items in shown.items()}
            if not any(still.values()):
                break
            assert time.monotonic() < deadline, f"watched videos still recommended: {still}"
            time.sleep(0.2)
    finally:
        again.stop()
