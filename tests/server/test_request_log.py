"""The request log: periodic per-method summaries, failed calls one by one, or every call."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re

import grpc
import pytest
from grpc import aio

from recs.server import request_log
from recs.server.app import RunningServer
from recs.server.request_log import MAX_FAILURES_LOGGED, RequestLog
from recs.v1 import recommendation_service_pb2 as pb
from recs.v1 import recommendation_service_pb2_grpc as pb_grpc
from tests.server.fakes import FakeBackend

LOGGER = "recs.requests"
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
def caplog(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Captures the request log from INFO up."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    return caplog


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def summary_of(caplog: pytest.LogCaptureFixture, method: str) -> str:
    [line] = [line for line in lines(caplog) if line.startswith(f"{method} ") and "calls" in line]
    return line


# Summary mode -----------------------------------------------------------------------------


def test_summary_counts_calls_per_method_and_status(caplog: pytest.LogCaptureFixture) -> None:
    log = RequestLog("summary")
    for ms in range(1, 101):  # latencies 1..100 ms
        log.ok("GetRecommendations", ms / 1000)
    log.failed("GetRecommendations", grpc.StatusCode.NOT_FOUND, 0.002, "no such user")
    log.failed("GetRecommendations", grpc.StatusCode.NOT_FOUND, 0.002, "no such user")
    log.failed("GetRecommendations", grpc.StatusCode.CANCELLED, 0.5)
    log.ok("GetPopularItems", 0.004)
    assert len(lines(caplog)) == 2  # the two NOT_FOUND calls, one by one
    caplog.clear()

    log.summarise()
    recommendations = summary_of(caplog, "GetRecommendations")
    assert recommendations.startswith("GetRecommendations 103 calls in ")
    assert "OK 100, NOT_FOUND 2, CANCELLED 1" in recommendations
    # Percentiles of the OK calls only (linear interpolation over 1..100 ms).
    assert "OK latency p50 50.50 ms, p99 99.01 ms, max 100.00 ms" in recommendations
    popular = summary_of(caplog, "GetPopularItems")
    assert popular.startswith("GetPopularItems 1 calls in ")
    assert "OK 1;" in popular and "p50 4.00 ms" in popular
    # One line per method, methods in name order; every failure was logged already.
    assert lines(caplog) == [popular, recommendations]


def test_a_method_with_only_failures_has_no_latency(caplog: pytest.LogCaptureFixture) -> None:
    log = RequestLog("summary")
    log.failed("GetSimilarItems", INVALID, 0.001, "item_id: must not be empty")
    log.summarise()
    line = summary_of(caplog, "GetSimilarItems")
    assert line.startswith("GetSimilarItems 1 calls in ")
    assert line.endswith(": INVALID_ARGUMENT 1")
    assert "latency" not in line


def test_failed_calls_are_logged_one_by_one_with_status_and_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = RequestLog("summary")
    log.failed("GetRecommendations", INVALID, 0.0015, "user_id: must not be empty")
    log.failed("GetPersonalizedRanking", grpc.StatusCode.UNAVAILABLE, 0.25, "throttled")
    assert lines(caplog) == [
        "GetRecommendations INVALID_ARGUMENT 1.50ms user_id: must not be empty",
        "GetPersonalizedRanking UNAVAILABLE 250.00ms throttled",
    ]


def test_failures_beyond_the_limit_are_counted_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = RequestLog("summary")
    extra = 7
    for k in range(MAX_FAILURES_LOGGED + extra):
        log.failed("GetSimilarItems", grpc.StatusCode.INTERNAL, 0.001, f"failure {k}")
    individual = lines(caplog)
    assert individual == [
        f"GetSimilarItems INTERNAL 1.00ms failure {k}" for k in range(MAX_FAILURES_LOGGED)
    ]
    caplog.clear()
    log.summarise()
    assert f"INTERNAL {MAX_FAILURES_LOGGED + extra}" in summary_of(caplog, "GetSimilarItems")
    assert f"{extra} more failed calls not logged one by one" in lines(caplog)


def test_the_failure_limit_spans_methods_and_restarts_each_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = RequestLog("summary")
    for k in range(MAX_FAILURES_LOGGED):
        log.failed("GetSimilarItems" if k % 2 else "GetPopularItems", INVALID, 0.001, "bad")
    log.failed("GetRecommendations", INVALID, 0.001, "one too many")
    assert len(lines(caplog)) == MAX_FAILURES_LOGGED
    log.summarise()
    assert "1 more failed calls not logged one by one" in lines(caplog)
    caplog.clear()
    log.failed("GetRecommendations", INVALID, 0.001, "next interval")
    assert lines(caplog) == ["GetRecommendations INVALID_ARGUMENT 1.00ms next interval"]


def test_cancelled_calls_are_counted_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    log = RequestLog("summary")
    for _ in range(MAX_FAILURES_LOGGED + 5):
        log.failed("GetRecommendations", grpc.StatusCode.CANCELLED, 0.01)
    assert lines(caplog) == []
    log.summarise()
    [line] = lines(caplog)  # no "more failed calls" line: cancellations are not failures
    assert line.startswith(f"GetRecommendations {MAX_FAILURES_LOGGED + 5} calls")
    assert line.endswith(f": CANCELLED {MAX_FAILURES_LOGGED + 5}")
    # Cancellations do not use up the budget of failures logged one by one.
    log.failed("GetRecommendations", INVALID, 0.001, "bad")
    assert len(lines(caplog)) == 2


def test_statuses_given_as_numbers_are_named_by_their_number(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = RequestLog("summary")
    log.failed("GetModelInfo", 14, 0.001, "raw code")
    assert lines(caplog) == ["GetModelInfo 14 1.00ms raw code"]


def test_nothing_is_logged_without_calls(caplog: pytest.LogCaptureFixture) -> None:
    log = RequestLog("summary")
    log.summarise()
    log.summarise()
    assert lines(caplog) == []


def test_counts_start_afresh_after_a_summary(caplog: pytest.LogCaptureFixture) -> None:
    log = RequestLog("summary")
    for _ in range(3):
        log.ok("GetPopularItems", 0.001)
    log.failed("GetPopularItems", INVALID, 0.001, "bad")
    log.summarise()
    log.summarise()  # nothing since the last one
    caplog.clear()
    log.ok("GetPopularItems", 0.002)
    log.summarise()
    [line] = lines(caplog)
    assert re.match(r"GetPopularItems 1 calls in \d+\.\d s \(.*/s\): OK 1;", line), line


def test_lines_are_written_at_the_configured_level(caplog: pytest.LogCaptureFixture) -> None:
    log = RequestLog("summary", level="WARNING")
    log.ok("GetPopularItems", 0.001)
    log.failed("GetPopularItems", INVALID, 0.001, "bad")
    log.summarise()
    assert len(lines(caplog)) == 2
    assert {r.levelno for r in caplog.records if r.name == LOGGER} == {logging.WARNING}


# Each mode --------------------------------------------------------------------------------


def test_each_mode_logs_every_call_and_no_summary(caplog: pytest.LogCaptureFixture) -> None:
    log = RequestLog("each")
    log.ok("GetX", 0.001)
    log.failed("GetX", grpc.StatusCode.NOT_FOUND, 0.0025, "gone")
    log.failed("GetX", grpc.StatusCode.CANCELLED, 0.003)
    for _ in range(MAX_FAILURES_LOGGED + 1):
        log.failed("GetY", INVALID, 0.001, "bad")
    assert lines(caplog)[:3] == [
        "GetX OK 1.00ms",
        "GetX NOT_FOUND 2.50ms gone",
        "GetX CANCELLED 3.00ms ",
    ]
    assert len(lines(caplog)) == 3 + MAX_FAILURES_LOGGED + 1  # no limit per interval
    caplog.clear()
    log.summarise()
    assert lines(caplog) == []


def test_each_mode_below_the_logger_level_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    log = RequestLog("each", level=logging.DEBUG)  # the logger passes INFO and up
    log.ok("GetX", 0.001)
    log.failed("GetX", INVALID, 0.001, "bad")
    assert lines(caplog) == []


# Periodic summaries -----------------------------------------------------------------------


async def wait_until(condition, limit: float = 10.0) -> None:
    """Yield to the event loop until `condition()` holds (fails after `limit` seconds)."""
    async with asyncio.timeout(limit):
        while not condition():
            await asyncio.sleep(0.005)


def test_summaries_every_interval_and_a_last_one_when_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = RequestLog("summary")

    async def scenario() -> None:
        task = asyncio.create_task(log.summarise_every(0.01))
        log.ok("GetPopularItems", 0.001)
        await wait_until(lambda: any("GetPopularItems 1 calls" in x for x in lines(caplog)))
        caplog.clear()
        log.ok("GetSimilarItems", 0.001)
        log.ok("GetSimilarItems", 0.001)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    # No await between the two calls and the cancel: only the last summary counts them.
    [line] = [x for x in lines(caplog) if x.startswith("GetSimilarItems ")]
    assert line.startswith("GetSimilarItems 2 calls in ")


def test_cancelling_the_summaries_writes_the_pending_calls(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = RequestLog("summary")

    async def scenario() -> None:
        task = asyncio.create_task(log.summarise_every(3600))  # only the last summary
        await asyncio.sleep(0)  # let it start waiting
        log.failed("GetRecommendations", grpc.StatusCode.CANCELLED, 0.1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    [line] = lines(caplog)
    assert line.startswith("GetRecommendations 1 calls in ")
    assert line.endswith(": CANCELLED 1")


def test_no_periodic_summaries_in_each_mode(caplog: pytest.LogCaptureFixture) -> None:
    log = RequestLog("each")
    asyncio.run(asyncio.wait_for(log.summarise_every(0.001), timeout=10))  # returns at once
    assert lines(caplog) == []


# Through the server -----------------------------------------------------------------------


async def test_the_server_logs_an_invalid_request_with_its_status(
    running: RunningServer, target: str, fake_backend: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    async with aio.insecure_channel(target) as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)
        await stub.GetPopularItems(pb.GetPopularItemsRequest(num_results=2), timeout=5)
        with pytest.raises(aio.AioRpcError) as caught:
            await stub.GetRecommendations(pb.GetRecommendationsRequest(user_id=""), timeout=5)
    assert caught.value.code() == INVALID
    [failure] = [x for x in lines(caplog) if x.startswith("GetRecommendations ")]
    assert failure.startswith("GetRecommendations INVALID_ARGUMENT ")
    assert failure.endswith(caught.value.details())
    assert "user_id" in failure
    assert not any(x.startswith("GetPopularItems") for x in lines(caplog))  # OK: summarised
    caplog.clear()
    running.request_log.summarise()
    assert summary_of(caplog, "GetRecommendations").endswith(": INVALID_ARGUMENT 1")
    assert "OK 1;" in summary_of(caplog, "GetPopularItems")


def test_latencies_beyond_the_cap_are_counted_not_kept(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without summaries (a server built but never run by `serve`) memory stays bounded.
    monkeypatch.setattr(request_log, "MAX_LATENCIES", 3)
    recorder = RequestLog()
    for _ in range(5):
        recorder.ok("GetX", 0.001)
    assert len(recorder._latencies["GetX"]) == 3
    with caplog.at_level(logging.INFO, logger="recs.requests"):
        recorder.summarise()
    assert "GetX 5 calls" in caplog.text and "OK 5" in caplog.text


def test_low_rates_keep_a_decimal(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = itertools.chain([100.0], itertools.repeat(110.0))  # 10 s between the two
    monkeypatch.setattr(request_log.time, "monotonic", lambda: next(clock))
    recorder = RequestLog()
    recorder.ok("GetX", 0.001)
    with caplog.at_level(logging.INFO, logger="recs.requests"):
        recorder.summarise()
    assert "GetX 1 calls in 10.0 s (0.1/s): OK 1;" in caplog.text
