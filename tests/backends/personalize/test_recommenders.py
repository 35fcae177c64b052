"""PersonalizeBackend on VIDEO_ON_DEMAND recommenders (`[personalize.recommender_arns]`): each
RPC with a recommender sends GetRecommendations(recommenderArn=...) instead of the campaign,
checked by Stubber against the real service model (request shape, the members each use case
requires, filters, errors, breaker, fallback, model info).

Use case requirements: https://docs.aws.amazon.com/personalize/latest/dg/VIDEO_ON_DEMAND-use-cases.html
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.stub import Stubber
from pydantic import ValidationError

from recs.backends.base import Recommendations, ScoredItem
from recs.backends.errors import (
    BackendMisconfiguredError,
    BackendUnavailableError,
    InvalidRequestError,
)
from recs.backends.filtering import DEFAULT_FILTER_NAME, FilterSet
from recs.backends.personalize.backend import PersonalizeBackend
from recs.backends.personalize.breaker import CircuitBreaker
from recs.backends.personalize.config import (
    RECOMMENDER_KEYS,
    RECOMMENDER_REQUIRES,
    PersonalizeBackendConfig,
)
from recs.backends.registry import create_backend
from tests.backends.personalize.runtime_helpers import ACCOUNT_ARN, CAMPAIGNS, stubbed_backend

TOP_PICKS = f"{ACCOUNT_ARN}:recommender/videos-top-picks"
BECAUSE_WATCHED = f"{ACCOUNT_ARN}:recommender/videos-because-you-watched-x"
MORE_LIKE_X = f"{ACCOUNT_ARN}:recommender/videos-more-like-x"
MOST_POPULAR = f"{ACCOUNT_ARN}:recommender/videos-most-popular"
TRENDING_NOW = f"{ACCOUNT_ARN}:recommender/videos-trending-now"
RECOMMENDERS = {
    "recommendations": TOP_PICKS,
    "similar_items": BECAUSE_WATCHED,
    "more_like_x": MORE_LIKE_X,
    "popular_items": MOST_POPULAR,
    "trending_items": TRENDING_NOW,
}
DEFAULT_ARN = f"{ACCOUNT_ARN}:filter/videos-exclude_interacted"
GENRE_ARN = f"{ACCOUNT_ARN}:filter/videos-genre"
FILTER_ARNS = {DEFAULT_FILTER_NAME: DEFAULT_ARN, "genre": GENRE_ARN}
FILTERS = FilterSet.from_expressions({"genre": "INCLUDE ItemID WHERE Items.GENRES IN ($GENRES)"})
GENRE = FILTERS.resolve("genre", {"GENRES": '"comedy"'})
GENRE_SENT = {"filterArn": GENRE_ARN, "filterValues": {"GENRES": '"comedy"'}}
ANSWER = {"itemList": [{"itemId": "v1", "score": 0.5}, {"itemId": "v2"}], "recommendationId": "R"}
# No campaign at all but the ranking one: the recommenders must not need them.
NO_CAMPAIGNS = {
    "user_personalization_campaign_arn": None,
    "similar_items_campaign_arn": None,
    "popularity_campaign_arn": None,
    "trending_now_campaign_arn": None,
}


@contextmanager
def serving(**overrides: Any) -> Iterator[tuple[PersonalizeBackend, Stubber]]:
    """A started backend answering from the recommenders (no campaign but ranking's)."""
    values = {
        **NO_CAMPAIGNS,
        "recommender_arns": RECOMMENDERS,
        "filter_arns": FILTER_ARNS,
        **overrides,
    }
    with stubbed_backend(**values) as (backend, stubber):
        backend.use_filters(FILTERS)
        yield backend, stubber


# config -------------------------------------------------------------------------------


def test_the_table_takes_exactly_the_five_keys():
    assert RECOMMENDER_KEYS == (
        "recommendations",
        "similar_items",
        "more_like_x",
        "popular_items",
        "trending_items",
    )
    config = PersonalizeBackendConfig.model_validate({"recommender_arns": RECOMMENDERS})
    assert config.recommender_arns == RECOMMENDERS
    assert PersonalizeBackendConfig().recommender_arns == {}


def test_an_unknown_key_is_rejected_naming_it():
    with pytest.raises(BackendMisconfiguredError, match=r"recommender_arns\.top_picks") as caught:
        create_backend("personalize", {"recommender_arns": {"top_picks": TOP_PICKS}})
    assert "'recommendations'" in str(caught.value)  # and the keys it takes


@pytest.mark.parametrize("value", ["not-an-arn", "arn:aws:s3:::bucket/key", TOP_PICKS + "x" * 256])
def test_a_bad_arn_is_rejected_naming_the_key(value):
    with pytest.raises(ValidationError) as caught:
        PersonalizeBackendConfig.model_validate({"recommender_arns": {"recommendations": value}})
    assert caught.value.errors()[0]["loc"][:2] == ("recommender_arns", "recommendations")


def test_the_use_case_requirements_are_aws_s():
    # VIDEO_ON_DEMAND use cases: userId and itemId for Because you watched X and More like X,
    # userId for Most popular and Top picks for you, nothing for Trending now (a userId only
    # for a filter on the user's interactions).
    assert RECOMMENDER_REQUIRES == {
        "recommendations": ("userId",),
        "similar_items": ("userId", "itemId"),
        "more_like_x": ("userId", "itemId"),
        "popular_items": ("userId",),
        "trending_items": (),
    }


# each RPC -----------------------------------------------------------------------------


def test_recommendations_ask_top_picks_with_the_default_filter():
    with serving() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            ANSWER,
            {
                "recommenderArn": TOP_PICKS,
                "userId": "u1",
                "numResults": 2,
                "filterArn": DEFAULT_ARN,
            },
        )
        stubber.add_response(
            "get_recommendations",
            ANSWER,
            {"recommenderArn": TOP_PICKS, "userId": "u1", "numResults": 2, **GENRE_SENT},
        )
        assert backend.recommend("u1", 2) == Recommendations.of(
            [ScoredItem("v1", 0.5), ScoredItem("v2", 0.0)], "R"
        )
        backend.recommend("u1", 2, GENRE)


