"""PersonalizeBackend against a real HTTP endpoint on loopback: serialization, signing,
error parsing, retries and timeouts exercised on the wire (see emulator.py)."""

from __future__ import annotations

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
from recs.backends.personalize.config import PersonalizeBackendConfig
from tests.backends.personalize.emulator import PersonalizeRuntimeEmulator

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
    """Fixed answers, so the test knows exactly what crosses the wire."""

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
        self, item_id: str, num_results: int, filter: FilterCall | None = None
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
def emulator() -> Iterator[PersonalizeRuntimeEmulator]:
    known = frozenset(FILTER_ARNS.values())
    with PersonalizeRuntimeEmulator(ScriptedBackend(), filters=known) as running:
        yield running


def backend_for(
    emulator: PersonalizeRuntimeEmulator, filters: FilterSet = FILTERS, **overrides: Any
) -> PersonalizeBackend:
    """A started backend on the emulator, serving `filters` with an ARN for each."""
    values: dict[str, Any] = {
        "region": "us-east-1",
        "endpoint_url": emulator.endpoint_url,
        "max_attempts": 1,
        "filter_arns": FILTER_ARNS,
        **emulator.campaign_config(),
    }
    values.update(overrides)
    backend = PersonalizeBackend(PersonalizeBackendConfig.model_validate(values))
    backend.use_filters(filters)
    backend.start()
    return backend


def test_the_four_rpcs_round_trip_on_the_wire(emulator):
    backend = backend_for(emulator)
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
    config = emulator.campaign_config()
    assert [(r.path, r.body) for r in emulator.requests] == [
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


def test_each_rpc_sends_a_named_filter_and_its_values_on_the_wire(emulator):
    backend = backend_for(emulator)
    genre = FILTERS.resolve("genre", {"GENRES": '"comedy","drama"'})
    backend.recommend("u1", 2, genre)
    backend.similar_items("v9", 2, genre)
    backend.popular_items(2, "u1", genre)
    backend.rerank("u1", ["v1", "v2"], genre)
    sent = [(r.body.get("filterArn"), r.body.get("filterValues")) for r in emulator.requests]
    assert sent == [(GENRE_ARN, {"GENRES": '"comedy","drama"'})] * 4


def test_no_filter_is_sent_when_the_default_filter_is_off(emulator):
    backend = backend_for(emulator, FilterSet.from_expressions({}, default=None), filter_arns={})
    backend.recommend("u1", 1)
    backend.similar_items("v1", 1)
    backend.popular_items(1)
    backend.rerank("u1", ["v1"])
    assert [sorted(r.body) for r in emulator.requests] == [
        ["campaignArn", "numResults", "userId"],
        ["campaignArn", "itemId", "numResults"],
        ["campaignArn", "numResults", "userId"],
        ["campaignArn", "inputList", "userId"],
    ]


def test_a_filter_without_an_arn_sends_nothing(emulator):
    backend = backend_for(emulator, filter_arns={})
    with pytest.raises(
        BackendMisconfiguredError, match=r"personalize\.filter_arns\.exclude_interacted"
    ):
        backend.recommend("u1", 1)
    assert emulator.requests == []


def test_requests_are_sigv4_signed_for_personalize(emulator):
    backend_for(emulator).recommend("u1", 1)
    headers = emulator.requests[0].headers
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/us-east-1/personalize/aws4_request" in headers["Authorization"]
    assert headers["Content-Type"] == "application/json"


def test_unknown_campaign_on_the_wire_names_the_key_and_arn(emulator):
    missing = "arn:aws:personalize:us-east-1:000000000000:campaign/deleted"
    backend = backend_for(emulator, user_personalization_campaign_arn=missing)
    with pytest.raises(BackendMisconfiguredError) as caught:
        backend.recommend("u1", 1)
    assert f"user_personalization_campaign_arn = {missing}" in str(caught.value)


def test_unknown_filter_on_the_wire_names_the_filter_key(emulator):
    other = "arn:aws:personalize:us-east-1:000000000000:filter/gone"
    backend = backend_for(emulator, filter_arns={**FILTER_ARNS, "unwatched": other})
    with pytest.raises(BackendMisconfiguredError, match=f"filter_arns.unwatched = {other}"):
        backend.popular_items(3, filter=FILTERS.resolve("unwatched", {}))


def test_invalid_input_on_the_wire_names_the_field_and_keeps_the_reason(emulator):
    with pytest.raises(InvalidRequestError) as caught:
        backend_for(emulator).recommend("bad", 1)
    assert caught.value.field == "user_id"
    assert "bad user" in caught.value.message


def test_throttling_is_retried_then_answers_unavailable(emulator):
    emulator.fail_next(400, "ThrottlingException", "Rate exceeded", times=2)
    backend = backend_for(emulator, max_attempts=2)
    with pytest.raises(BackendUnavailableError, match="throttling"):
        backend.recommend("u1", 1)
    assert len(emulator.requests) == 2


def test_a_server_error_followed_by_success_is_hidden_by_the_retry(emulator):
    emulator.fail_next(500, "InternalFailure", "oops")
    backend = backend_for(emulator, max_attempts=2)
    assert backend.recommend("u1", 1).items == [ScoredItem("v2", 0.625)]
    assert len(emulator.requests) == 2


def test_server_errors_after_the_last_attempt_answer_unavailable(emulator):
    emulator.fail_next(503, "ServiceUnavailableException", times=1)
    with pytest.raises(BackendUnavailableError, match="retry later"):
        backend_for(emulator).similar_items("v1", 1)


def test_an_endpoint_that_does_not_answer_in_time_is_a_timeout(emulator):
    emulator.stall_next()
    backend = backend_for(emulator, read_timeout=0.2)
    try:
        with pytest.raises(BackendTimeoutError):
            backend.recommend("u1", 1)
    finally:
        emulator.release_stalled()


def test_a_closed_port_answers_unavailable():
    stopped = PersonalizeRuntimeEmulator(ScriptedBackend()).start()
    endpoint, campaigns = stopped.endpoint_url, stopped.campaign_config()
    stopped.stop()
    backend = PersonalizeBackend(
        PersonalizeBackendConfig(
            region="us-east-1",
            endpoint_url=endpoint,
            max_attempts=1,
            filter_arns=FILTER_ARNS,
            **campaigns,
        )
    )
    backend.start()
    with pytest.raises(BackendUnavailableError, match="unreachable"):
        backend.recommend("u1", 1)


def test_the_standard_endpoint_variable_reaches_the_emulator(emulator, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME", emulator.endpoint_url)
    backend = PersonalizeBackend(
        PersonalizeBackendConfig(region="us-east-1", **emulator.campaign_config())
    )
    backend.start()
    assert backend.popular_items(2).items == [ScoredItem("v1", 0.0), ScoredItem("v2", 0.0)]
    assert len(emulator.requests) == 1
