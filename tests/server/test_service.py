"""The service over a real port: enrichment, health, deadlines, reflection, shutdown."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from recs.client import AsyncRecsClient, RecsError
from recs.server.app import build_server
from tests.server.conftest import CATALOG, make_config
from tests.server.fakes import FakeBackend

SERVICE = "recs.v1.RecommendationService"


async def test_responses_are_enriched_from_the_catalog(target: str) -> None:
    async with AsyncRecsClient(target) as client:
        result = await client.recommend("u1", 3)
    assert result.item_ids == ["v1", "v2", "v3"]
    assert result.recommendation_id == "rid-1"
    assert result.items[0].title == "First video"
    assert result.items[0].url.endswith("/v1.mp4")
    assert (result.items[2].title, result.items[2].url) == ("", ""), "not in catalog"
    scores = [item.score for item in result.items]
    assert scores == sorted(scores, reverse=True)


async def test_rerank_and_popular_and_model_info(target: str, fake_backend: FakeBackend) -> None:
    async with AsyncRecsClient(target) as client:
        ranked = await client.rerank("u1", ["v1", "v2", "v1"])
        popular = await client.popular(2)
        info = await client.model_info()
    assert ranked.item_ids == ["v2", "v1"]
    assert popular.item_ids == ["v1", "v2"]
    assert ("popular", 2, None) in fake_backend.calls
    assert (info.backend, info.details["trained_at"]) == ("fake", "never")


async def _health(target: str, service: str = "") -> int:
    async with aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return response.status


async def test_health_is_not_serving_until_the_backend_is_installed() -> None:
    running = await build_server(make_config(), CATALOG)
    target = f"127.0.0.1:{running.port}"
    try:
        assert await _health(target) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await _health(target, SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING
        async with AsyncRecsClient(target, max_attempts=1) as client:
            with pytest.raises(RecsError) as caught:
                await client.popular()
        assert caught.value.code == grpc.StatusCode.UNAVAILABLE

        await running.mark_ready(FakeBackend())
        assert await _health(target) == health_pb2.HealthCheckResponse.SERVING
        assert await _health(target, SERVICE) == health_pb2.HealthCheckResponse.SERVING
    finally:
        await running.stop(0)


async def test_client_deadline_is_honoured(target: str, fake_backend: FakeBackend) -> None:
    fake_backend.delay = 1.0
    async with AsyncRecsClient(target, timeout=0.2, max_attempts=1) as client:
        with pytest.raises(RecsError) as caught:
            await client.recommend("u1")
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_slow_scoring_does_not_stall_other_requests(
    target: str, fake_backend: FakeBackend
) -> None:
    """While one call is being scored in the pool, others are still answered."""
    fake_backend.slow_users = {"slow-user"}
    async with AsyncRecsClient(target) as client:
        slow_call = asyncio.create_task(client.recommend("slow-user"))
        await asyncio.to_thread(fake_backend.started.wait, 5)
        quick = await client.popular(1)
        assert not slow_call.done(), "the quick call was answered while the slow one ran"
        await slow_call
    assert quick.item_ids == ["v1"]


async def test_reflection_lists_the_service(target: str) -> None:
    async with aio.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)

        async def requests():
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        names = []
        async for response in stub.ServerReflectionInfo(requests()):
            names = [s.name for s in response.list_services_response.service]
    assert SERVICE in names
    assert "grpc.health.v1.Health" in names


async def test_graceful_stop_drains_a_call_in_flight() -> None:
    backend = FakeBackend(delay=0.5)
    running = await build_server(make_config(), CATALOG)
    await running.mark_ready(backend)
    target = f"127.0.0.1:{running.port}"
    async with AsyncRecsClient(target, max_attempts=1) as client:
        in_flight = asyncio.create_task(client.recommend("u1", 2))
        await asyncio.to_thread(backend.started.wait, 5)
        await running.stop(grace=5)
        result = await in_flight
    assert result.item_ids == ["v1", "v2"]