def test_similar_items_ask_because_you_watched_x_with_the_user_and_the_item():
    # The recommender leaves out what the user watched itself: no default filter is added.
    with serving() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v7"}, {"itemId": "v3"}, {"itemId": "v5"}]},
            {"recommenderArn": BECAUSE_WATCHED, "itemId": "v7", "userId": "u1", "numResults": 3},
        )
        stubber.add_response(
            "get_recommendations",
            {"itemList": []},
            {
                "recommenderArn": BECAUSE_WATCHED,
                "itemId": "v7",
                "userId": "u1",
                "numResults": 3,
                **GENRE_SENT,
            },
        )
        answer = backend.similar_items("v7", 3, user_id="u1")
        assert answer.item_ids == ["v3", "v5"]  # the query item itself never comes back
        backend.similar_items("v7", 3, GENRE, "u1")


def test_similar_items_without_a_user_are_refused_before_any_call():
    with serving() as (backend, _stubber):  # nothing stubbed: no call may happen
        with pytest.raises(InvalidRequestError) as caught:
            backend.similar_items("v7", 3)
        with pytest.raises(InvalidRequestError):
            backend.similar_items("v7", 3, GENRE)
    assert caught.value.field == "user_id"
    assert "recommender_arns.similar_items" in caught.value.message
    assert "userId and itemId" in caught.value.message


def test_a_more_like_x_recommender_copied_to_similar_items_answers_them():
    recommenders = {**RECOMMENDERS, "similar_items": MORE_LIKE_X}
    with serving(recommender_arns=recommenders) as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            ANSWER,
            {"recommenderArn": MORE_LIKE_X, "itemId": "v7", "userId": "u1", "numResults": 2},
        )
        assert backend.similar_items("v7", 2, user_id="u1").item_ids == ["v1", "v2"]


