"""PutEvents and PutItems on the wire: PersonalizeBackend -> boto3 (real serialization and
signing) -> the AWS-protocol endpoint's /events and /items (tests/aws_endpoint.py) -> the
backend behind it. What boto3 sends is recorded, and faults injected, by `Wire` (wire.py).
The endpoint's own checks of bodies boto3 would never send are posted to it raw."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
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
from recs.server.aws_protocol import DEFAULT_REGION, STAND_IN_TRACKING_ID, stand_in_arn
from tests.aws_endpoint import EndpointThread
from tests.backends.personalize.test_wire import ScriptedBackend
from tests.backends.personalize.wire import Wire, wired_backend

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
def endpoint(learning: LearningBackend) -> Iterator[EndpointThread]:
    with EndpointThread(learning) as running:
        yield running


@pytest.fixture
def wire() -> Wire:
    return Wire()


def backend_for(endpoint: EndpointThread, wire: Wire, **overrides: Any) -> PersonalizeBackend:
    """A started backend whose runtime and events clients talk to the endpoint."""
    values: dict[str, Any] = {
        "region": "us-east-1",
        "max_attempts": 1,
        **endpoint.personalize_config(),
    }
    values.update(overrides)
    return wired_backend(values, wire)


def test_put_events_crosses_the_wire_and_reaches_the_engine(endpoint, wire, learning):
    backend_for(endpoint, wire).put_events("u1", "s1", [WATCHED, CLICKED])
    (request,) = wire.requests
    assert request.path == "/events"
    assert request.body == {
        "trackingId": endpoint.personalize_config()["event_tracking_id"],
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
    assert learning.events == [("u1", "s1", [WATCHED, CLICKED])]


def test_anonymous_events_carry_the_session_only(endpoint, wire, learning):
    backend_for(endpoint, wire).put_events(None, "session-42", [WATCHED])
    assert "userId" not in wire.requests[0].body
    assert learning.events == [(None, "session-42", [WATCHED])]


def test_put_items_sends_camel_case_json_and_the_engine_gets_catalog_columns(
    endpoint, wire, learning
):
    backend_for(endpoint, wire).put_items([VIDEO, CatalogItem("v10")])
    (request,) = wire.requests
    assert request.path == "/items"
    assert request.body["datasetArn"] == endpoint.personalize_config()["items_dataset_arn"]
    first, second = request.body["items"]
    assert first["itemId"] == "v9"
    assert json.loads(first["properties"]) == {
        "title": "Cats at play",
        "url": "https://cdn.example.com/v9.mp4",
        "categories": "animals|pets",
        "creationTimestamp": "1690000000",
    }
    assert second == {"itemId": "v10"}
    assert learning.items == [VIDEO, CatalogItem("v10")]


def test_requests_to_the_events_service_are_signed_for_personalize(endpoint, wire):
    backend_for(endpoint, wire).put_events("u1", "s1", [WATCHED])
    headers = wire.requests[0].headers
    assert "/us-east-1/personalize/aws4_request" in headers["Authorization"]
    assert headers["Content-Type"] == "application/json"


def test_an_unknown_tracking_id_is_our_misconfiguration(endpoint, wire, learning):
    backend = backend_for(endpoint, wire, event_tracking_id="deleted-tracker")
    with pytest.raises(BackendMisconfiguredError, match="event_tracking_id = deleted-tracker"):
        backend.put_events("u1", "s1", [WATCHED])
    assert learning.events == []


def test_an_unknown_items_dataset_is_our_misconfiguration(endpoint, wire, learning):
    gone = "arn:aws:personalize:us-east-1:000000000000:dataset/gone/ITEMS"
    backend = backend_for(endpoint, wire, items_dataset_arn=gone)
    with pytest.raises(BackendMisconfiguredError, match=f"items_dataset_arn = {gone}"):
        backend.put_items([VIDEO])
    assert learning.items == []


def test_the_engine_refusing_events_is_invalid_input_on_the_wire(endpoint, wire, learning):
    with pytest.raises(InvalidRequestError) as caught:
        backend_for(endpoint, wire).put_events("bad", "s1", [WATCHED])
    assert caught.value.field == "events"
    assert "unknown to the engine" in caught.value.message
    assert learning.events == []


def test_throttled_events_are_retried_then_unavailable(endpoint, wire, learning):
    wire.fail_next(400, "ThrottlingException", "Rate exceeded", times=2)
    with pytest.raises(BackendUnavailableError, match="throttling PutEvents"):
        backend_for(endpoint, wire, max_attempts=2).put_events("u1", "s1", [WATCHED])
    assert len(wire.requests) == 2 and wire.sent() == []
    assert learning.events == []


def test_the_standard_events_endpoint_variable_reaches_the_endpoint(
    endpoint, learning, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", endpoint.endpoint_url)
    tracking_id = endpoint.personalize_config()["event_tracking_id"]
    backend = PersonalizeBackend(
        PersonalizeBackendConfig(region="us-east-1", event_tracking_id=tracking_id)
    )
    backend.start()
    backend.put_events("u1", "s1", [WATCHED])
    assert learning.events == [("u1", "s1", [WATCHED])]


# what the endpoint refuses, as Personalize does (bodies boto3 would not send) ----------


def post(endpoint: EndpointThread, path: str, body: dict[str, Any]) -> tuple[int, str, str]:
    """POST `body` as JSON to the endpoint: (status, the error code, the message)."""
    request = urllib.request.Request(
        endpoint.endpoint_url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, "", ""
    except urllib.error.HTTPError as error:
        code = (error.headers.get("x-amzn-ErrorType") or "").split(":")[0]
        return error.code, code, json.loads(error.read())["message"]


# The endpoint's stand-ins, as `endpoint.personalize_config()` names them.
TRACKER = STAND_IN_TRACKING_ID
ITEMS = stand_in_arn(DEFAULT_REGION, "dataset", "local/ITEMS")
GOOD_EVENT = {"eventType": "watched", "itemId": "v1", "sentAt": 1704067200}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"sessionId": "s", "eventList": [GOOD_EVENT]}, 400, "trackingId: is required"),
        (
            {"trackingId": "other", "sessionId": "s", "eventList": [GOOD_EVENT]},
            404,
            "Event tracker other not found",
        ),
        ({"trackingId": TRACKER, "eventList": [GOOD_EVENT]}, 400, "sessionId"),
        ({"trackingId": TRACKER, "sessionId": "s"}, 400, "eventList"),
        (
            {"trackingId": TRACKER, "sessionId": "s", "eventList": [GOOD_EVENT] * 11},
            400,
            "1 to 10 events",
        ),
        (
            {"trackingId": TRACKER, "sessionId": "s", "eventList": [{"sentAt": 1}]},
            400,
            "eventList[0].eventType: is required",
        ),
        (
            {
                "trackingId": TRACKER,
                "sessionId": "s",
                "eventList": [{"eventType": "watched", "itemId": "v1"}],
            },
            400,
            "eventList[0].sentAt: is required",
        ),
        (
            {
                "trackingId": TRACKER,
                "sessionId": "s",
                "eventList": [{**GOOD_EVENT, "recommendationId": "r" * 41}],
            },
            400,
            "recommendationId",
        ),
        (
            {
                "trackingId": TRACKER,
                "sessionId": "s",
                "eventList": [{**GOOD_EVENT, "impression": ["v"] * 26}],
            },
            400,
            "impression",
        ),
    ],
)
def test_the_endpoint_checks_put_events_like_personalize(endpoint, learning, body, status, message):
    assert endpoint.personalize_config()["event_tracking_id"] == TRACKER
    answered, code, said = post(endpoint, "/events", body)
    assert answered == status
    assert code == ("ResourceNotFoundException" if status == 404 else "InvalidInputException")
    assert message in said
    assert learning.events == []


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"items": [{"itemId": "v1"}]}, 400, "datasetArn: is required"),
        ({"datasetArn": "arn:aws:personalize:x:1:dataset/y", "items": [{"itemId": "v1"}]}, 404, ""),
        ({"datasetArn": ITEMS, "items": []}, 400, "1 to 10 items"),
        ({"datasetArn": ITEMS, "items": [{"itemId": "v1"}] * 11}, 400, "1 to 10 items"),
        (
            {"datasetArn": ITEMS, "items": [{"properties": "{}"}]},
            400,
            "items[0].itemId: is required",
        ),
        (
            {"datasetArn": ITEMS, "items": [{"itemId": "v1", "properties": "{"}]},
            400,
            "Error parsing properties json",
        ),
        (
            {
                "datasetArn": ITEMS,
                "items": [{"itemId": "v1", "properties": json.dumps({"title": "x" * 32000})}],
            },
            400,
            "32000",
        ),
    ],
)
def test_the_endpoint_checks_put_items_like_personalize(endpoint, learning, body, status, message):
    assert endpoint.personalize_config()["items_dataset_arn"] == ITEMS
    answered, code, said = post(endpoint, "/items", body)
    assert answered == status
    assert code == ("ResourceNotFoundException" if status == 404 else "InvalidInputException")
    assert message in said
    assert learning.items == []
