"""Both clients: results as plain types, retries of UNAVAILABLE only, one error type."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from recs.backends.base import Backend
from recs.backends.errors import BackendUnavailableError, InvalidRequestError
from recs.client import AsyncRecsClient, RecsClient, RecsError
from tests.server.fakes import FakeBackend


class FailingFirst(FakeBackend):
    """Fails the first `failures` calls with `error`, then answers."""

    def __init__(self, failures: int, error: Exception) -> None:
        super().__init__()
        self.failures = failures
        self.failure = error
        self.attempts = 0

    def popular_items(self, num_results, user_id=None, filter=None):
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.failure
        return super().popular_items(num_results, user_id)

    def trending_items(self, num_results, user_id=None, filter=None):
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.failure
        return super().trending_items(num_results, user_id)


class WithoutTrending(FakeBackend):
    """A backend without a trending recipe: the base class's FAILED_PRECONDITION."""

    def trending_items(self, num_results, user_id=None, filter=None):
        return Backend.trending_items(self, num_results, user_id, filter)


async def test_sync_client_returns_plain_results(target: str) -> None:
    def query():
        with RecsClient(target) as client:
            return client.similar("v1", 2), client.rerank("u", ["v3", "v4"])

    similar, ranked = await asyncio.to_thread(query)
    assert similar.item_ids == ["v2", "v3"]
    assert similar.items[0].title == "Second video"
    assert ranked.item_ids == ["v4", "v3"]


async def test_similar_sends_the_user_when_given(fake_backend, target: str) -> None:
    def query():
        with RecsClient(target) as client:
            client.similar("v1", 2, "u7")
            client.similar("v1", 2)

    await asyncio.to_thread(query)
    async with AsyncRecsClient(target) as client:
        await client.similar("v1", 2, "u8")
    similar = [call for call in fake_backend.calls if call[0] == "similar"]
    assert similar == [("similar", "v1", 2, "u7"), ("similar", "v1", 2), ("similar", "v1", 2, "u8")]


async def test_unavailable_is_retried(running, target: str) -> None:
    backend = FailingFirst(2, BackendUnavailableError("warming up"))
    await running.mark_ready(backend)

    def query():
        with RecsClient(target) as client:
            return client.popular(2)

    result = await asyncio.to_thread(query)
    assert result.item_ids == ["v1", "v2"]
    assert backend.attempts == 3


async def test_other_errors_are_not_retried(running, target: str) -> None:
    backend = FailingFirst(5, InvalidRequestError("user_id", "bad"))
    await running.mark_ready(backend)
    async with AsyncRecsClient(target) as client:
        with pytest.raises(RecsError) as caught:
            await client.popular(2)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.message == "user_id: bad"
    assert backend.attempts == 1


async def test_unreachable_service_raises_recs_error() -> None:
    async with AsyncRecsClient("127.0.0.1:1", timeout=1, max_attempts=1) as client:
        with pytest.raises(RecsError) as caught:
            await client.popular()
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("client_class", [RecsClient, AsyncRecsClient])
async def test_an_unknown_filter_is_invalid_argument_naming_the_field(
    target: str, client_class
) -> None:
    async def query():
        if client_class is AsyncRecsClient:
            async with AsyncRecsClient(target) as client:
                return await client.recommend("u1", 2, filter_name="no_such_filter")

        def blocking():
            with RecsClient(target) as client:
                return client.recommend("u1", 2, filter_name="no_such_filter")

        return await asyncio.to_thread(blocking)

    with pytest.raises(RecsError) as caught:
        await query()
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.message.startswith("filter_name")


# --- trending ---------------------------------------------------------------------------------


async def test_both_clients_ask_for_trending_videos(target: str, fake_backend: FakeBackend) -> None:
    def query():
        with RecsClient(target) as client:
            return client.trending(2), client.trending(user_id="u7")

    first, everything = await asyncio.to_thread(query)
    async with AsyncRecsClient(target) as client:
        asynchronous = await client.trending(3, "u8")

    assert first.item_ids == ["v4", "v3"]  # the fake's trending order: its list reversed
    assert first.recommendation_id == "rid-1"
    assert everything.item_ids == ["v4", "v3", "v2", "v1"]
    assert asynchronous.item_ids == ["v4", "v3", "v2"]
    assert fake_backend.calls == [
        ("trending", 2, None),  # no user id: None, as for popular
        ("trending", 25, "u7"),  # 0 = the server default, 25
        ("trending", 3, "u8"),
    ]


async def test_trending_unavailable_is_retried(running, target: str) -> None:
    backend = FailingFirst(2, BackendUnavailableError("warming up"))
    await running.mark_ready(backend)

    def query():
        with RecsClient(target) as client:
            return client.trending(2)

    result = await asyncio.to_thread(query)
    assert result.item_ids == ["v4", "v3"]
    assert backend.attempts == 3


@pytest.mark.parametrize("client_class", [RecsClient, AsyncRecsClient])
async def test_a_backend_without_trending_is_failed_precondition(
    running, target: str, client_class
) -> None:
    backend = WithoutTrending()
    await running.mark_ready(backend)

    async def query():
        if client_class is AsyncRecsClient:
            async with AsyncRecsClient(target) as client:
                return await client.trending(2)

        def blocking():
            with RecsClient(target) as client:
                return client.trending(2)

        return await asyncio.to_thread(blocking)

    with pytest.raises(RecsError) as caught:
        await query()
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "no trending recipe" in caught.value.message
    assert backend.calls == []  # the base class refuses before answering anything


@pytest.mark.parametrize("client_class", [RecsClient, AsyncRecsClient])
async def test_trending_with_an_unknown_filter_is_invalid_argument(
    target: str, fake_backend: FakeBackend, client_class
) -> None:
    async def query():
        if client_class is AsyncRecsClient:
            async with AsyncRecsClient(target) as client:
                return await client.trending(2, filter_name="no_such_filter")

        def blocking():
            with RecsClient(target) as client:
                return client.trending(2, filter_name="no_such_filter")

        return await asyncio.to_thread(blocking)

    with pytest.raises(RecsError) as caught:
        await query()
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.message.startswith("filter_name")
    assert fake_backend.calls == []
