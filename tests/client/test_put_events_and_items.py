"""`put_events` and `put_items` of both clients: what reaches the server, checked on a
recording server (tests/client/recording.py)."""

from __future__ import annotations

import asyncio
import math
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import grpc
import pytest

from recs.client import AsyncRecsClient, CatalogItem, Event, RecsClient, RecsError
from tests.client.recording import RecordingServicer

CLIENTS = [RecsClient, AsyncRecsClient]


def call(client_class: type, target: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """`method` of a sync or an asyncio client of `target`, called once."""
    if client_class is RecsClient:
        with RecsClient(target) as client:
            return getattr(client, method)(*args, **kwargs)

    async def go() -> Any:
        async with AsyncRecsClient(target) as client:
            return await getattr(client, method)(*args, **kwargs)

    return asyncio.run(go())


@pytest.mark.parametrize("client_class", CLIENTS)
def test_put_events_sends_every_field(recording: RecordingServicer, client_class: type) -> None:
    when = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    events = [
        Event(
            "watched",
            "v7",
            sent_at=when,
            event_id="e-1",
            event_value=0.8,
            recommendation_id="rid-1",
            impression=["v7", "v8", "v9"],
        ),
        Event("clicked", "v8", sent_at=when),
    ]

    assert call(client_class, recording.target, "put_events", "s-1", events, user_id="u42") is None

    (request,) = recording.requests
    assert (request.user_id, request.session_id) == ("u42", "s-1")
    first, second = request.events
    assert (first.event_id, first.event_type, first.item_id) == ("e-1", "watched", "v7")
    assert first.HasField("event_value") and first.event_value == 0.8
    assert first.recommendation_id == "rid-1"
    assert list(first.impression) == ["v7", "v8", "v9"]
    assert (first.sent_at.seconds, first.sent_at.nanos) == (1_714_564_800, 250_000_000)
    # Defaults: no value (absent, not 0), no id, no impression.
    assert (second.event_type, second.item_id) == ("clicked", "v8")
    assert not second.HasField("event_value")
    assert second.event_id == "" and second.recommendation_id == "" and not second.impression


@pytest.mark.parametrize("client_class", CLIENTS)
def test_an_anonymous_visitors_events_go_without_user_id(
    recording: RecordingServicer, client_class: type
) -> None:
    call(client_class, recording.target, "put_events", "s-9", [Event("clicked", "v1")])

    (request,) = recording.requests
    assert request.user_id == "" and request.session_id == "s-9"


def test_an_event_value_of_zero_is_sent(recording: RecordingServicer) -> None:
    with RecsClient(recording.target) as client:
        client.put_events("s", [Event("watched", "v1", event_value=0.0)])

    (event,) = recording.requests[0].events
    assert event.HasField("event_value") and event.event_value == 0.0


@pytest.mark.parametrize(
    ("sent_at", "seconds", "nanos"),
    [
        (datetime(2024, 5, 1, 12, tzinfo=UTC), 1_714_564_800, 0),
        # Another offset: the same instant.
        (datetime(2024, 5, 1, 14, tzinfo=timezone(timedelta(hours=2))), 1_714_564_800, 0),
        (datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC), -1, 500_000_000),
        (1_714_564_800, 1_714_564_800, 0),
        (1_714_564_800.25, 1_714_564_800, 250_000_000),
        (0.5, 0, 500_000_000),
    ],
)
def test_sent_at_as_datetime_or_epoch_seconds(
    recording: RecordingServicer, sent_at: datetime | float, seconds: int, nanos: int
) -> None:
    with RecsClient(recording.target) as client:
        client.put_events("s", [Event("watched", "v1", sent_at=sent_at)])

    stamp = recording.requests[0].events[0].sent_at
    assert (stamp.seconds, stamp.nanos) == (seconds, nanos)


@pytest.mark.parametrize("client_class", CLIENTS)
def test_without_sent_at_events_are_stamped_now_alike(
    recording: RecordingServicer, client_class: type
) -> None:
    before = time.time()
    events = [Event("watched", "v1"), Event("clicked", "v2")]
    call(client_class, recording.target, "put_events", "s", events)
    after = time.time()

    first, second = (
        e.sent_at.seconds + e.sent_at.nanos / 1e9 for e in recording.requests[0].events
    )
    assert before - 1 <= first <= after + 1
    assert first == second


@pytest.mark.parametrize(
    ("event", "error", "says"),
    [
        (
            Event("watched", "v1", sent_at=datetime(2024, 5, 1)),
            ValueError,
            "events[1].sent_at: a datetime needs a timezone",
        ),
        (Event("watched", "v1", sent_at=math.nan), ValueError, "events[1].sent_at: epoch seconds"),
        (Event("watched", "v1", sent_at=1e12), ValueError, "outside the years 1 to 9999"),
        (Event("watched", "v1", sent_at="2024-05-01"), TypeError, "events[1].sent_at: expected"),
        (Event("watched", "v1", sent_at=True), TypeError, "got bool"),
        (Event("watched", "v1", impression="v2"), TypeError, "events[1].impression: expected"),
    ],
)
def test_what_cannot_be_sent_raises_before_any_call(
    recording: RecordingServicer, event: Event, error: type, says: str
) -> None:
    with RecsClient(recording.target) as client, pytest.raises(error, match=re.escape(says)):
        client.put_events("s", [Event("watched", "v0"), event])

    assert recording.requests == []


@pytest.mark.parametrize("client_class", CLIENTS)
def test_put_items_sends_the_items_in_order(
    recording: RecordingServicer, client_class: type
) -> None:
    items = [
        CatalogItem(
            "v8",
            title="New video",
            url="https://videos.example/v8",
            properties={"CATEGORIES": "comedy|pets", "DURATION": "42"},
        ),
        CatalogItem("v9"),
    ]

    assert call(client_class, recording.target, "put_items", items) is None

    (request,) = recording.requests
    first, second = request.items
    assert (first.item_id, first.title, first.url) == ("v8", "New video", items[0].url)
    assert dict(first.properties) == {"CATEGORIES": "comedy|pets", "DURATION": "42"}
    assert (second.item_id, second.title, second.url, dict(second.properties)) == ("v9", "", "", {})


@pytest.mark.parametrize("client_class", CLIENTS)
@pytest.mark.parametrize(
    "method, args",
    [
        ("put_events", ("s", [Event("watched", "")])),
        ("put_items", ([CatalogItem("")],)),
    ],
)
def test_a_refusal_is_a_recs_error_and_is_not_retried(
    recording: RecordingServicer, client_class: type, method: str, args: tuple
) -> None:
    field = "events[0].item_id" if method == "put_events" else "items[0].item_id"
    recording.failures[1] = (grpc.StatusCode.INVALID_ARGUMENT, f"{field}: is required")

    with pytest.raises(RecsError) as caught:
        call(client_class, recording.target, method, *args)

    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.message == f"{field}: is required"
    assert len(recording.requests) == 1


@pytest.mark.parametrize("client_class", CLIENTS)
@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED])
def test_put_events_is_retried_when_the_server_did_no_work_with_the_same_events(
    recording: RecordingServicer, client_class: type, code: grpc.StatusCode
) -> None:
    recording.failures.update({1: (code, "busy"), 2: (code, "busy")})

    call(client_class, recording.target, "put_events", "s", [Event("watched", "v1", event_id="e")])

    assert len(recording.requests) == 3
    # Stamped once: every attempt carries the same event, so event_id de-duplicates.
    assert recording.requests[0] == recording.requests[1] == recording.requests[2]
