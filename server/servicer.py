"""The RecommendationService servicer: validates requests and translates to and from protobuf.

It holds no recommendation logic and maps no errors itself: backends raise domain
errors, `server.interceptors` turns them into status codes. Backend calls run in a
bounded thread pool so scoring (NumPy, which releases the GIL) or blocking boto3 I/O
never stalls the event loop: other requests keep flowing while one is being scored.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

from grpc import aio

from backends.base import Backend, Recommendations
from backends.errors import BackendTimeoutError, BackendUnavailableError
from recs.v1 import recommendation_service_pb2 as pb
from recs.v1 import recommendation_service_pb2_grpc as pb_grpc
from server import validation
from server.catalog import Catalog

T = TypeVar("T")


class RecommendationServicer(pb_grpc.RecommendationServiceServicer):
    """Answers the four recommendation questions from whichever backend is installed."""

    def __init__(self, catalog: Catalog, executor: Executor) -> None:
        self._catalog = catalog
        self._executor = executor
        self._backend: Backend | None = None

    def install_backend(self, backend: Backend) -> None:
        """Start answering from `backend` (which must be fully started)."""
        self._backend = backend

    async def GetRecommendations(
        self, request: pb.GetRecommendationsRequest, context: aio.ServicerContext
    ) -> pb.GetRecommendationsResponse:
        user_id = validation.required_id("user_id", request.user_id)
        n = validation.num_results(request.num_results)
        result = await self._call(context, lambda b: b.recommend(user_id, n))
        return pb.GetRecommendationsResponse(**self._translate(result))

    async def GetSimilarItems(
        self, request: pb.GetSimilarItemsRequest, context: aio.ServicerContext
    ) -> pb.GetSimilarItemsResponse:
        item_id = validation.required_id("item_id", request.item_id)
        n = validation.num_results(request.num_results)
        result = await self._call(context, lambda b: b.similar_items(item_id, n))
        return pb.GetSimilarItemsResponse(**self._translate(result))

    async def GetPopularItems(
        self, request: pb.GetPopularItemsRequest, context: aio.ServicerContext
    ) -> pb.GetPopularItemsResponse:
        n = validation.num_results(request.num_results)
        user_id = validation.optional_id("user_id", request.user_id)
        result = await self._call(context, lambda b: b.popular_items(n, user_id))
        return pb.GetPopularItemsResponse(**self._translate(result))

    async def GetPersonalizedRanking(
        self, request: pb.GetPersonalizedRankingRequest, context: aio.ServicerContext
    ) -> pb.GetPersonalizedRankingResponse:
        user_id = validation.required_id("user_id", request.user_id)
        item_ids = validation.item_ids(request.item_ids)
        result = await self._call(context, lambda b: b.rerank(user_id, item_ids))
        return pb.GetPersonalizedRankingResponse(**self._translate(result))

    async def GetModelInfo(
        self, request: pb.GetModelInfoRequest, context: aio.ServicerContext
    ) -> pb.GetModelInfoResponse:
        info = await self._call(context, lambda b: b.info())
        return pb.GetModelInfoResponse(backend=info.backend, details=dict(info.details))

    async def _call(self, context: aio.ServicerContext, work: Callable[[Backend], T]) -> T:
        """Run `work(backend)` in the pool, within the caller's remaining deadline."""
        backend = self._backend
        if backend is None:
            raise BackendUnavailableError("the model is still loading; retry shortly")
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(work, backend)
        )
        try:
            return await asyncio.wait_for(future, timeout=context.time_remaining())
        except TimeoutError:
            raise BackendTimeoutError(
                "the deadline expired while the backend was working"
            ) from None

    def _translate(self, result: Recommendations) -> dict:
        items = []
        for scored in result.items:
            entry = self._catalog.get(scored.item_id)
            items.append(
                pb.RecommendedItem(
                    item_id=scored.item_id,
                    score=scored.score,
                    title=entry.title,
                    url=entry.url,
                    metadata=entry.metadata,
                )
            )
        return {"items": items, "recommendation_id": result.recommendation_id}
