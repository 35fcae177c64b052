"""The RecommendationService servicer: validates requests and translates to and from protobuf.

It holds no recommendation logic and maps no errors itself: backends raise domain
errors, `server.interceptors` turns them into status codes. How a backend call runs
(on the event loop, batched with concurrent calls, or in a thread pool for backends
that block on I/O) is `server.dispatch`'s business.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import TypeVar

from grpc import aio

from backends.base import Backend, Recommendations
from recs.v1 import recommendation_service_pb2 as pb
from recs.v1 import recommendation_service_pb2_grpc as pb_grpc
from server import validation
from server.catalog import Catalog
from server.catalog_items import CatalogItems
from server.dispatch import BackendDispatcher

R = TypeVar("R")


class RecommendationServicer(pb_grpc.RecommendationServiceServicer):
    """Answers the four recommendation questions from whichever backend is installed."""

    def __init__(self, catalog: Catalog, executor: Executor) -> None:
        self._catalog_items = CatalogItems(catalog)
        self.dispatcher = BackendDispatcher(executor)

    def install_backend(self, backend: Backend) -> None:
        """Start answering from `backend` (which must be fully started)."""
        self.dispatcher.install_backend(backend)

    async def GetRecommendations(
        self, request: pb.GetRecommendationsRequest, context: aio.ServicerContext
    ) -> pb.GetRecommendationsResponse:
        user_id = validation.required_id("user_id", request.user_id)
        n = validation.num_results(request.num_results)
        result = await self.dispatcher.recommend(context, user_id, n)
        return self._translate(result, pb.GetRecommendationsResponse())

    async def GetSimilarItems(
        self, request: pb.GetSimilarItemsRequest, context: aio.ServicerContext
    ) -> pb.GetSimilarItemsResponse:
        item_id = validation.required_id("item_id", request.item_id)
        n = validation.num_results(request.num_results)
        result = await self.dispatcher.call(context, lambda b: b.similar_items(item_id, n))
        return self._translate(result, pb.GetSimilarItemsResponse())

    async def GetPopularItems(
        self, request: pb.GetPopularItemsRequest, context: aio.ServicerContext
    ) -> pb.GetPopularItemsResponse:
        n = validation.num_results(request.num_results)
        user_id = validation.optional_id("user_id", request.user_id)
        result = await self.dispatcher.call(context, lambda b: b.popular_items(n, user_id))
        return self._translate(result, pb.GetPopularItemsResponse())

    async def GetPersonalizedRanking(
        self, request: pb.GetPersonalizedRankingRequest, context: aio.ServicerContext
    ) -> pb.GetPersonalizedRankingResponse:
        user_id = validation.required_id("user_id", request.user_id)
        item_ids = validation.item_ids(request.item_ids)
        result = await self.dispatcher.call(context, lambda b: b.rerank(user_id, item_ids))
        return self._translate(result, pb.GetPersonalizedRankingResponse())

    async def GetModelInfo(
        self, request: pb.GetModelInfoRequest, context: aio.ServicerContext
    ) -> pb.GetModelInfoResponse:
        info = await self.dispatcher.call(context, lambda b: b.info())
        return pb.GetModelInfoResponse(backend=info.backend, details=dict(info.details))

    def _translate(self, result: Recommendations, response: R) -> R:
        """Fill `response` with the scored items, each enriched from the catalog."""
        response.recommendation_id = result.recommendation_id
        add, prototype = response.items.add, self._catalog_items.prototype
        for scored in result.items:
            item = add()
            item.CopyFrom(prototype(scored.item_id))
            item.score = scored.score
        return response