def test_more_like_x_alone_answers_nothing():
    # Recorded only: GetSimilarItems keeps its campaign (no user needed there).
    only = {"more_like_x": MORE_LIKE_X}
    with stubbed_backend(recommender_arns=only) as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            ANSWER,
            {
                "campaignArn": CAMPAIGNS["similar_items_campaign_arn"],
                "itemId": "v7",
                "numResults": 2,
            },
        )
        backend.similar_items("v7", 2)
        assert backend.info().details["recommender_arns.more_like_x"] == MORE_LIKE_X


def test_popular_items_ask_most_popular_with_the_user_or_the_anonymous_one():
    with serving(anonymous_user_id="guest") as (backend, stubber):
        bare = {"recommenderArn": MOST_POPULAR, "numResults": 2}
        stubber.add_response("get_recommendations", ANSWER, {**bare, "userId": "u1"})
        stubber.add_response("get_recommendations", ANSWER, {**bare, "userId": "guest"})
        stubber.add_response(
            "get_recommendations", ANSWER, {**bare, "userId": "guest", **GENRE_SENT}
        )
        assert backend.popular_items(2, "u1").item_ids == ["v1", "v2"]
        backend.popular_items(2)  # Most popular requires a userId: the anonymous one
        backend.popular_items(2, filter=GENRE)


def test_trending_items_ask_trending_now_with_a_user_only_when_given():
    with serving() as (backend, stubber):
        bare = {"recommenderArn": TRENDING_NOW, "numResults": 2}
        stubber.add_response("get_recommendations", ANSWER, bare)
        stubber.add_response("get_recommendations", ANSWER, {**bare, "userId": "u1", **GENRE_SENT})
        backend.trending_items(2)
        backend.trending_items(2, "u1", GENRE)


def test_ranking_keeps_its_campaign():
    with serving() as (backend, stubber):
        stubber.add_response(
            "get_personalized_ranking",
            {"personalizedRanking": [{"itemId": "b", "score": 0.6}, {"itemId": "a"}]},
            {
                "campaignArn": CAMPAIGNS["personalized_ranking_campaign_arn"],
                "userId": "u1",
                "inputList": ["a", "b"],
            },
        )
        assert backend.rerank("u1", ["a", "b"]).item_ids == ["b", "a"]


@pytest.mark.parametrize(
    ("key", "call", "sent"),
    [
        (
            "user_personalization_campaign_arn",
            lambda b: b.recommend("u1", 2),
            {"recommenderArn": TOP_PICKS, "userId": "u1", "filterArn": DEFAULT_ARN},
        ),
        (
            "similar_items_campaign_arn",
            lambda b: b.similar_items("v7", 2, user_id="u1"),
            {"recommenderArn": BECAUSE_WATCHED, "itemId": "v7", "userId": "u1"},
        ),
        (
            "popularity_campaign_arn",
            lambda b: b.popular_items(2),
            {"recommenderArn": MOST_POPULAR, "userId": "anonymous"},
        ),
        (
            "trending_now_campaign_arn",
            lambda b: b.trending_items(2),
            {"recommenderArn": TRENDING_NOW},
        ),
    ],
)
def test_the_recommender_wins_over_a_configured_campaign(key, call, sent):
    campaign = CAMPAIGNS.get(key, f"{ACCOUNT_ARN}:campaign/videos-trending-now")
    with serving(**{key: campaign}) as (backend, stubber):
        stubber.add_response("get_recommendations", ANSWER, {**sent, "numResults": 2})
        call(backend)
        assert backend.info().details[key].startswith("(not used: recommender_arns.")


