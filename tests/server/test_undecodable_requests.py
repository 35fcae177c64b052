"""Bytes that are not a valid request get INVALID_ARGUMENT and one capped request-log entry.

gRPC's own deserializer hook would answer UNKNOWN and log a traceback per call; the guard
parses the request itself (server/handlers.py).
"""

from __future__ import annotations

import logging

import grpc
import pytest
from grpc import aio

from recs.server.app import RunningServer
from recs.server.request_log import MAX_FAILURES_LOGGED
from tests.server.fakes import FakeBackend

INVALID_UTF8_USER_ID = b"\x0a\x02\xff\xfe"  # field 1 (user_id), 2 bytes that are not UTF-8
CORRUPT = b"\xff\xff\xff\xff"  # a field tag with no end

CASES = [
    ("GetRecommendations", INVALID_UTF8_USER_ID, "recs.v1.GetRecommendationsRequest"),
    ("GetRecommendations", CORRUPT, "recs.v1.GetRecommendationsRequest"),
    ("GetSimilarItems", CORRUPT, "recs.v1.GetSimilarItemsRequest"),
    ("GetPopularItems", CORRUPT, "recs.v1.GetPopularItemsRequest"),
    ("GetPersonalizedRanking", b"\x12\x01\xc3", "recs.v1.GetPersonalizedRankingRequest"),
    ("GetModelInfo", CORRUPT, "recs.v1.GetModelInfoRequest"),
]


def raw_call(channel: aio.Channel, method: str) -> aio.UnaryUnaryMultiCallable:
    """A call that sends the given bytes as they are (no serializer)."""
    return channel.unary_unary(f"/recs.v1.RecommendationService/{method}")


@pytest.mark.parametrize(("method", "wire", "request_type"), CASES)
async def test_undecodable_request_is_invalid_argument_naming_the_type(
    target: str, fake_backend: FakeBackend, method: str, wire: bytes, request_type: str
) -> None:
    async with aio.insecure_channel(target) as channel:
        with pytest.raises(aio.AioRpcError) as raised:
            await raw_call(channel, method)(wire, timeout=5)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == f"request: not a valid {request_type}"
    assert fake_backend.calls == []


async def test_a_thousand_undecodable_calls_stay_within_the_log_cap(
    target: str, running: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with aio.insecure_channel(target) as channel:
        call = raw_call(channel, "GetPopularItems")
        for _ in range(1000):
            with pytest.raises(aio.AioRpcError):
                await call(CORRUPT, timeout=5)
    running.request_log.summarise()
    records = caplog.records
    assert not [r for r in records if r.exc_info or r.levelno >= logging.ERROR]
    failures = [r for r in records if "not a valid" in r.getMessage()]
    assert len(failures) == MAX_FAILURES_LOGGED
    summary = [r for r in records if "1,000 calls" in r.getMessage()]
    assert len(summary) == 1 and "INVALID_ARGUMENT 1,000" in summary[0].getMessage()
    assert len(records) <= MAX_FAILURES_LOGGED + 3  # the failures, a count of the rest, a summary
