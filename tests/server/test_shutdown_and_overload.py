"""Stopping and overload, against real servers on real ports.

- SIGTERM: every call the server accepted (running, or queued inside gRPC) is answered;
  a caller only ever sees OK, or a refusal that cost the server no work (UNAVAILABLE once
  the listener is closed, RESOURCE_EXHAUSTED beyond max_concurrent_rpcs), never CANCELLED;
  calls still running when the grace period ends are cancelled and counted in the log.
- Overload: 2,000 concurrent calls are each answered or refused RESOURCE_EXHAUSTED up front
  (gRPC core used to drop queued calls at random past 1,000, as CANCELLED); the bound is
  on by default and the client library retries RESOURCE_EXHAUSTED.
- Bind failures (port in use, an address this host does not have) end `recs serve`, with
  one worker or several, with one line naming the address and exit status 2.

`recs serve` runs on a tiny model as in tests/test_end_to_end.py; the in-process servers
serve a fake backend whose calls block until the test lets them go.
"""

from __future__ import annotations

import asyncio
import collections
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc import aio

from recs.client import AsyncRecsClient, RecsError
from recs.client.types import channel_options
from recs.config import ServerSettings
from recs.server.app import RunningServer, build_server
from recs.v1 import recommendation_service_pb2 as pb
from recs.v1 import recommendation_service_pb2_grpc as pb_grpc
from tests.backends.contract import TINY_DATASET
from tests.server.conftest import CATALOG, make_config
from tests.server.fakes import FakeBackend
from tests.test_end_to_end import ENV, RECS, free_port, run_recs

