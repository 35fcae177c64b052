"""PersonalizeBackend against a real HTTP endpoint on loopback: serialization, signing,
error parsing, retries and timeouts exercised on the wire.

The endpoint is the product's AWS-protocol endpoint (tests/aws_endpoint.py) over a backend
with fixed answers, so each test knows exactly what crosses the wire; what boto3 sends is
recorded, and faults injected, by `Wire` on the backend's clients (wire.py). A read timeout
needs a socket: one that accepts connections and never answers.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from recs.backends.base import Backend, ModelInfo, Recommendations, ScoredItem
from recs.backends.errors import (
    BackendMisconfiguredError,
    BackendTimeoutError,
    BackendUnavailableError,
    InvalidRequestError,
)
from recs.backends.filtering import DEFAULT_FILTER_NAME, FilterCall, FilterSet
from recs.backends.personalize.backend import PersonalizeBackend
from recs.backends.personalize.config import CAMPAIGN_KEYS, PersonalizeBackendConfig
from tests.aws_endpoint import EndpointThread
from tests.backends.personalize.wire import Wire, wired_backend

ACCOUNT = "arn:aws:personalize:us-east-1:000000000000"
DEFAULT_ARN = f"{ACCOUNT}:filter/videos-exclude_interacted"
UNWATCHED_ARN = f"{ACCOUNT}:filter/videos-unwatched"
GENRE_ARN = f"{ACCOUNT}:filter/videos-genre"
FILTER_ARNS = {DEFAULT_FILTER_NAME: DEFAULT_ARN, "unwatched": UNWATCHED_ARN, "genre": GENRE_ARN}
FILTERS = FilterSet.from_expressions(
    {
        "unwatched": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")',
        "genre": "INCLUDE ItemID WHERE Items.GENRES IN ($GENRES)",
    }
)


class ScriptedBackend(Backend):
    """Fixed answers, so the test knows exactly what crosses the wire (filters ignored)."""

    name = "scripted"
    config_model = BaseModel

    def info(self) -> ModelInfo:
        return ModelInfo("scripted")

    def recommend(
        self, user_id: str, num_results: int, filter: FilterCall | None = None
    ) -> Recommendations:
        if user_id == "bad":
            raise InvalidRequestError("user_id", "bad user")
        items = [ScoredItem("v2", 0.625), ScoredItem("v1", 0.25), ScoredItem("v3", 0.125)]
        return Recommendations.of(items[:num_results], "rid-up")

    def similar_items(
        self,
        item_id: str,
        num_results: int,
        filter: FilterCall | None = None,
        user_id: str | None = None,
    ) -> Recommendations:
        return Recommendations.of([ScoredItem("v3", 0.9), ScoredItem("v1", 0.1)][:num_results], "")

    def popular_items(
        self, num_results: int, user_id: str | None = None, filter: FilterCall | None = None
    ) -> Recommendations:
        return Recommendations.of([ScoredItem("v1", 0.5), ScoredItem("v2", 0.3)][:num_results])

    def rerank(
        self, user_id: str, item_ids: Sequence[str], filter: FilterCall | None = None
    ) -> Recommendations:
        known = [i for i in item_ids if i.startswith("v")]
        unknown = [i for i in item_ids if not i.startswith("v")]
        ranked = [ScoredItem(i, 1.0 / len(known)) for i in sorted(known, reverse=True)]
        return Recommendations.of(ranked + [ScoredItem(i, 0.0) for i in unknown], "rid-rank")


@pytest.fixture
def endpoint() -> Iterator[EndpointThread]:
    """The endpoint over the scripted backend, answering FILTERS by FILTER_ARNS."""
    scripted = ScriptedBackend()
    scripted.use_filters(FILTERS)
    with EndpointThread(scripted, {"filter_arns": FILTER_ARNS}) as running:
        yield running


@pytest.fixture
def wire() -> Wire:
    return Wire()


def campaigns(endpoint: EndpointThread) -> dict[str, str]:
    """The endpoint's campaign ARNs by `[personalize]` key."""
    config = endpoint.personalize_config()
    return {key: config[key] for key in CAMPAIGN_KEYS}


