"""Plain result types, so callers never handle generated protobuf classes."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from recs.v1 import recommendation_service_pb2 as pb

DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_ATTEMPTS = 4

# grpc's own retry machinery, driven by the channel's service config, with exponential
# backoff. Retried: UNAVAILABLE (the server is loading, shutting down or unreachable) and
# RESOURCE_EXHAUSTED (the server refused the call because it already handles its
# max_concurrent_rpcs). Both are safe to repeat: the server did no work for the call.
# Everything else is final.
RETRY_SERVICE_CONFIG_TEMPLATE: dict[str, Any] = {
    "methodConfig": [
        {
            "name": [{"service": "recs.v1.RecommendationService"}],
            "retryPolicy": {
                "maxAttempts": DEFAULT_MAX_ATTEMPTS,
                "initialBackoff": "0.1s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"],
            },
        }
    ]
}


def open_channel(channels: Any, target: str, max_attempts: int, tls_ca: str | Path | None) -> Any:
    """A channel to `target` from `channels` (`grpc` or `grpc.aio`, which open channels alike):
    plaintext, or TLS trusting the CA certificate in `tls_ca` (a PEM file); with gRPC's retry
    policy (`channel_options`)."""
    options = channel_options(max_attempts)
    if tls_ca is None:
        return channels.insecure_channel(target, options=options)
    credentials = grpc.ssl_channel_credentials(root_certificates=Path(tls_ca).read_bytes())
    return channels.secure_channel(target, credentials, options=options)


def auth_metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    """The `authorization: Bearer <token>` metadata sent with every call, or None."""
    return (("authorization", f"Bearer {token}"),) if token else None


def channel_options(max_attempts: int) -> list[tuple[str, Any]]:
    """Channel options enabling grpc's built-in retry of UNAVAILABLE and RESOURCE_EXHAUSTED."""
    service_config = json.loads(json.dumps(RETRY_SERVICE_CONFIG_TEMPLATE))
    policy = service_config["methodConfig"][0]["retryPolicy"]
    policy["maxAttempts"] = max(2, min(max_attempts, 5))
    options: list[tuple[str, Any]] = [("grpc.service_config", json.dumps(service_config))]
    options.append(("grpc.enable_retries", 1 if max_attempts > 1 else 0))
    return options


@dataclass(frozen=True, slots=True)
class Item:
    """One recommended video."""

    item_id: str
    score: float
    title: str = ""
    url: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    # Why it is there, where the recipe says: ["Exploration"] for a new video mixed in.
    reason: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Result:
    """An ordered list of videos, best first, and the id of this answer."""

    items: list[Item]
    recommendation_id: str = ""

    @property
    def item_ids(self) -> list[str]:
        """The ids in order."""
        return [item.item_id for item in self.items]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Which backend answers and facts about its model."""

    backend: str
    details: dict[str, str]


def result_from_proto(response: Any) -> Result:
    """Any of the five recommendation responses as a Result."""
    return Result(
        items=[
            Item(i.item_id, i.score, i.title, i.url, dict(i.metadata), tuple(i.reason))
            for i in response.items
        ],
        recommendation_id=response.recommendation_id,
    )


def model_info_from_proto(response: pb.GetModelInfoResponse) -> ModelInfo:
    """The model-info response as a ModelInfo."""
    return ModelInfo(response.backend, dict(response.details))


# Personalize's own limits per call; the server checks them (INVALID_ARGUMENT naming the field).
MAX_EVENTS_PER_CALL = 10
MAX_ITEMS_PER_CALL = 10

# The range of google.protobuf.Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_TIMESTAMP_SECONDS = -62_135_596_800
_MAX_TIMESTAMP_SECONDS = 253_402_300_799
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing a user did with a video, for `put_events` (Personalize's PutEvents event).

    `event_type`: e.g. "watched" or "clicked". `item_id`: the video. `sent_at`: when it
    happened, a timezone-aware datetime or epoch seconds; None stamps it with the time
    `put_events` sends it. `event_id`: optional, a unique id of this event, which lets
    Personalize drop a duplicate if the call is sent twice (see `put_events`).
    `event_value`: optional, e.g. the share of the video watched. `recommendation_id`: the
    `Result.recommendation_id` of the answer that showed the video. `impression`: the ids of
    the videos shown with it (at most 25).
    """

    event_type: str
    item_id: str
    sent_at: datetime | float | None = None
    event_id: str = ""
    event_value: float | None = None
    recommendation_id: str = ""
    impression: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """A catalog video for `put_items`; an existing `item_id` is replaced.

    `properties`: further catalog columns by name, as in items.csv, e.g.
    `{"CATEGORIES": "comedy|music", "DURATION": "42"}`.
    """

    item_id: str
    title: str = ""
    url: str = ""
    properties: Mapping[str, str] = field(default_factory=dict)


