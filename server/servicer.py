"""The RecommendationService servicer: validates requests and translates to and from protobuf.

It holds no recommendation logic and maps no errors itself: backends raise domain
errors, `server.handlers` turns them into status codes. Answers leave as wire bytes
built by `server.encoding` (the bytes protobuf would write, at a fraction of the cost).
How a backend call runs (on the event loop, batched with concurrent calls, or in a
thread pool for backends that block on I/O) is `server.dispatch`'s business.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from concurrent.futures import Executor

from grpc import aio

from recs.backends.base import Backend, CatalogItem, Event, Recommendations
from recs.backends.filtering import FilterCall
from recs.server import validation
from recs.server.catalog import Catalog
from recs.server.dispatch import BackendDispatcher
from recs.server.encoding import ResponseEncoder
from recs.v1 import recommendation_service_pb2 as pb


class RecommendationServicer:
    """Answers the four recommendation questions from whichever backend is installed."""

    def __init__(self, catalog: Catalog, executor: Executor) -> None:
        self._encoder = ResponseEncoder(catalog)
        self.dispatcher = BackendDispatcher(executor)

    def install_backend(self, backend: Backend) -> None:
        """Start answering from `backend` (which must be fully started); catalog items it
        learns later (PutItems) reach the answers' enrichment. Call on the event loop."""
        loop = asyncio.get_running_loop()
        encoder = self._encoder

        def on_items(items: Sequence[CatalogItem]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody to enrich
                loop.call_soon_threadsafe(encoder.update_items, list(items))

        backend.observe_items(on_items)
        self.dispatcher.install_backend(backend)

    async def GetRecommendations(
        self, request: pb.GetRecommendationsRequest, context: aio.ServicerContext
    ) -> bytes:
        user_id = validation.required_id("user_id", request.user_id)
        n = validation.num_results(request.num_results)
        call = self._filter(request)
        result = await self.dispatcher.recommend(context, user_id, n, call)
        return self._encode(result, context)

    async def GetSimilarItems(
        self, request: pb.GetSimilarItemsRequest, context: aio.ServicerContext
    ) -> bytes:
        item_id = validation.required_id("item_id", request.item_id)
        n = validation.num_results(request.num_results)
        user_id = validation.optional_id("user_id", request.user_id)
        call = self._filter(request, current_item=True)
        result = await self.dispatcher.call(
            context, lambda b: b.similar_items(item_id, n, call, user_id)
        )
        return self._encode(result, context)

    async def GetPopularItems(
        self, request: pb.GetPopularItemsRequest, context: aio.ServicerContext
    ) -> bytes:
        n = validation.num_results(request.num_results)
        user_id = validation.optional_id("user_id", request.user_id)
        call = self._filter(request)
        result = await self.dispatcher.call(context, lambda b: b.popular_items(n, user_id, call))
        return self._encode(result, context)

    async def GetTrendingItems(
        self, request: pb.GetTrendingItemsRequest, context: aio.ServicerContext
    ) -> bytes:
        n = validation.num_results(request.num_results)
        user_id = validation.optional_id("user_id", request.user_id)
        call = self._filter(request)
        result = await self.dispatcher.call(context, lambda b: b.trending_items(n, user_id, call))
        return self._encode(result, context)

    async def GetPersonalizedRanking(
        self, request: pb.GetPersonalizedRankingRequest, context: aio.ServicerContext
    ) -> bytes:
        user_id = validation.required_id("user_id", request.user_id)
        item_ids = validation.item_ids(request.item_ids)
        call = self._filter(request)
        result = await self.dispatcher.call(context, lambda b: b.rerank(user_id, item_ids, call))
        return self._encode(result, context)

    async def PutEvents(
        self, request: pb.PutEventsRequest, context: aio.ServicerContext
    ) -> pb.PutEventsResponse:
        user_id = validation.optional_id("user_id", request.user_id)
        session_id = request.session_id
        events = [_event(event) for event in request.events]
        validation.events(user_id, session_id, events)
        await self.dispatcher.put_events(context, user_id, session_id, events)
        return pb.PutEventsResponse()

    async def PutItems(
        self, request: pb.PutItemsRequest, context: aio.ServicerContext
    ) -> pb.PutItemsResponse:
        items = [
            CatalogItem(item.item_id, item.title, item.url, dict(item.properties))
            for item in request.items
        ]
        validation.catalog_items(items)
        await self.dispatcher.call_off_loop(context, lambda b: b.put_items(items))
        return pb.PutItemsResponse()

    async def GetModelInfo(
        self, request: pb.GetModelInfoRequest, context: aio.ServicerContext
    ) -> pb.GetModelInfoResponse:
        dispatcher = self.dispatcher
        backend = dispatcher.backend
        info = await dispatcher.call(context, lambda b: b.info())
        details = {**info.details, **backend.filters.details(), **dispatcher.route.details()}
        return pb.GetModelInfoResponse(backend=info.backend, details=details)

    def _filter(
        self, request: validation.FilteredRequest, current_item: bool = False
    ) -> FilterCall | None:
        """The request's filter, checked against the serving backend's filters (None: none).
        The values go as protobuf's own map: `resolve` copies them only for a new request."""
        if not request.filter_name and not request.filter_values:
            return None
        return self.dispatcher.backend.filters.resolve(
            request.filter_name, request.filter_values, current_item=current_item
        )

    def _encode(self, result: Recommendations, context: aio.ServicerContext) -> bytes:
        """The response's wire bytes: the scored items, each enriched from the catalog.

        An answer from a fallback engine says so in trailing metadata (`x-recs-served-by`).
        """
        if result.served_by:
            context.set_trailing_metadata((("x-recs-served-by", result.served_by),))
        return self._encoder.encode(
            result.item_ids, result.scores, result.recommendation_id, result.reasons
        )


def _event(message: pb.Event) -> Event:
    """A domain Event from its message (`sent_at` 0 when unset: refused by validation)."""
    sent_at = message.sent_at.seconds + message.sent_at.nanos / 1e9
    return Event(
        event_type=message.event_type,
        item_id=message.item_id,
        sent_at=sent_at if message.HasField("sent_at") else 0.0,
        event_id=message.event_id,
        event_value=message.event_value if message.HasField("event_value") else None,
        recommendation_id=message.recommendation_id,
        impression=tuple(message.impression),
    )