def backend_for(
    endpoint: EndpointThread, wire: Wire, filters: FilterSet = FILTERS, **overrides: Any
) -> PersonalizeBackend:
    """A started backend on the endpoint, serving `filters` with an ARN for each."""
    values: dict[str, Any] = {
        "region": "us-east-1",
        "endpoint_url": endpoint.endpoint_url,
        "max_attempts": 1,
        "filter_arns": FILTER_ARNS,
        **campaigns(endpoint),
    }
    values.update(overrides)
    return wired_backend(values, wire, filters)


def test_the_four_rpcs_round_trip_on_the_wire(endpoint, wire):
    backend = backend_for(endpoint, wire)
    assert backend.recommend("u1", 2) == Recommendations.of(
        [ScoredItem("v2", 0.625), ScoredItem("v1", 0.25)], "rid-up"
    )
    unwatched = FILTERS.resolve("unwatched", {})
    assert backend.similar_items("v9", 5, unwatched).items == [
        ScoredItem("v3", 0.0),
        ScoredItem("v1", 0.0),
    ]
    assert backend.popular_items(1).items == [ScoredItem("v1", 0.0)]
    ranked = backend.rerank("u1", ["x-new", "v1", "v2", "v1"])
    assert ranked == Recommendations.of(
        [ScoredItem("v2", 0.5), ScoredItem("v1", 0.5), ScoredItem("x-new", 0.0)], "rid-rank"
    )
    config = campaigns(endpoint)
    assert [(r.path, r.body) for r in wire.requests] == [
        (
            "/recommendations",
            {"campaignArn": config["user_personalization_campaign_arn"], "userId": "u1",
             "numResults": 2, "filterArn": DEFAULT_ARN},
        ),
        (
            "/recommendations",
            {"campaignArn": config["similar_items_campaign_arn"], "itemId": "v9",
             "numResults": 5, "filterArn": UNWATCHED_ARN},
        ),
        (
            "/recommendations",
            {"campaignArn": config["popularity_campaign_arn"], "userId": "anonymous",
             "numResults": 1},
        ),
        (
            "/personalize-ranking",
            {"campaignArn": config["personalized_ranking_campaign_arn"], "userId": "u1",
             "inputList": ["x-new", "v1", "v2"]},
        ),
    ]  # fmt: skip


def test_each_rpc_sends_a_named_filter_and_its_values_on_the_wire(endpoint, wire):
    backend = backend_for(endpoint, wire)
    genre = FILTERS.resolve("genre", {"GENRES": '"comedy","drama"'})
    backend.recommend("u1", 2, genre)
    backend.similar_items("v9", 2, genre)
    backend.popular_items(2, "u1", genre)
    backend.rerank("u1", ["v1", "v2"], genre)
    sent = [(r.body.get("filterArn"), r.body.get("filterValues")) for r in wire.requests]
    assert sent == [(GENRE_ARN, {"GENRES": '"comedy","drama"'})] * 4


def test_no_filter_is_sent_when_the_default_filter_is_off(endpoint, wire):
    off = FilterSet.from_expressions({}, default=None)
    backend = backend_for(endpoint, wire, off, filter_arns={})
    backend.recommend("u1", 1)
    backend.similar_items("v1", 1)
    backend.popular_items(1)
    backend.rerank("u1", ["v1"])
    assert [sorted(r.body) for r in wire.requests] == [
        ["campaignArn", "numResults", "userId"],
        ["campaignArn", "itemId", "numResults"],
        ["campaignArn", "numResults", "userId"],
        ["campaignArn", "inputList", "userId"],
    ]


def test_a_filter_without_an_arn_sends_nothing(endpoint, wire):
    backend = backend_for(endpoint, wire, filter_arns={})
    with pytest.raises(
        BackendMisconfiguredError, match=r"personalize\.filter_arns\.exclude_interacted"
    ):
        backend.recommend("u1", 1)
    assert wire.requests == []


