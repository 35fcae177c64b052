"""PutEvents and PutItems on `personalize-events`, checked by Stubber against the real model:
exact parameters, the error mapping, missing config keys, the breaker and the observer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from unittest.mock import Mock

import pytest
from botocore import exceptions as boto_errors
from botocore.stub import Stubber

from recs.backends.base import Backend, CatalogItem, Event
from recs.backends.errors import (
    BackendMisconfiguredError,
    BackendTimeoutError,
    BackendUnavailableError,
    InvalidRequestError,
)
from recs.backends.personalize.backend import (
    PersonalizeBackend,
    item_properties,
    personalize_field_name,
)
from recs.backends.personalize.breaker import CircuitBreaker
from recs.backends.personalize.client import create_events_client, create_runtime_client
from tests.backends.personalize.runtime_helpers import (
    ACCOUNT_ARN,
    CAMPAIGNS,
    UNREACHABLE_ENDPOINT,
    make_config,
)

TRACKING_ID = "b5c0a7e4-0f3a-4d34-9d1c-6a3c4b0e2f11"
ITEMS_ARN = f"{ACCOUNT_ARN}:dataset/videos/ITEMS"
EVENTS_CONFIG = {
    "event_tracking_id": TRACKING_ID,
    "items_dataset_arn": ITEMS_ARN,
    "events_endpoint_url": UNREACHABLE_ENDPOINT,
}
WATCHED = Event("watched", "v1", 1_704_067_200.25)
WATCHED_PARAMS = {
    "eventType": "watched",
    "itemId": "v1",
    "sentAt": datetime(2024, 1, 1, 0, 0, 0, 250000, tzinfo=UTC),
}
PUT_EVENTS = {
    "trackingId": TRACKING_ID,
    "userId": "u1",
    "sessionId": "s1",
    "eventList": [WATCHED_PARAMS],
}
VIDEO = CatalogItem("v9", title="Cats", url="https://cdn/v9.mp4", properties={"DURATION": "31"})
PUT_ITEMS = {
    "datasetArn": ITEMS_ARN,
    "items": [
        {
            "itemId": "v9",
            "properties": '{"title":"Cats","url":"https://cdn/v9.mp4","duration":"31"}',
        }
    ],
}


@contextmanager
def events_backend(**overrides: Any) -> Iterator[tuple[PersonalizeBackend, Stubber]]:
    """A started backend whose events client answers only what the test stubs."""
    config = make_config(**{**EVENTS_CONFIG, **overrides})
    events = create_events_client(config)
    backend = PersonalizeBackend(config, client=create_runtime_client(config), events_client=events)
    backend.start()
    with Stubber(events) as stubber:
        yield backend, stubber
        stubber.assert_no_pending_responses()
    backend.close()


# PutEvents ------------------------------------------------------------------------------


def test_put_events_sends_every_member_and_sent_at_as_a_utc_datetime():
    full = Event(
        "click",
        "v2",
        1_704_067_201.0,
        event_id="e-1",
        event_value=0.5,
        recommendation_id="RID-1",
        impression=("v2", "v3"),
    )
    with events_backend() as (backend, stubber):
        stubber.add_response(
            "put_events",
            {},
            {
                **PUT_EVENTS,
                "eventList": [
                    WATCHED_PARAMS,
                    {
                        "eventType": "click",
                        "itemId": "v2",
                        "sentAt": datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC),
                        "eventId": "e-1",
                        "eventValue": 0.5,
                        "recommendationId": "RID-1",
                        "impression": ["v2", "v3"],
                    },
                ],
            },
        )
        assert backend.put_events("u1", "s1", [WATCHED, full]) is None


def test_an_anonymous_session_sends_no_user_id():
    with events_backend() as (backend, stubber):
        params = {key: value for key, value in PUT_EVENTS.items() if key != "userId"}
        stubber.add_response("put_events", {}, params)
        backend.put_events(None, "s1", [WATCHED])


def test_put_events_without_a_tracking_id_names_the_key_and_sends_nothing():
    missing = pytest.raises(BackendMisconfiguredError, match=r"personalize\.event_tracking_id")
    with events_backend(event_tracking_id=None) as (backend, _stubber), missing:
        backend.put_events("u1", "s1", [WATCHED])


def test_put_events_limits_are_checked_before_any_call():
    with events_backend() as (backend, _stubber):
        with pytest.raises(InvalidRequestError) as caught:
            backend.put_events("u1", "s1", [WATCHED] * 11)
        assert caught.value.field == "events"
        with pytest.raises(InvalidRequestError) as caught:
            backend.put_events("u1", "", [WATCHED])
        assert caught.value.field == "session_id"


def test_a_sent_at_no_date_can_hold_is_an_invalid_argument_not_a_crash():
    with events_backend() as (backend, _stubber), pytest.raises(InvalidRequestError) as caught:
        backend.put_events("u1", "s1", [WATCHED, Event("watched", "v1", 1e20)])
    assert caught.value.field == "events[1].sent_at"


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("InvalidInputException", 400, InvalidRequestError),
        ("ResourceNotFoundException", 404, BackendMisconfiguredError),
        ("ThrottlingException", 400, BackendUnavailableError),
        ("InternalFailure", 500, BackendUnavailableError),
        ("AccessDeniedException", 403, BackendMisconfiguredError),
        ("SomethingNewException", 400, BackendMisconfiguredError),
    ],
)
def test_put_events_errors_map_like_runtime_calls(code, status, expected):
    with events_backend() as (backend, stubber):
        stubber.add_client_error("put_events", code, "details", status, expected_params=PUT_EVENTS)
        with pytest.raises(expected) as caught:
            backend.put_events("u1", "s1", [WATCHED])
    if expected is InvalidRequestError:
        assert caught.value.field == "events"
        assert "details" in caught.value.message
    elif code == "ResourceNotFoundException":
        assert "event_tracking_id" in str(caught.value)
    else:
        assert "PutEvents" in str(caught.value)


def test_an_unknown_tracker_names_the_key_and_the_tracking_id():
    with events_backend() as (backend, stubber):
        stubber.add_client_error(
            "put_events", "ResourceNotFoundException", "not found", 404, expected_params=PUT_EVENTS
        )
        with pytest.raises(BackendMisconfiguredError) as caught:
            backend.put_events("u1", "s1", [WATCHED])
    assert f"event_tracking_id = {TRACKING_ID} in [personalize]" in str(caught.value)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (boto_errors.ReadTimeoutError(endpoint_url="http://x"), BackendTimeoutError),
        (boto_errors.EndpointConnectionError(endpoint_url="http://x"), BackendUnavailableError),
    ],
)
def test_transport_failures_of_events_are_timeouts_or_unavailable(error, expected):
    sent: list[str] = []

    def fail(request, **_kwargs):
        sent.append(request.url)
        raise error

    config = make_config(**EVENTS_CONFIG)
    events = create_events_client(config)
    events.meta.events.register("before-send.personalize-events", fail)
    backend = PersonalizeBackend(config, events_client=events)
    backend.start()
    with pytest.raises(expected):
        backend.put_events("u1", "s1", [WATCHED])
    assert sent == [f"{UNREACHABLE_ENDPOINT}/events"]
    backend.close()


def test_events_are_reported_to_the_call_observer():
    seen: list[tuple[str, str]] = []
    with events_backend() as (backend, stubber):
        backend.observe_calls(lambda operation, _seconds, code: seen.append((operation, code)))
        stubber.add_response("put_events", {}, PUT_EVENTS)
        backend.put_events("u1", "s1", [WATCHED])
        stubber.add_client_error("put_items", "ThrottlingException", "slow", 400)
        with pytest.raises(BackendUnavailableError):
            backend.put_items([VIDEO])
    assert seen == [("PutEvents", "OK"), ("PutItems", "ThrottlingException")]


# the breaker ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_open_events_breaker_answers_unavailable_at_once_without_the_fallback():
    clock = Clock()
    fallback = Mock(spec=Backend)
    with events_backend() as (backend, stubber):
        backend.set_fallback(fallback)
        backend.events_breaker = CircuitBreaker(failures=2, cooldown=30, clock=clock)
        for _ in range(2):
            stubber.add_client_error("put_events", "ServiceUnavailable", "down", 503)
            with pytest.raises(BackendUnavailableError, match="retry later"):
                backend.put_events("u1", "s1", [WATCHED])
        # open: refused at once, nothing sent (nothing is stubbed), nothing to the fallback
        with pytest.raises(BackendUnavailableError, match="refused for 30s more"):
            backend.put_events("u1", "s1", [WATCHED])
        with pytest.raises(BackendUnavailableError, match="refused for 30s more"):
            backend.put_items([VIDEO])
        clock.now += 31
        stubber.add_response("put_events", {}, PUT_EVENTS)
        backend.put_events("u1", "s1", [WATCHED])  # the probe closes it
    assert fallback.method_calls == []


def test_the_runtime_and_events_breakers_are_independent():
    with events_backend() as (backend, stubber):
        backend.events_breaker = CircuitBreaker(failures=1, cooldown=30)
        stubber.add_client_error("put_events", "ServiceUnavailable", "down", 503)
        with pytest.raises(BackendUnavailableError):
            backend.put_events("u1", "s1", [WATCHED])
        assert backend.events_breaker.refusal() is not None
        assert backend.breaker.refusal() is None


def test_callers_mistakes_in_events_do_not_open_the_breaker():
    with events_backend() as (backend, stubber):
        backend.events_breaker = CircuitBreaker(failures=1, cooldown=30)
        stubber.add_client_error("put_events", "InvalidInputException", "bad", 400)
        with pytest.raises(InvalidRequestError):
            backend.put_events("u1", "s1", [WATCHED])
        assert backend.events_breaker.refusal() is None


# PutItems -------------------------------------------------------------------------------


def test_put_items_sends_camel_case_properties_as_a_json_string():
    new = CatalogItem(
        "v10",
        title="Ünïcode title",
        properties={"CATEGORIES": "animals|sports", "CREATION_TIMESTAMP": "1690000000"},
    )
    with events_backend() as (backend, stubber):
        stubber.add_response(
            "put_items",
            {},
            {
                "datasetArn": ITEMS_ARN,
                "items": [
                    PUT_ITEMS["items"][0],
                    {
                        "itemId": "v10",
                        "properties": '{"title":"Ünïcode title","categories":"animals|sports",'
                        '"creationTimestamp":"1690000000"}',
                    },
                    {"itemId": "v11"},
                ],
            },
        )
        backend.put_items([VIDEO, new, CatalogItem("v11")])


def test_put_items_without_the_dataset_arn_names_the_key():
    missing = pytest.raises(BackendMisconfiguredError, match=r"personalize\.items_dataset_arn")
    with events_backend(items_dataset_arn=None) as (backend, _stubber), missing:
        backend.put_items([VIDEO])


def test_put_items_limits_are_checked_before_any_call():
    with events_backend() as (backend, _stubber):
        with pytest.raises(InvalidRequestError) as caught:
            backend.put_items([])
        assert caught.value.field == "items"


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("InvalidInputException", 400, InvalidRequestError),
        ("ResourceNotFoundException", 404, BackendMisconfiguredError),
        ("ResourceInUseException", 409, BackendUnavailableError),
        ("TooManyRequestsException", 429, BackendUnavailableError),
    ],
)
def test_put_items_errors_map_like_runtime_calls(code, status, expected):
    with events_backend() as (backend, stubber):
        stubber.add_client_error("put_items", code, "details", status, expected_params=PUT_ITEMS)
        with pytest.raises(expected) as caught:
            backend.put_items([VIDEO])
    if expected is InvalidRequestError:
        assert caught.value.field == "items"
    if expected is BackendMisconfiguredError:
        assert f"items_dataset_arn = {ITEMS_ARN}" in str(caught.value)


@pytest.mark.parametrize(
    ("column", "key"),
    [
        ("CATEGORIES", "categories"),
        ("CREATION_TIMESTAMP", "creationTimestamp"),
        ("NUMBER_OF_RATINGS", "numberOfRatings"),
        ("TITLE", "title"),
        ("URL", "url"),
        ("DURATION_2", "duration2"),
    ],
)
def test_schema_fields_become_personalize_s_camel_case_keys(column, key):
    assert personalize_field_name(column) == key


def test_empty_values_are_left_out_of_the_properties():
    item = CatalogItem("v1", title="", url="u", properties={"DURATION": "", "GENRE": "x"})
    assert json.loads(item_properties(item) or "") == {"url": "u", "genre": "x"}
    assert item_properties(CatalogItem("v1")) is None


def test_info_says_whether_events_and_items_are_configured():
    with events_backend(items_dataset_arn=None) as (backend, _stubber):
        details = backend.info().details
    assert details["event_tracking_id"] == "(configured)"
    assert TRACKING_ID not in details.values()
    assert details["items_dataset_arn"] == "(not configured)"
    assert (
        details["user_personalization_campaign_arn"]
        == CAMPAIGNS["user_personalization_campaign_arn"]
    )


def test_a_backend_that_was_not_started_refuses_events():
    backend = PersonalizeBackend(make_config(**EVENTS_CONFIG))
    with pytest.raises(BackendUnavailableError, match="not started"):
        backend.put_events("u1", "s1", [WATCHED])