# What a caller may see from a server that refused its call before doing any work.
REFUSALS = {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}
SUMMARY = re.compile(r"recs\.requests.*: GetRecommendations [\d,]+ calls in .*?: ([^;]*)")
USERS = ["u01", "u02", "u03", "u04", "u05", "u06", "u07", "u08", "u09", "cold-user"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "model"
    done = run_recs("train", "--data", str(TINY_DATASET), "--out", str(out), "--factors", "8")
    assert done.returncode == 0, done.stderr
    return out


class Served:
    """A `recs serve` process; its stderr goes to a file (a full pipe would stall it)."""

    def __init__(self, model_dir: Path, log_path: Path, *args: str) -> None:
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.log_path = log_path
        with log_path.open("w") as log_file:
            self.process = subprocess.Popen(
                [*RECS, "serve", "--backend", "local", "--model", str(model_dir),
                 "--port", str(self.port), "--grace", "10", *args],
                stdout=subprocess.PIPE, stderr=log_file, text=True, env=ENV,
            )  # fmt: skip
        ready = self.process.stdout.readline() if self.process.stdout else ""
        assert ready.startswith(f"ready: {self.target}"), self.log()

    def log(self) -> str:
        return self.log_path.read_text()

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def wait(self) -> int:
        return self.process.wait(timeout=60)

    def request_log_counts(self) -> collections.Counter[str]:
        """Calls per status over every request-log summary line of GetRecommendations."""
        counts: collections.Counter[str] = collections.Counter()
        for line in self.log().splitlines():
            found = SUMMARY.search(line)
            if found:
                for part in found.group(1).split(", "):
                    status, number = part.rsplit(" ", 1)
                    counts[status] += int(number.replace(",", ""))
        return counts


@pytest.fixture
def serve(model_dir: Path, tmp_path: Path) -> Iterator:
    started: list[Served] = []

    def start(*args: str) -> Served:
        served = Served(model_dir, tmp_path / f"serve-{len(started)}.log", *args)
        started.append(served)
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait()


def separate_channels(target: str, count: int) -> list[aio.Channel]:
    """`count` channels with a connection each (grpc shares one between equal channels)."""
    return [
        aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(count)
    ]


def recommend(stub: pb_grpc.RecommendationServiceStub, index: int):
    request = pb.GetRecommendationsRequest(user_id=USERS[index % len(USERS)], num_results=3)
    return stub.GetRecommendations(request, timeout=30)


async def status_of(call) -> str:
    try:
        await call
    except grpc.RpcError as error:
        return error.code().name
    return "OK"


async def test_sigterm_under_load_answers_every_call_in_flight(serve) -> None:
    """64 callers in a loop; SIGTERM: each call in flight is answered, then calls are refused."""
    served = serve()
    channels = separate_channels(served.target, 8)
    stubs = [pb_grpc.RecommendationServiceStub(channel) for channel in channels]
    statuses: collections.Counter[str] = collections.Counter()
    in_flight_at_sigterm: collections.Counter[str] = collections.Counter()
    enough_answers = asyncio.Event()
    terminated = False

    async def caller(index: int) -> None:
        while True:
            sent_before_sigterm = not terminated
            status = await status_of(recommend(stubs[index % len(stubs)], index))
            statuses[status] += 1
            if statuses["OK"] >= 500:
                enough_answers.set()
            if sent_before_sigterm and terminated:
                in_flight_at_sigterm[status] += 1
            if status == "UNAVAILABLE" or sum(statuses.values()) > 1_000_000:
                return  # the server is gone

    callers = [asyncio.create_task(caller(index)) for index in range(64)]
    try:
        await enough_answers.wait()
        served.terminate()
        terminated = True
        await asyncio.gather(*callers)
    finally:
        for channel in channels:
            await channel.close()

    assert served.wait() == 0, served.log()
    assert set(statuses) <= {"OK"} | REFUSALS, statuses
    assert in_flight_at_sigterm == {"OK": 64}, (in_flight_at_sigterm, served.log())
    logged = served.request_log_counts()
    assert logged == {"OK": statuses["OK"]}, (logged, statuses)  # none cancelled, none lost
    assert "stopped" in served.log()


async def test_sigterm_during_a_burst_answers_or_refuses_every_call(serve) -> None:
    """2,000 calls at once on one connection, SIGTERM while most are queued in gRPC."""
    served = serve()
    async with aio.insecure_channel(served.target) as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)
        answered = asyncio.Event()
        ok = 0

        async def one(index: int) -> str:
            nonlocal ok
            status = await status_of(recommend(stub, index))
            ok += status == "OK"
            if ok >= 100:
                answered.set()
            return status

        calls = [asyncio.create_task(one(index)) for index in range(2000)]
        await answered.wait()
        served.terminate()
        statuses = collections.Counter(await asyncio.gather(*calls))

    assert served.wait() == 0, served.log()
    assert set(statuses) <= {"OK"} | REFUSALS, statuses
    assert statuses["OK"] >= 1000, statuses  # every call within max_concurrent_rpcs is answered
    assert "CANCELLED" not in served.request_log_counts()


async def test_a_burst_of_2000_calls_is_answered_or_refused_never_cancelled(serve) -> None:
    served = serve()
    async with aio.insecure_channel(served.target) as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)
        statuses = collections.Counter(
            await asyncio.gather(*(status_of(recommend(stub, i)) for i in range(2000)))
        )
    served.terminate()
    assert served.wait() == 0, served.log()
    assert set(statuses) <= {"OK", "RESOURCE_EXHAUSTED"}, statuses
    assert served.request_log_counts()["OK"] == statuses["OK"]


