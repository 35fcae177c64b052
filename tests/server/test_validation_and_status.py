"""Every bad request field and every backend error maps to the documented status code."""

from __future__ import annotations

import grpc
import pytest
from grpc import aio

from recs.backends.errors import (
    BackendMisconfiguredError,
    BackendTimeoutError,
    BackendUnavailableError,
    InvalidRequestError,
)
from recs.v1 import recommendation_service_pb2 as pb
from recs.v1 import recommendation_service_pb2_grpc as pb_grpc
from tests.server.fakes import FakeBackend

LONG_ID = "x" * 257
Request = pb.GetRecommendationsRequest
INVALID = grpc.StatusCode.INVALID_ARGUMENT

BAD_REQUESTS = [
    ("GetRecommendations", Request(user_id="", num_results=5), "user_id"),
    ("GetRecommendations", Request(user_id=LONG_ID), "user_id"),
    (
        "GetRecommendations",
        pb.GetRecommendationsRequest(user_id="u", num_results=-1),
        "num_results",
    ),
    (
        "GetRecommendations",
        pb.GetRecommendationsRequest(user_id="u", num_results=501),
        "num_results",
    ),
    ("GetSimilarItems", pb.GetSimilarItemsRequest(item_id=""), "item_id"),
    ("GetSimilarItems", pb.GetSimilarItemsRequest(item_id=LONG_ID), "item_id"),
    ("GetSimilarItems", pb.GetSimilarItemsRequest(item_id="v1", num_results=1000), "num_results"),
    ("GetPopularItems", pb.GetPopularItemsRequest(num_results=-5), "num_results"),
    ("GetPopularItems", pb.GetPopularItemsRequest(user_id=LONG_ID), "user_id"),
    ("GetPersonalizedRanking", pb.GetPersonalizedRankingRequest(user_id="u"), "item_ids"),
    (
        "GetPersonalizedRanking",
        pb.GetPersonalizedRankingRequest(user_id="u", item_ids=["v"] * 501),
        "item_ids",
    ),
    (
        "GetPersonalizedRanking",
        pb.GetPersonalizedRankingRequest(user_id="u", item_ids=["v1", ""]),
        "item_ids[1]",
    ),
    (
        "GetPersonalizedRanking",
        pb.GetPersonalizedRankingRequest(user_id="", item_ids=["v1"]),
        "user_id",
    ),
]


@pytest.mark.parametrize(("method", "request_message", "field"), BAD_REQUESTS)
async def test_bad_fields_are_invalid_argument_naming_the_field(
    target: str, fake_backend: FakeBackend, method: str, request_message, field: str
) -> None:
    async with aio.insecure_channel(target) as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)
        with pytest.raises(aio.AioRpcError) as caught:
            await getattr(stub, method)(request_message, timeout=5)
    assert caught.value.code() == INVALID
    assert caught.value.details().startswith(f"{field}:")
    assert fake_backend.calls == [], "invalid requests must not reach the backend"


@pytest.mark.parametrize(("num_results", "expected"), [(0, 25), (1, 1), (500, 500)])
async def test_num_results_bounds_and_default(
    target: str, fake_backend: FakeBackend, num_results: int, expected: int
) -> None:
    async with aio.insecure_channel(target) as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)
        await stub.GetRecommendations(
            pb.GetRecommendationsRequest(user_id="u1", num_results=num_results), timeout=5
        )
    assert fake_backend.calls == [("recommend", "u1", expected)]


BACKEND_ERRORS = [
    (InvalidRequestError("user_id", "unknown format"), grpc.StatusCode.INVALID_ARGUMENT),
    (BackendUnavailableError("throttled"), grpc.StatusCode.UNAVAILABLE),
    (BackendTimeoutError("too slow"), grpc.StatusCode.DEADLINE_EXCEEDED),
    (BackendMisconfiguredError("sims campaign missing"), grpc.StatusCode.FAILED_PRECONDITION),
    (ZeroDivisionError("secret internals"), grpc.StatusCode.INTERNAL),
]


@pytest.mark.parametrize(("error", "code"), BACKEND_ERRORS)
async def test_backend_errors_map_to_status_codes(
    target: str, fake_backend: FakeBackend, error: Exception, code: grpc.StatusCode
) -> None:
    fake_backend.error = error
    async with aio.insecure_channel(target) as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)
        with pytest.raises(aio.AioRpcError) as caught:
            await stub.GetSimilarItems(pb.GetSimilarItemsRequest(item_id="v1"), timeout=5)
    assert caught.value.code() == code
    if code is grpc.StatusCode.INTERNAL:
        assert "secret internals" not in caught.value.details()
    else:
        assert str(error) in caught.value.details()