def test_requests_are_sigv4_signed_for_personalize(endpoint, wire):
    backend_for(endpoint, wire).recommend("u1", 1)
    headers = wire.requests[0].headers
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/us-east-1/personalize/aws4_request" in headers["Authorization"]
    assert headers["Content-Type"] == "application/json"


def test_unknown_campaign_on_the_wire_names_the_key_and_arn(endpoint, wire):
    missing = f"{ACCOUNT}:campaign/deleted"
    backend = backend_for(endpoint, wire, user_personalization_campaign_arn=missing)
    with pytest.raises(BackendMisconfiguredError) as caught:
        backend.recommend("u1", 1)
    assert f"user_personalization_campaign_arn = {missing}" in str(caught.value)


def test_unknown_filter_on_the_wire_names_the_filter_key(endpoint, wire):
    other = f"{ACCOUNT}:filter/gone"
    backend = backend_for(endpoint, wire, filter_arns={**FILTER_ARNS, "unwatched": other})
    with pytest.raises(BackendMisconfiguredError, match=f"filter_arns.unwatched = {other}"):
        backend.popular_items(3, filter=FILTERS.resolve("unwatched", {}))


def test_invalid_input_on_the_wire_names_the_field_and_keeps_the_reason(endpoint, wire):
    with pytest.raises(InvalidRequestError) as caught:
        backend_for(endpoint, wire).recommend("bad", 1)
    assert caught.value.field == "user_id"
    assert "bad user" in caught.value.message


# retries, as botocore makes them (the answers injected by Wire, before the socket) -------


def test_throttling_is_retried_then_answers_unavailable(endpoint, wire):
    wire.fail_next(400, "ThrottlingException", "Rate exceeded", times=2)
    backend = backend_for(endpoint, wire, max_attempts=2)
    with pytest.raises(BackendUnavailableError, match="throttling"):
        backend.recommend("u1", 1)
    assert len(wire.requests) == 2 and wire.sent() == []


def test_a_server_error_followed_by_success_is_hidden_by_the_retry(endpoint, wire):
    wire.fail_next(500, "InternalFailure", "oops")
    backend = backend_for(endpoint, wire, max_attempts=2)
    assert backend.recommend("u1", 1).items == [ScoredItem("v2", 0.625)]
    assert len(wire.requests) == 2
    assert len(wire.sent()) == 1  # the retry reached the endpoint


def test_server_errors_after_the_last_attempt_answer_unavailable(endpoint, wire):
    wire.fail_next(503, "ServiceUnavailableException", times=1)
    with pytest.raises(BackendUnavailableError, match="retry later"):
        backend_for(endpoint, wire).similar_items("v1", 1)
    assert len(wire.requests) == 1


# the socket itself -------------------------------------------------------------------


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A loopback port whose connections are accepted (by the kernel's backlog) and never
    answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"


def test_an_endpoint_that_does_not_answer_in_time_is_a_timeout(endpoint, wire, silent_endpoint):
    backend = backend_for(endpoint, wire, endpoint_url=silent_endpoint, read_timeout=0.2)
    with pytest.raises(BackendTimeoutError):
        backend.recommend("u1", 1)
    assert len(wire.requests) == 1


def test_a_closed_port_answers_unavailable():
    stopped = EndpointThread(ScriptedBackend()).start()
    config = stopped.personalize_config()
    stopped.stop()
    backend = PersonalizeBackend(
        PersonalizeBackendConfig(**config, region="us-east-1", max_attempts=1)
    )
    backend.start()
    with pytest.raises(BackendUnavailableError, match="unreachable"):
        backend.recommend("u1", 1)


def test_the_standard_endpoint_variable_reaches_the_endpoint(endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME", endpoint.endpoint_url)
    backend = PersonalizeBackend(
        PersonalizeBackendConfig(region="us-east-1", **campaigns(endpoint))
    )
    backend.start()
    assert backend.config.endpoint_url is None
    assert backend.popular_items(2).items == [ScoredItem("v1", 0.0), ScoredItem("v2", 0.0)]
