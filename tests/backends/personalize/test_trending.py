"""PersonalizeBackend.trending_items: GetRecommendations on the aws-trending-now campaign,
checked by Stubber against the real service model (request shape, filters, errors, breaker,
fallback)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.stub import Stubber

from recs.backends.base import Recommendations, ScoredItem
from recs.backends.errors import (
    BackendMisconfiguredError,
    BackendUnavailableError,
    InvalidRequestError,
)
from recs.backends.filtering import DEFAULT_FILTER_NAME, FilterSet
from recs.backends.personalize.backend import PersonalizeBackend
from recs.backends.personalize.breaker import CircuitBreaker
from recs.backends.personalize.config import CAMPAIGN_KEYS
from tests.backends.personalize.runtime_helpers import ACCOUNT_ARN, CAMPAIGNS, stubbed_backend
from tests.backends.personalize.runtime_helpers import make_config as make_test_config

TRENDING = f"{ACCOUNT_ARN}:campaign/videos-trending-now"
DEFAULT_ARN = f"{ACCOUNT_ARN}:filter/videos-exclude_interacted"
UNWATCHED_ARN = f"{ACCOUNT_ARN}:filter/videos-unwatched"
GENRE_ARN = f"{ACCOUNT_ARN}:filter/videos-genre"
FILTER_ARNS = {DEFAULT_FILTER_NAME: DEFAULT_ARN, "unwatched": UNWATCHED_ARN, "genre": GENRE_ARN}
FILTERS = FilterSet.from_expressions(
    {
        "unwatched": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")',
        "genre": "INCLUDE ItemID WHERE Items.GENRES IN ($GENRES)",
    }
)
UNWATCHED = FILTERS.resolve("unwatched", {})
GENRE = FILTERS.resolve("genre", {"GENRES": '"comedy", "drama"'})
BARE = {"campaignArn": TRENDING, "numResults": 3}  # no user, no filter
ANSWER = {"itemList": [{"itemId": "v1"}], "recommendationId": "RID-trend"}


@contextmanager
def serving(**overrides: Any) -> Iterator[tuple[PersonalizeBackend, Stubber]]:
    """A started backend with the trending-now campaign and an ARN for every filter."""
    values = {"trending_now_campaign_arn": TRENDING, "filter_arns": FILTER_ARNS, **overrides}
    with stubbed_backend(**values) as (backend, stubber):
        backend.use_filters(FILTERS)
        yield backend, stubber


# the request --------------------------------------------------------------------------


def test_without_a_user_or_filter_only_the_campaign_and_count_are_sent():
    # Not the anonymous user id (popular_items sends one): Trending-Now takes a userId only
    # for a filter that needs it. Not the default filter either: it is GetRecommendations'.
    with serving(anonymous_user_id="guest") as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {
                "itemList": [{"itemId": "v9"}, {"itemId": "v2"}, {"itemId": "v4"}],
                "recommendationId": "RID-trend",
            },
            BARE,
        )
        result = backend.trending_items(3)
    assert result == Recommendations.of(
        [ScoredItem("v9", 0.0), ScoredItem("v2", 0.0), ScoredItem("v4", 0.0)], "RID-trend"
    )  # Personalize's order, no scores


def test_a_given_user_is_sent():
    with serving() as (backend, stubber):
        stubber.add_response("get_recommendations", ANSWER, {**BARE, "userId": "u8"})
        assert backend.trending_items(3, user_id="u8").item_ids == ["v1"]


def test_a_filter_is_sent_by_its_arn_with_the_values_as_written():
    with serving() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            ANSWER,
            {
                **BARE,
                "userId": "u8",
                "filterArn": GENRE_ARN,
                "filterValues": {"GENRES": '"comedy", "drama"'},
            },
        )
        stubber.add_response(
            "get_recommendations", ANSWER, {**BARE, "userId": "u8", "filterArn": UNWATCHED_ARN}
        )
        stubber.add_response("get_recommendations", ANSWER, {**BARE, "filterArn": UNWATCHED_ARN})
        backend.trending_items(3, user_id="u8", filter=GENRE)
        backend.trending_items(3, "u8", UNWATCHED)  # positional, as the servicer calls it
        backend.trending_items(3, filter=UNWATCHED)  # Personalize says if it needs a user


def test_the_limits_themselves_are_accepted():
    with serving() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": []},
            {**BARE, "numResults": 500, "userId": "u" * 256},
        )
        assert backend.trending_items(500, user_id="u" * 256).items == []


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda b: b.trending_items(0), "num_results"),
        (lambda b: b.trending_items(501), "num_results"),
        (lambda b: b.trending_items(10, user_id=""), "user_id"),
        (lambda b: b.trending_items(10, user_id="u" * 257), "user_id"),
    ],
)
def test_personalize_limits_are_checked_before_any_call(call, field):
    with serving() as (backend, _stubber), pytest.raises(InvalidRequestError) as caught:
        call(backend)  # a call reaching the client would fail with UnStubbedResponseError
    assert caught.value.field == field


# configuration ------------------------------------------------------------------------


def test_without_its_campaign_it_answers_failed_precondition_naming_the_key():
    with (
        serving(trending_now_campaign_arn=None) as (backend, _stubber),
        pytest.raises(BackendMisconfiguredError) as caught,
    ):
        backend.trending_items(5)  # nothing stubbed: no request is made
    assert str(caught.value) == "trending_now_campaign_arn is not configured in [personalize]"


def test_the_other_rpcs_do_not_need_it():
    with serving(trending_now_campaign_arn=None) as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            ANSWER,
            {
                "campaignArn": CAMPAIGNS["popularity_campaign_arn"],
                "userId": "anonymous",
                "numResults": 1,
            },
        )
        assert backend.popular_items(1).item_ids == ["v1"]


def test_a_filter_without_an_arn_is_refused_naming_the_key_before_any_call():
    arns = {name: arn for name, arn in FILTER_ARNS.items() if name != "unwatched"}
    with (
        serving(filter_arns=arns) as (backend, _stubber),
        pytest.raises(BackendMisconfiguredError, match=r"personalize\.filter_arns\.unwatched: "),
    ):
        backend.trending_items(5, filter=UNWATCHED)


def test_the_key_is_a_campaign_key_info_lists_and_start_checks(caplog):
    assert "trending_now_campaign_arn" in CAMPAIGN_KEYS
    with serving() as (backend, _stubber):
        assert backend.info().details["trending_now_campaign_arn"] == TRENDING
    with serving(trending_now_campaign_arn=None) as (backend, _stubber):
        assert backend.info().details["trending_now_campaign_arn"] == "(not configured)"
    unset = PersonalizeBackend(make_test_config(filter_arns=FILTER_ARNS))
    with caplog.at_level(logging.WARNING, logger="recs.backends.personalize.backend"):
        unset.start()
    unset.close()
    assert any(
        "trending_now_campaign_arn" in r.getMessage() and "FAILED_PRECONDITION" in r.getMessage()
        for r in caplog.records
    )


def test_an_arn_that_is_not_a_personalize_arn_is_refused_by_the_config():
    with pytest.raises(ValueError, match="trending_now_campaign_arn"):
        make_test_config(trending_now_campaign_arn="not-an-arn")


# errors -------------------------------------------------------------------------------


def test_invalid_input_becomes_invalid_request_keeping_personalize_s_reason():
    with serving() as (backend, stubber):
        stubber.add_client_error(
            "get_recommendations",
            "InvalidInputException",
            "userId is required by the filter.",
            400,
            expected_params={**BARE, "filterArn": UNWATCHED_ARN},
        )
        with pytest.raises(InvalidRequestError) as caught:
            backend.trending_items(3, filter=UNWATCHED)
    assert caught.value.field == "user_id"
    assert "userId is required by the filter." in caught.value.message


def test_an_unknown_campaign_names_the_key_and_the_arn():
    with serving() as (backend, stubber):
        stubber.add_client_error(
            "get_recommendations",
            "ResourceNotFoundException",
            f"Campaign {TRENDING} not found",
            404,
            expected_params=BARE,
        )
        with pytest.raises(BackendMisconfiguredError) as caught:
            backend.trending_items(3)
    assert f"trending_now_campaign_arn = {TRENDING} in [personalize]" in str(caught.value)


def test_an_unknown_filter_names_the_filter_key_not_the_campaign():
    with serving() as (backend, stubber):
        stubber.add_client_error(
            "get_recommendations",
            "ResourceNotFoundException",
            f"Filter {GENRE_ARN} does not exist",
            404,
        )
        with pytest.raises(BackendMisconfiguredError) as caught:
            backend.trending_items(3, filter=GENRE)
    assert f"filter_arns.genre = {GENRE_ARN} in [personalize]" in str(caught.value)
    assert TRENDING not in str(caught.value)


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
        ("SomethingNewException", 400, BackendMisconfiguredError),
    ],
)
def test_service_errors_map_to_domain_errors(code, status, expected):
    with serving() as (backend, stubber):
        stubber.add_client_error("get_recommendations", code, "details", status)
        with pytest.raises(expected) as caught:
            backend.trending_items(3)
    assert "GetRecommendations" in str(caught.value)


def test_calls_are_reported_to_the_observer():
    seen: list[tuple[str, str]] = []
    with serving() as (backend, stubber):
        backend.observe_calls(lambda operation, _seconds, code: seen.append((operation, code)))
        stubber.add_response("get_recommendations", ANSWER, BARE)
        stubber.add_client_error("get_recommendations", "ThrottlingException", "slow", 400)
        backend.trending_items(3)
        with pytest.raises(BackendUnavailableError):
            backend.trending_items(3)
    assert seen == [("GetRecommendations", "OK"), ("GetRecommendations", "ThrottlingException")]


# the breaker and the fallback ---------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_outages_open_the_breaker_then_a_probe_closes_it():
    clock = Clock()
    with serving() as (backend, stubber):
        backend.breaker = CircuitBreaker(failures=2, cooldown=30, clock=clock)
        for _ in range(2):
            stubber.add_client_error(
                "get_recommendations", "ServiceUnavailable", "down", 503, expected_params=BARE
            )
            with pytest.raises(BackendUnavailableError):
                backend.trending_items(3)
        with pytest.raises(BackendUnavailableError, match="refused for 30s more"):
            backend.trending_items(3)  # nothing sent: nothing is stubbed
        clock.now += 31
        stubber.add_response("get_recommendations", ANSWER, BARE)
        assert backend.trending_items(3).item_ids == ["v1"]


def test_callers_mistakes_leave_the_breaker_closed():
    with serving() as (backend, stubber):
        backend.breaker = CircuitBreaker(failures=1, cooldown=30)
        stubber.add_client_error("get_recommendations", "InvalidInputException", "bad", 400)
        with pytest.raises(InvalidRequestError):
            backend.trending_items(3)
        stubber.add_response("get_recommendations", ANSWER, BARE)
        assert backend.trending_items(3).item_ids == ["v1"]


class Recording(PersonalizeBackend):
    """A fallback that records what it was asked."""

    name = "recording"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[int, str | None, object]] = []

    def trending_items(self, num_results, user_id=None, filter=None):
        self.calls.append((num_results, user_id, filter))
        return Recommendations.of([ScoredItem("local-1", 0.5)], "RID-local")


def test_while_the_breaker_is_open_the_fallback_answers_with_the_same_question():
    with serving(fallback="local") as (backend, _stubber):
        fallback = Recording(make_test_config())
        backend.set_fallback(fallback)
        backend.breaker.failures = 1
        backend.breaker.failed()  # open: nothing reaches Personalize (nothing is stubbed)
        answer = backend.trending_items(4, "u8", GENRE)
        assert backend.trending_items(2).item_ids == ["local-1"]
    assert answer.served_by == "recording"
    assert answer.items == [ScoredItem("local-1", 0.5)]
    assert fallback.calls == [(4, "u8", GENRE), (2, None, None)]


def test_without_a_fallback_an_open_breaker_answers_unavailable():
    with serving() as (backend, _stubber):
        backend.breaker.failures = 1
        backend.breaker.failed()
        with pytest.raises(BackendUnavailableError):
            backend.trending_items(3)


def test_a_fallback_is_not_asked_while_personalize_answers():
    with serving() as (backend, stubber):
        fallback = Recording(make_test_config())
        backend.set_fallback(fallback)
        stubber.add_response("get_recommendations", ANSWER, BARE)
        answer = backend.trending_items(3)
    assert answer.items == [ScoredItem("v1", 0.0)]
    assert fallback.calls == []
