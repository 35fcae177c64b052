"""Every way a runtime call can fail, and the domain error (hence gRPC status) it becomes.

Service answers are stubbed with Stubber; failures that happen before any answer
(timeouts, refused connections, missing credentials) are raised by botocore itself, from
a `before-send` hook or a client without credentials.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any

import pytest
from botocore import exceptions as boto_errors
from botocore.stub import Stubber

from recs.backends.errors import (
    BackendMisconfiguredError,
    BackendTimeoutError,
    BackendUnavailableError,
    InvalidRequestError,
)
from recs.backends.filtering import DEFAULT_FILTER_NAME, FilterSet
from recs.backends.personalize.backend import PersonalizeBackend
from recs.backends.personalize.client import create_runtime_client
from recs.backends.personalize.config import PersonalizeBackendConfig
from tests.backends.personalize import runtime_helpers
from tests.backends.personalize.runtime_helpers import CAMPAIGNS

UP = CAMPAIGNS["user_personalization_campaign_arn"]
FILTER = "arn:aws:personalize:us-east-1:123456789012:filter/videos-exclude_interacted"
# GetRecommendations without a filter sends the default filter, which needs its ARN.
FILTER_ARNS = {DEFAULT_FILTER_NAME: FILTER}


def make_config(**overrides: Any) -> PersonalizeBackendConfig:
    """`runtime_helpers.make_config` with the default filter's ARN."""
    return runtime_helpers.make_config(**{"filter_arns": FILTER_ARNS, **overrides})


def stubbed_backend(
    **overrides: Any,
) -> AbstractContextManager[tuple[PersonalizeBackend, Stubber]]:
    """`runtime_helpers.stubbed_backend` with the default filter's ARN."""
    return runtime_helpers.stubbed_backend(**{"filter_arns": FILTER_ARNS, **overrides})


# One call per RPC: (method, its request as Stubber expects it, the backend call, field).
RPCS = {
    "recommend": (
        "get_recommendations",
        {"campaignArn": UP, "userId": "u1", "numResults": 3, "filterArn": FILTER},
        lambda b: b.recommend("u1", 3),
        "user_id",
    ),
    "similar_items": (
        "get_recommendations",
        {"campaignArn": CAMPAIGNS["similar_items_campaign_arn"], "itemId": "v1", "numResults": 3},
        lambda b: b.similar_items("v1", 3),
        "item_id",
    ),
    "popular_items": (
        "get_recommendations",
        {
            "campaignArn": CAMPAIGNS["popularity_campaign_arn"],
            "userId": "anonymous",
            "numResults": 3,
        },
        lambda b: b.popular_items(3),
        "user_id",
    ),
    "rerank": (
        "get_personalized_ranking",
        {
            "campaignArn": CAMPAIGNS["personalized_ranking_campaign_arn"],
            "userId": "u1",
            "inputList": ["v1", "v2"],
        },
        lambda b: b.rerank("u1", ["v1", "v2"]),
        "item_ids",
    ),
}


@pytest.mark.parametrize("rpc", RPCS)
def test_invalid_input_becomes_invalid_request_naming_the_field(rpc):
    method, params, call, field = RPCS[rpc]
    with stubbed_backend() as (backend, stubber):
        stubber.add_client_error(
            method, "InvalidInputException", "The id is not valid.", 400, expected_params=params
        )
        with pytest.raises(InvalidRequestError) as caught:
            call(backend)
    assert caught.value.field == field
    assert "The id is not valid." in caught.value.message


@pytest.mark.parametrize("rpc", RPCS)
def test_unknown_campaign_becomes_misconfigured_naming_key_and_arn(rpc):
    method, params, call, _field = RPCS[rpc]
    with stubbed_backend() as (backend, stubber):
        stubber.add_client_error(
            method, "ResourceNotFoundException", "Campaign not found", 404, expected_params=params
        )
        with pytest.raises(BackendMisconfiguredError) as caught:
            call(backend)
    assert params["campaignArn"] in str(caught.value)
    assert "_campaign_arn" in str(caught.value)


def test_unknown_filter_is_named_when_personalize_says_which_arn():
    with stubbed_backend() as (backend, stubber):
        stubber.add_client_error(
            "get_recommendations",
            "ResourceNotFoundException",
            f"Filter {FILTER} does not exist",
            404,
        )
        with pytest.raises(BackendMisconfiguredError) as caught:
            backend.recommend("u1", 3)
    assert f"filter_arns.exclude_interacted = {FILTER}" in str(caught.value)
    assert UP not in str(caught.value)


