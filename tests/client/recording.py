"""A bare gRPC server whose servicer only records the requests it gets: what a caller sent.

Threaded (not asyncio), so blocking clients, the CLI and the page can call it from the
test's own thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import grpc

from recs.v1 import recommendation_service_pb2 as pb
from recs.v1 import recommendation_service_pb2_grpc as pb_grpc


class RecordingServicer(pb_grpc.RecommendationServiceServicer):
    """Answers every recommendation call with one item, PutEvents and PutItems with OK, and
    keeps the requests, in order.

    `failures` makes calls fail: the call that brings the count of requests received to N
    is recorded and then answered with `failures[N]`, a (status code, message).
    """

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.failures: dict[int, tuple[grpc.StatusCode, str]] = {}
        self.target = ""

    def _record(self, request: Any, context: grpc.ServicerContext) -> None:
        self.requests.append(request)
        failure = self.failures.get(len(self.requests))
        if failure is not None:
            context.abort(*failure)

    def _answer(self, request: Any, response: type, context: grpc.ServicerContext) -> Any:
        self._record(request, context)
        return response(items=[pb.RecommendedItem(item_id="v1", score=1.0)])

    def GetRecommendations(self, request, context):
        return self._answer(request, pb.GetRecommendationsResponse, context)

    def GetSimilarItems(self, request, context):
        return self._answer(request, pb.GetSimilarItemsResponse, context)

    def GetPopularItems(self, request, context):
        return self._answer(request, pb.GetPopularItemsResponse, context)

    def GetTrendingItems(self, request, context):
        return self._answer(request, pb.GetTrendingItemsResponse, context)

    def GetPersonalizedRanking(self, request, context):
        return self._answer(request, pb.GetPersonalizedRankingResponse, context)

    def PutEvents(self, request, context):
        self._record(request, context)
        return pb.PutEventsResponse()

    def PutItems(self, request, context):
        self._record(request, context)
        return pb.PutItemsResponse()


@contextmanager
def recording_server() -> Iterator[RecordingServicer]:
    """A recording server on a free loopback port while the block runs; `.target` is it."""
    servicer = RecordingServicer()
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_RecommendationServiceServicer_to_server(servicer, server)
    servicer.target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    try:
        yield servicer
    finally:
        server.stop(0)
