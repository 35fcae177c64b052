"""asyncio client with the same surface as `RecsClient` (methods are coroutines)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
from grpc import aio

from recs.client.errors import RecsError
from recs.client.filters import filter_fields
from recs.client.types import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT_SECONDS,
    CatalogItem,
    Event,
    ModelInfo,
    Result,
    auth_metadata,
    model_info_from_proto,
    open_channel,
    put_events_request,
    put_items_request,
    result_from_proto,
)
from recs.v1 import recommendation_service_pb2 as pb
from recs.v1 import recommendation_service_pb2_grpc as pb_grpc


class AsyncRecsClient:
    """Talks to one recommendation service from asyncio code; `async with` or `await close()`.

    `recommend`, `similar`, `popular`, `trending` and `rerank` take keyword-only
    `filter_name`, a filter of the server's `[filters]` config by name (Personalize's
    filterArn), and `filter_values`, the values of its `$PARAMETER`s in Personalize's format:
    several values of one parameter as one string of quoted, comma-separated values, which
    `recs.client.filter_value("comedy", "gaming")` writes. An unknown filter or a missing
    INCLUDE parameter is INVALID_ARGUMENT naming the field.
    """

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        tls_ca: str | Path | None = None,
        token: str | None = None,
    ) -> None:
        """`tls_ca`: the PEM file of the CA that signed the server's certificate (TLS; without
        it the channel is plaintext). `token`: a bearer token sent with every call."""
        self.target = target
        self.timeout = timeout
        self._metadata = auth_metadata(token)
        self._channel = open_channel(aio, target, max_attempts, tls_ca)
        self._stub = pb_grpc.RecommendationServiceStub(self._channel)

    async def recommend(
        self,
        user_id: str,
        num_results: int = 0,
        *,
        filter_name: str = "",
        filter_values: Mapping[str, str] | None = None,
    ) -> Result:
        """What `user_id` should watch next (0 = the server default, 25); without a filter,
        the server's default one applies (nothing the user already interacted with)."""
        request = pb.GetRecommendationsRequest(
            user_id=user_id, num_results=num_results, **filter_fields(filter_name, filter_values)
        )
        return result_from_proto(await self._invoke(self._stub.GetRecommendations, request))

    async def similar(
        self,
        item_id: str,
        num_results: int = 0,
        user_id: str = "",
        *,
        filter_name: str = "",
        filter_values: Mapping[str, str] | None = None,
    ) -> Result:
        """Videos like `item_id`; a filter may compare with its fields (`CurrentItem.<field>`).
        With `user_id`, what that user watched is left out."""
        request = pb.GetSimilarItemsRequest(
            item_id=item_id,
            num_results=num_results,
            user_id=user_id,
            **filter_fields(filter_name, filter_values),
        )
        return result_from_proto(await self._invoke(self._stub.GetSimilarItems, request))

    async def popular(
        self,
        num_results: int = 0,
        user_id: str = "",
        *,
        filter_name: str = "",
        filter_values: Mapping[str, str] | None = None,
    ) -> Result:
        """The most popular videos (`user_id` is optional; filters may use it)."""
        request = pb.GetPopularItemsRequest(
            num_results=num_results, user_id=user_id, **filter_fields(filter_name, filter_values)
        )
        return result_from_proto(await self._invoke(self._stub.GetPopularItems, request))

    async def trending(
        self,
        num_results: int = 0,
        user_id: str = "",
        *,
        filter_name: str = "",
        filter_values: Mapping[str, str] | None = None,
    ) -> Result:
        """The videos rising fastest now (Personalize's Trending-Now): the largest increase
        in interactions in the latest trend interval against the one before (`user_id` is
        optional; filters may use it)."""
        request = pb.GetTrendingItemsRequest(
            num_results=num_results, user_id=user_id, **filter_fields(filter_name, filter_values)
        )
        return result_from_proto(await self._invoke(self._stub.GetTrendingItems, request))

    async def rerank(
        self,
        user_id: str,
        item_ids: Sequence[str],
        *,
        filter_name: str = "",
        filter_values: Mapping[str, str] | None = None,
    ) -> Result:
        """`item_ids` ordered best first for `user_id`, without those the filter excludes."""
        request = pb.GetPersonalizedRankingRequest(
            user_id=user_id, item_ids=list(item_ids), **filter_fields(filter_name, filter_values)
        )
        return result_from_proto(await self._invoke(self._stub.GetPersonalizedRanking, request))

    async def model_info(self) -> ModelInfo:
        """Which backend answers and what model it serves."""
        response = await self._invoke(self._stub.GetModelInfo, pb.GetModelInfoRequest())
        return model_info_from_proto(response)

    async def put_events(self, session_id: str, events: Sequence[Event], user_id: str = "") -> None:
        """Record what a user did: 1 to 10 `Event`s of one session (Personalize's PutEvents).

        `session_id` (required, at most 256 characters) groups a visit's events; without
        `user_id` they belong to an anonymous visitor and `recommend(session_id)` answers
        from them. Returns once the server has stored them durably; recommendations reflect
        them within a second. A bad field is a RecsError with INVALID_ARGUMENT naming it
        (`events[3].item_id: is required`); nothing of a refused call is stored.

        Like every call, this one is retried only on UNAVAILABLE and RESOURCE_EXHAUSTED,
        which the server answers before doing any work. A connection lost after the server
        stored the events but before its answer arrived also reads as UNAVAILABLE, so a
        retry can deliver the events twice: give each `Event` a unique `event_id`, and
        Personalize leaves the later copies out of training.
        """
        request = put_events_request(session_id, events, user_id)
        await self._invoke(self._stub.PutEvents, request)

    async def put_items(self, items: Sequence[CatalogItem]) -> None:
        """Add or replace 1 to 10 catalog videos (Personalize's PutItems); an existing
        `item_id` is replaced. A bad field is a RecsError with INVALID_ARGUMENT naming it
        (`items[2].item_id: is required`). Replacing an item is idempotent, so a retry is
        harmless."""
        await self._invoke(self._stub.PutItems, put_items_request(items))

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def __aenter__(self) -> AsyncRecsClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _invoke(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise RecsError.from_rpc_error(error) from None