def test_a_named_filter_personalize_does_not_know_is_named_by_its_key():
    other = "arn:aws:personalize:us-east-1:123456789012:filter/videos-unwatched"
    filters = FilterSet.from_expressions(
        {"unwatched": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")'}
    )
    with stubbed_backend(filter_arns={**FILTER_ARNS, "unwatched": other}) as (backend, stubber):
        backend.use_filters(filters)
        stubber.add_client_error(
            "get_recommendations",
            "ResourceNotFoundException",
            f"Filter {other} does not exist",
            404,
        )
        with pytest.raises(BackendMisconfiguredError) as caught:
            backend.popular_items(3, filter=filters.resolve("unwatched", {}))
    assert f"filter_arns.unwatched = {other} in [personalize]" in str(caught.value)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ThrottlingException", 400, BackendUnavailableError),
        ("TooManyRequestsException", 429, BackendUnavailableError),
        ("LimitExceededException", 400, BackendUnavailableError),
        ("InternalFailure", 500, BackendUnavailableError),
        ("ServiceUnavailable", 503, BackendUnavailableError),
        ("AccessDeniedException", 403, BackendMisconfiguredError),
        ("UnrecognizedClientException", 403, BackendMisconfiguredError),
        ("ExpiredTokenException", 400, BackendMisconfiguredError),
        ("SomethingNewException", 400, BackendMisconfiguredError),
    ],
)
def test_service_errors_map_to_domain_errors(code, status, expected):
    with stubbed_backend() as (backend, stubber):
        stubber.add_client_error("get_recommendations", code, "details", status)
        with pytest.raises(expected) as caught:
            backend.recommend("u1", 3)
    assert "GetRecommendations" in str(caught.value)


def _backend_with_send_hook(hook, **overrides) -> PersonalizeBackend:
    """A started backend whose client runs `hook` instead of sending each request."""
    config = make_config(**overrides)
    client = create_runtime_client(config)
    client.meta.events.register("before-send.personalize-runtime", hook)
    backend = PersonalizeBackend(config, client=client)
    backend.start()
    return backend


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (boto_errors.ReadTimeoutError(endpoint_url="http://x"), BackendTimeoutError),
        (boto_errors.ConnectTimeoutError(endpoint_url="http://x"), BackendTimeoutError),
        (boto_errors.EndpointConnectionError(endpoint_url="http://x"), BackendUnavailableError),
        (boto_errors.ConnectionClosedError(endpoint_url="http://x"), BackendUnavailableError),
    ],
)
def test_transport_failures_map_to_timeout_or_unavailable(error, expected):
    seen: list[str] = []

    def fail(request, **_kwargs):
        seen.append(request.url)
        raise error

    backend = _backend_with_send_hook(fail)
    with pytest.raises(expected):
        backend.recommend("u1", 3)
    assert seen == ["http://127.0.0.1:1/recommendations"]
    backend.close()


def test_missing_credentials_become_misconfigured_with_a_clear_message(monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    backend = PersonalizeBackend(make_config())
    backend.start()
    with pytest.raises(BackendMisconfiguredError, match="no usable AWS credentials"):
        backend.recommend("u1", 3)


def test_missing_region_fails_at_start(monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    backend = PersonalizeBackend(make_config(region=None, endpoint_url=None))
    with pytest.raises(BackendMisconfiguredError, match="no AWS region"):
        backend.start()


def test_calls_beyond_max_concurrency_wait_then_answer_unavailable():
    inside, release = threading.Event(), threading.Event()

    def hold(**_kwargs):
        inside.set()
        release.wait()
        raise boto_errors.EndpointConnectionError(endpoint_url="http://x")

    backend = _backend_with_send_hook(hold, max_concurrency=1, queue_timeout=0)
    first_outcome: list[type[Exception]] = []

    def first_call():
        try:
            backend.recommend("u1", 3)
        except Exception as exc:  # recorded and asserted below
            first_outcome.append(type(exc))

    worker = threading.Thread(target=first_call)
    worker.start()
    assert inside.wait(timeout=30)
    with pytest.raises(BackendUnavailableError, match="call slots stayed busy"):
        backend.recommend("u2", 3)
    release.set()
    worker.join(timeout=30)
    assert first_outcome == [BackendUnavailableError]
    # The slot was given back: the next call reaches the client again.
    with pytest.raises(BackendUnavailableError, match="unreachable"):
        backend.recommend("u3", 3)


def test_a_backend_that_was_not_started_answers_unavailable():
    backend = PersonalizeBackend(make_config())
    with pytest.raises(BackendUnavailableError, match="not started"):
        backend.recommend("u1", 3)