def test_a_campaign_answers_an_rpc_whose_recommender_is_unset():
    recommenders = {k: v for k, v in RECOMMENDERS.items() if k != "popular_items"}
    campaign = CAMPAIGNS["popularity_campaign_arn"]
    with serving(recommender_arns=recommenders, popularity_campaign_arn=campaign) as (
        backend,
        stubber,
    ):
        stubber.add_response(
            "get_recommendations",
            ANSWER,
            {"campaignArn": campaign, "userId": "anonymous", "numResults": 2},
        )
        backend.popular_items(2)


def test_neither_recommender_nor_campaign_is_misconfiguration():
    with (
        serving(recommender_arns={}) as (backend, _stubber),
        pytest.raises(BackendMisconfiguredError, match="trending_now_campaign_arn"),
    ):
        backend.trending_items(2)


# errors, breaker, fallback, model info ------------------------------------------------


@pytest.mark.parametrize(
    ("call", "recommender", "field"),
    [
        (lambda b: b.recommend("u1", 2), TOP_PICKS, "user_id"),
        (lambda b: b.similar_items("v7", 2, user_id="u1"), BECAUSE_WATCHED, "item_id"),
        (lambda b: b.popular_items(2), MOST_POPULAR, "user_id"),
        (lambda b: b.trending_items(2), TRENDING_NOW, "user_id"),
    ],
)
def test_errors_are_mapped_as_for_campaigns(call, recommender, field):
    with serving() as (backend, stubber):
        stubber.add_client_error("get_recommendations", "InvalidInputException", "bad input", 400)
        stubber.add_client_error(
            "get_recommendations",
            "ResourceNotFoundException",
            f"Recommender {recommender} not found",
            404,
        )
        with pytest.raises(InvalidRequestError) as invalid:
            call(backend)
        with pytest.raises(BackendMisconfiguredError) as missing:
            call(backend)
    assert invalid.value.field == field
    assert "rejected by Amazon Personalize: bad input" in invalid.value.message
    key = next(k for k, v in RECOMMENDERS.items() if v == recommender)
    assert f"recommender_arns.{key} = {recommender}" in str(missing.value)


def test_a_filter_without_an_arn_is_still_refused():
    with (
        serving(filter_arns={}) as (backend, _stubber),
        pytest.raises(BackendMisconfiguredError, match=r"filter_arns\.genre"),
    ):
        backend.trending_items(2, filter=GENRE)


def test_outages_open_the_breaker_and_the_fallback_answers_the_same_question():
    from tests.server.fakes import FakeBackend

    with serving() as (backend, stubber):
        backend.breaker = CircuitBreaker(failures=1, cooldown=60)
        backend.set_fallback(FakeBackend())
        stubber.add_client_error("get_recommendations", "ServiceUnavailableException", "down", 503)
        with pytest.raises(BackendUnavailableError):
            backend.similar_items("v7", 2, user_id="u1")
        answer = backend.popular_items(2)  # open: the fallback, nothing reaches Personalize
        with pytest.raises(InvalidRequestError):  # still refused: the question is wrong
            backend.similar_items("v7", 2)
    assert answer.served_by == FakeBackend.name


def test_model_info_lists_the_recommenders():
    with serving() as (backend, _stubber):
        details = backend.info().details
    for key, arn in RECOMMENDERS.items():
        assert details[f"recommender_arns.{key}"] == arn
    assert details["user_personalization_campaign_arn"] == (
        "(not used: recommender_arns.recommendations answers)"
    )
    assert details["similar_items_campaign_arn"] == (
        "(not used: recommender_arns.similar_items answers)"
    )
    assert (
        details["personalized_ranking_campaign_arn"]
        == (CAMPAIGNS["personalized_ranking_campaign_arn"])
    )


def test_start_does_not_warn_about_campaigns_the_recommenders_replace(caplog):
    with caplog.at_level("WARNING"), serving():
        pass
    assert "trending_now_campaign_arn" not in caplog.text
    assert "popularity_campaign_arn" not in caplog.text