def put_events_request(
    session_id: str, events: Sequence[Event], user_id: str
) -> pb.PutEventsRequest:
    """The PutEvents request; events without `sent_at` are stamped now, all alike.

    Raises ValueError or TypeError, naming the field as the server would
    (`events[2].sent_at`), for what cannot be put in the message at all; everything else
    (required fields, lengths, counts) is the server's to check.
    """
    now = Timestamp()
    now.GetCurrentTime()
    messages = []
    for index, event in enumerate(events):
        where = f"events[{index}]"
        message = pb.Event(
            event_id=event.event_id,
            event_type=event.event_type,
            item_id=event.item_id,
            sent_at=now if event.sent_at is None else timestamp(event.sent_at, f"{where}.sent_at"),
            recommendation_id=event.recommendation_id,
            impression=_strings(event.impression, f"{where}.impression"),
        )
        if event.event_value is not None:
            message.event_value = event.event_value
        messages.append(message)
    return pb.PutEventsRequest(user_id=user_id, session_id=session_id, events=messages)


def put_items_request(items: Sequence[CatalogItem]) -> pb.PutItemsRequest:
    """The PutItems request of `items`, in order."""
    return pb.PutItemsRequest(
        items=[
            pb.CatalogItem(
                item_id=item.item_id,
                title=item.title,
                url=item.url,
                properties=dict(item.properties),
            )
            for item in items
        ]
    )


def timestamp(value: datetime | float, name: str = "sent_at") -> Timestamp:
    """`value` (a timezone-aware datetime, or epoch seconds) as a protobuf Timestamp.

    A naive datetime is refused (ValueError naming `name`): whether it meant UTC or local
    time cannot be told, and guessing wrong shifts events by hours.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"{name}: a datetime needs a timezone, e.g. datetime.now(timezone.utc)"
            )
        since_epoch = value - _EPOCH  # exact, unlike value.timestamp(), a float
        seconds = since_epoch.days * 86_400 + since_epoch.seconds
        nanos = since_epoch.microseconds * 1000
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{name}: epoch seconds must be a finite number, got {value}")
        seconds = math.floor(value)
        nanos = round((value - seconds) * 1e9)
        if nanos >= 1_000_000_000:
            seconds, nanos = seconds + 1, 0
    else:
        raise TypeError(
            f"{name}: expected a datetime, epoch seconds or None, got {type(value).__name__}"
        )
    if not _MIN_TIMESTAMP_SECONDS <= seconds <= _MAX_TIMESTAMP_SECONDS:
        raise ValueError(f"{name}: {value} is outside the years 1 to 9999")
    return Timestamp(seconds=int(seconds), nanos=int(nanos))


def _strings(values: Sequence[str], name: str) -> list[str]:
    # One id given as a plain string would otherwise be sent as its characters.
    if isinstance(values, str | bytes):
        raise TypeError(f"{name}: expected a sequence of ids, got one {type(values).__name__}")
    return list(values)