class HeldBackend(FakeBackend):
    """Each call blocks (on a backend thread) until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.entered = 0

    def _answer(self, call, item_ids):
        with self._lock:
            self.entered += 1
        self.release.wait(60)
        return super()._answer(call, item_ids)


async def started_server(backend: FakeBackend, **settings: object) -> RunningServer:
    running = await build_server(make_config(**settings), CATALOG)
    await running.mark_ready(backend)
    return running


async def until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def test_the_concurrency_bound_is_on_by_default() -> None:
    assert ServerSettings().max_concurrent_rpcs == 1000


async def test_calls_beyond_max_concurrent_rpcs_are_refused_before_any_work() -> None:
    backend = HeldBackend()
    running = await started_server(backend, max_concurrent_rpcs=4)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RecommendationServiceStub(channel)
            calls = [asyncio.create_task(status_of(recommend(stub, i))) for i in range(40)]
            # The first 4 hold every slot until released: each other call must come back.
            await until(lambda: sum(c.done() for c in calls) + backend.entered >= 40)
            refused = [c.result() for c in calls if c.done()]
            backend.release.set()
            statuses = collections.Counter(await asyncio.gather(*calls))
    finally:
        backend.release.set()
        await running.stop(0)
    assert backend.entered == 4
    assert refused == ["RESOURCE_EXHAUSTED"] * 36
    assert statuses == {"OK": 4, "RESOURCE_EXHAUSTED": 36}
    assert len(backend.calls) == 4  # the refused calls never reached the backend


def test_the_client_retry_policy_covers_refusals_only() -> None:
    options = dict(channel_options(4))
    assert (
        '"retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]'
        in options["grpc.service_config"]
    )


async def test_the_client_retries_resource_exhausted() -> None:
    backend = HeldBackend()
    running = await started_server(backend, max_concurrent_rpcs=1)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RecommendationServiceStub(channel)
            holder = asyncio.create_task(status_of(recommend(stub, 0)))
            await until(lambda: backend.entered == 1)
            async with AsyncRecsClient(f"127.0.0.1:{running.port}", max_attempts=3) as client:
                with pytest.raises(RecsError) as refused:
                    await client.popular(2)
            assert refused.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
            started, _ = running._call_counts() or (0, 0)
            assert started == 1 + 3  # the holder, then every attempt of the client's call
            backend.release.set()
            assert await holder == "OK"
    finally:
        backend.release.set()
        await running.stop(0)


async def test_calls_still_running_when_grace_ends_are_cancelled_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = HeldBackend()
    running = await started_server(backend)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RecommendationServiceStub(channel)
            call = asyncio.create_task(status_of(recommend(stub, 0)))
            await until(lambda: backend.entered == 1)
            with caplog.at_level("INFO"):
                await running.stop(grace=0.5)
                running.request_log.summarise()
            # gRPC ends the call by closing its connection: the caller sees UNAVAILABLE.
            assert await call != "OK"
    finally:
        backend.release.set()
    assert "grace period over: calls still in flight cancelled: 1" in caplog.text
    assert "GetRecommendations 1 calls in" in caplog.text and ": CANCELLED 1" in caplog.text


async def test_stop_answers_calls_that_arrive_while_it_drains() -> None:
    """A call running at stop, and calls sent meanwhile on the open connection: all OK."""
    backend = HeldBackend()
    running = await started_server(backend)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RecommendationServiceStub(channel)
            first = asyncio.create_task(status_of(recommend(stub, 0)))
            await until(lambda: backend.entered == 1)
            stopping = asyncio.create_task(running.stop(grace=10))
            later = [asyncio.create_task(status_of(recommend(stub, i))) for i in range(1, 20)]
            await asyncio.sleep(0.05)  # the later calls reach the server, which holds them
            backend.release.set()
            await stopping
            statuses = collections.Counter(await asyncio.gather(first, *later))
    finally:
        backend.release.set()
        await running.stop(0)
    assert statuses == {"OK": 20}


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("address", ["port in use", "address not on this host"])
def test_a_bind_failure_is_one_line_and_exit_status_2(
    model_dir: Path, workers: str, address: str
) -> None:
    with listening_socket() as occupied:
        if address == "port in use":
            host, port = "127.0.0.1", occupied.getsockname()[1]
        else:
            host, port = "203.0.113.1", free_port()  # TEST-NET-3: no interface has it
        done = run_recs(
            "serve", "--backend", "local", "--model", str(model_dir),
            "--host", host, "--port", str(port), "--workers", workers,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"{host}:{port}" in lines[0] and "Traceback" not in done.stderr
    assert "ready:" not in done.stdout
