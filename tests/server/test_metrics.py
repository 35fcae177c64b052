"""Prometheus metrics: every call counted by method and code, scraped over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from grpc import aio
from prometheus_client import CollectorRegistry

from recs.server.catalog import Catalog
from recs.server.handlers import add_service
from recs.server.metrics import ServiceMetrics, start_metrics_server
from recs.server.request_log import RequestLog
from recs.server.servicer import RecommendationServicer
from recs.v1 import recommendation_service_pb2 as pb
from recs.v1 import recommendation_service_pb2_grpc as pb_grpc
from tests.prometheus import scrape
from tests.server.fakes import FakeBackend


@pytest.fixture
async def measured_service() -> AsyncIterator[tuple[str, ServiceMetrics, str]]:
    """A real server on a free port with metrics, and their /metrics URL."""
    from concurrent.futures import ThreadPoolExecutor

    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry)
    executor = ThreadPoolExecutor(max_workers=2)
    servicer = RecommendationServicer(Catalog(), executor)
    servicer.install_backend(FakeBackend())
    server = aio.server()
    add_service(server, servicer, RequestLog(), metrics)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    http, http_port = start_metrics_server("127.0.0.1", 0, registry)
    try:
        yield f"127.0.0.1:{port}", metrics, f"http://127.0.0.1:{http_port}/metrics"
    finally:
        http.shutdown()
        await server.stop(0)
        servicer.dispatcher.close()
        executor.shutdown()


async def test_calls_are_counted_by_method_and_code(measured_service) -> None:
    target, metrics, url = measured_service
    async with aio.insecure_channel(target) as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)
        for _ in range(3):
            await stub.GetPopularItems(pb.GetPopularItemsRequest(num_results=2))
        with pytest.raises(aio.AioRpcError) as bad:
            await stub.GetRecommendations(pb.GetRecommendationsRequest(user_id=""))
        assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    metrics.model_loaded("fake", "v1", 0.25)
    samples = scrape(url)
    popular_ok = (("code", "OK"), ("method", "GetPopularItems"))
    assert samples[("recs_calls_total", popular_ok)] == 3
    invalid = (("code", "INVALID_ARGUMENT"), ("method", "GetRecommendations"))
    assert samples[("recs_calls_total", invalid)] == 1
    count = samples[("recs_call_duration_seconds_count", (("method", "GetPopularItems"),))]
    assert count == 3
    assert samples[("recs_calls_in_flight", ())] == 0
    assert samples[("recs_model_info", (("backend", "fake"), ("version", "v1")))] == 1
    assert samples[("recs_model_load_seconds", ())] == 0.25


async def test_a_new_model_takes_the_old_ones_place(measured_service) -> None:
    _target, metrics, url = measured_service
    metrics.model_loaded("local", "aaa", 1.0)
    metrics.model_loaded("local", "bbb", 2.0)
    samples = scrape(url)
    assert samples[("recs_model_info", (("backend", "local"), ("version", "aaa")))] == 0
    assert samples[("recs_model_info", (("backend", "local"), ("version", "bbb")))] == 1


async def test_personalize_calls_are_measured_by_operation_and_code(measured_service) -> None:
    _target, metrics, url = measured_service
    metrics.remote_call("GetRecommendations", 0.05, "OK")
    metrics.remote_call("GetRecommendations", 0.2, "ThrottlingException")
    samples = scrape(url)
    latency = (
        "recs_personalize_call_duration_seconds_count",
        (("operation", "GetRecommendations"),),
    )
    assert samples[latency] == 2
    errors = (("code", "ThrottlingException"), ("operation", "GetRecommendations"))
    assert samples[("recs_personalize_errors_total", errors)] == 1
