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
    """Answers every recommendation call with one item and keeps the requests, in order."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.target = ""

    def _answer(self, request: Any, response: type) -> Any:
        self.requests.append(request)
        return response(items=[pb.RecommendedItem(item_id="v1", score=1.0)])

    def GetRecommendations(self, request, context):
        return self._answer(request, pb.GetRecommendationsResponse)

    def GetSimilarItems(self, request, context):
        return self._answer(request, pb.GetSimilarItemsResponse)

    def GetPopularItems(self, request, context):
        return self._answer(request, pb.GetPopularItemsResponse)

    def GetPersonalizedRanking(self, request, context):
        return self._answer(request, pb.GetPersonalizedRankingResponse)


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
