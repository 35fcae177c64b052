"""PutEvents and PutItems on the wire: PersonalizeBackend -> boto3 (real serialization and
signing) -> the loopback emulator's /events and /items -> the backend behind it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from recs.backends.base import CatalogItem, Event
from recs.backends.errors import (
    BackendMisconfiguredError,
    BackendUnavailableError,
    InvalidRequestError,
)
from recs.backends.personalize.backend import PersonalizeBackend
from recs.backends.personalize.config import PersonalizeBackendConfig
from tests.backends.personalize.emulator import (
    DEFAULT_ITEMS_DATASET_ARN,
    DEFAULT_TRACKING_ID,
    EmulatedError,
    PersonalizeRuntimeEmulator,
    ReceivedEvents,
    ReceivedItems,
)
from tests.backends.personalize.test_wire import ScriptedBackend

WATCHED = Event("watched", "v1", 1_704_067_200.25, event_id="e1", event_value=0.75)
CLICKED = Event("click", "v2", 1_704_067_260.0, recommendation_id="RID-9", impression=("v2", "v3"))
VIDEO = CatalogItem(
    "v9",
    title="Cats at play",
    url="https://cdn.example.com/v9.mp4",
    properties={"CATEGORIES": "animals|pets", "CREATION_TIMESTAMP": "1690000000"},
)


class LearningBackend(ScriptedBackend):
    """Takes events and items, or refuses them like the local engine would."""

    def __init__(self) -> None:
        self.events: list[tuple[str | None, str, list[Event]]] = []
        self.items: list[CatalogItem] = []

    def put_events(self, user_id: str | None, session_id: str, events: Sequence[Event]) -> None:
        if user_id == "bad":
            raise InvalidRequestError("user_id", "unknown to the engine")
        self.events.append((user_id, session_id, list(events)))

    def put_items(self, items: Sequence[CatalogItem]) -> None:
        self.items.extend(items)


@pytest.fixture
def learning() -> LearningBackend:
    return LearningBackend()


@pytest.fixture
def emulator(learning: LearningBackend) -> Iterator[PersonalizeRuntimeEmulator]:
    with PersonalizeRuntimeEmulator(learning) as running:
        yield running


def backend_for(emulator: PersonalizeRuntimeEmulator, **overrides: Any) -> PersonalizeBackend:
    """A started backend whose events client talks to the emulator."""
    values: dict[str, Any] = {
        "region": "us-east-1",
        "endpoint_url": emulator.endpoint_url,
        "max_attempts": 1,
        **emulator.campaign_config(),
        **emulator.events_config(),
    }
    values.update(overrides)
    backend = PersonalizeBackend(PersonalizeBackendConfig.model_validate(values))
    backend.start()
    return backend


def test_put_events_crosses_the_wire_and_reaches_the_engine(emulator, learning):
    backend_for(emulator).put_events("u1", "s1", [WATCHED, CLICKED])
    (request,) = emulator.requests
    assert request.path == "/events"
    assert request.body == {
        "trackingId": DEFAULT_TRACKING_ID,
        "userId": "u1",
        "sessionId": "s1",
        "eventList": [
            {
                "eventType": "watched",
                "itemId": "v1",
                "sentAt": 1704067200.25,  # epoch seconds, the fraction kept
                "eventId": "e1",
                "eventValue": 0.75,
            },
            {
                "eventType": "click",
                "itemId": "v2",
                "sentAt": 1704067260,
                "recommendationId": "RID-9",
                "impression": ["v2", "v3"],
            },
        ],
    }
    assert emulator.events == [ReceivedEvents(DEFAULT_TRACKING_ID, "u1", "s1", (WATCHED, CLICKED))]
    assert learning.events == [("u1", "s1", [WATCHED, CLICKED])]


def test_anonymous_events_carry_the_session_only(emulator, learning):
    backend_for(emulator).put_events(None, "session-42", [WATCHED])
    assert "userId" not in emulator.requests[0].body
    assert learning.events == [(None, "session-42", [WATCHED])]


def test_put_items_sends_camel_case_json_and_the_engine_gets_catalog_columns(emulator, learning):
    backend_for(emulator).put_items([VIDEO, CatalogItem("v10")])
    (request,) = emulator.requests
    assert request.path == "/items"
    assert request.body["datasetArn"] == DEFAULT_ITEMS_DATASET_ARN
    first, second = request.body["items"]
    assert first["itemId"] == "v9"
    assert json.loads(first["properties"]) == {
        "title": "Cats at play",
        "url": "https://cdn.example.com/v9.mp4",
        "categories": "animals|pets",
        "creationTimestamp": "1690000000",
    }
    assert second == {"itemId": "v10"}
    assert emulator.items == [ReceivedItems(DEFAULT_ITEMS_DATASET_ARN, (VIDEO, CatalogItem("v10")))]
    assert learning.items == [VIDEO, CatalogItem("v10")]


def test_requests_to_the_events_service_are_signed_for_personalize(emulator):
    backend_for(emulator).put_events("u1", "s1", [WATCHED])
    headers = emulator.requests[0].headers
    assert "/us-east-1/personalize/aws4_request" in headers["Authorization"]
    assert headers["Content-Type"] == "application/json"


def test_an_unknown_tracking_id_is_our_misconfiguration(emulator, learning):
    backend = backend_for(emulator, event_tracking_id="deleted-tracker")
    with pytest.raises(BackendMisconfiguredError, match="event_tracking_id = deleted-tracker"):
        backend.put_events("u1", "s1", [WATCHED])
    assert emulator.events == [] and learning.events == []


def test_an_unknown_items_dataset_is_our_misconfiguration(emulator):
    gone = "arn:aws:personalize:us-east-1:000000000000:dataset/gone/ITEMS"
    backend = backend_for(emulator, items_dataset_arn=gone)
    with pytest.raises(BackendMisconfiguredError, match=f"items_dataset_arn = {gone}"):
        backend.put_items([VIDEO])


def test_the_engine_refusing_events_is_invalid_input_on_the_wire(emulator):
    with pytest.raises(InvalidRequestError) as caught:
        backend_for(emulator).put_events("bad", "s1", [WATCHED])
    assert caught.value.field == "events"
    assert "unknown to the engine" in caught.value.message
    assert emulator.events == []


def test_throttled_events_are_retried_then_unavailable(emulator):
    emulator.fail_next(400, "ThrottlingException", "Rate exceeded", times=2)
    with pytest.raises(BackendUnavailableError, match="throttling PutEvents"):
        backend_for(emulator, max_attempts=2).put_events("u1", "s1", [WATCHED])
    assert len(emulator.requests) == 2
    assert emulator.events == []


def test_an_engine_without_events_still_has_them_recorded():
    with PersonalizeRuntimeEmulator(ScriptedBackend()) as emulator:
        backend_for(emulator).put_events("u1", "s1", [WATCHED])
        backend_for(emulator).put_items([VIDEO])
        assert emulator.events[0].events == (WATCHED,)
        assert emulator.items[0].items == (VIDEO,)


def test_the_standard_events_endpoint_variable_reaches_the_emulator(emulator, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", emulator.endpoint_url)
    backend = PersonalizeBackend(
        PersonalizeBackendConfig(region="us-east-1", event_tracking_id=DEFAULT_TRACKING_ID)
    )
    backend.start()
    backend.put_events("u1", "s1", [WATCHED])
    assert len(emulator.events) == 1


# what the emulator refuses, as Personalize does (bodies boto3 would not send) ----------


@pytest.fixture
def offline() -> PersonalizeRuntimeEmulator:
    """An emulator asked directly (`handle`), without a listening socket."""
    return PersonalizeRuntimeEmulator(LearningBackend())


GOOD_EVENT = {"eventType": "watched", "itemId": "v1", "sentAt": 1704067200}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"sessionId": "s", "eventList": [GOOD_EVENT]}, 400, "trackingId is required"),
        (
            {"trackingId": "other", "sessionId": "s", "eventList": [GOOD_EVENT]},
            404,
            "Event tracker other not found",
        ),
        ({"trackingId": DEFAULT_TRACKING_ID, "eventList": [GOOD_EVENT]}, 400, "sessionId"),
        ({"trackingId": DEFAULT_TRACKING_ID, "sessionId": "s"}, 400, "eventList"),
        (
            {"trackingId": DEFAULT_TRACKING_ID, "sessionId": "s", "eventList": [GOOD_EVENT] * 11},
            400,
            "1 to 10 events",
        ),
        (
            {"trackingId": DEFAULT_TRACKING_ID, "sessionId": "s", "eventList": [{"sentAt": 1}]},
            400,
            "eventList[0].eventType is required",
        ),
        (
            {
                "trackingId": DEFAULT_TRACKING_ID,
                "sessionId": "s",
                "eventList": [{"eventType": "watched"}],
            },
            400,
            "eventList[0].sentAt is required",
        ),
        (
            {
                "trackingId": DEFAULT_TRACKING_ID,
                "sessionId": "s",
                "eventList": [{**GOOD_EVENT, "recommendationId": "r" * 41}],
            },
            400,
            "recommendationId",
        ),
        (
            {
                "trackingId": DEFAULT_TRACKING_ID,
                "sessionId": "s",
                "eventList": [{**GOOD_EVENT, "impression": ["v"] * 26}],
            },
            400,
            "impression",
        ),
    ],
)
def test_the_emulator_checks_put_events_like_personalize(offline, body, status, message):
    with pytest.raises(EmulatedError) as caught:
        offline.handle("/events", {}, json.dumps(body).encode())
    assert caught.value.status == status
    assert message in caught.value.message
    assert offline.events == []


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"items": [{"itemId": "v1"}]}, 400, "datasetArn is required"),
        ({"datasetArn": "arn:aws:personalize:x:1:dataset/y", "items": [{"itemId": "v1"}]}, 404, ""),
        ({"datasetArn": DEFAULT_ITEMS_DATASET_ARN, "items": []}, 400, "1 to 10 items"),
        (
            {"datasetArn": DEFAULT_ITEMS_DATASET_ARN, "items": [{"itemId": "v1"}] * 11},
            400,
            "1 to 10 items",
        ),
        (
            {"datasetArn": DEFAULT_ITEMS_DATASET_ARN, "items": [{"properties": "{}"}]},
            400,
            "items[0].itemId is required",
        ),
        (
            {
                "datasetArn": DEFAULT_ITEMS_DATASET_ARN,
                "items": [{"itemId": "v1", "properties": "{"}],
            },
            400,
            "Error parsing properties json",
        ),
        (
            {
                "datasetArn": DEFAULT_ITEMS_DATASET_ARN,
                "items": [{"itemId": "v1", "properties": json.dumps({"title": "x" * 32000})}],
            },
            400,
            "32000",
        ),
    ],
)
def test_the_emulator_checks_put_items_like_personalize(offline, body, status, message):
    with pytest.raises(EmulatedError) as caught:
        offline.handle("/items", {}, json.dumps(body).encode())
    assert caught.value.status == status
    assert message in caught.value.message
    assert offline.items == []
