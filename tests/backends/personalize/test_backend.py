"""PersonalizeBackend's runtime calls, checked by Stubber against the real service model."""

from __future__ import annotations

import pytest
from botocore.stub import ANY

from recs.backends.base import Recommendations, ScoredItem
from recs.backends.errors import BackendMisconfiguredError, InvalidRequestError
from tests.backends.personalize.runtime_helpers import CAMPAIGNS, stubbed_backend

UP = CAMPAIGNS["user_personalization_campaign_arn"]
SIMS = CAMPAIGNS["similar_items_campaign_arn"]
POPULAR = CAMPAIGNS["popularity_campaign_arn"]
RANKING = CAMPAIGNS["personalized_ranking_campaign_arn"]
FILTER = "arn:aws:personalize:us-east-1:123456789012:filter/not-watched"


def test_recommend_calls_the_user_personalization_campaign_and_passes_scores_through():
    with stubbed_backend() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {
                "itemList": [{"itemId": "v7", "score": 0.61}, {"itemId": "v3", "score": 0.2}],
                "recommendationId": "RID-up",
            },
            {"campaignArn": UP, "userId": "u1", "numResults": 2},
        )
        result = backend.recommend("u1", 2)
    assert result == Recommendations.of([ScoredItem("v7", 0.61), ScoredItem("v3", 0.2)], "RID-up")


def test_recommend_sends_the_configured_filter():
    with stubbed_backend(user_personalization_filter_arn=FILTER) as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v1", "score": 0.5}], "recommendationId": "r"},
            {"campaignArn": UP, "userId": "u1", "numResults": 5, "filterArn": FILTER},
        )
        assert [i.item_id for i in backend.recommend("u1", 5).items] == ["v1"]


def test_similar_items_sends_item_id_and_keeps_order_with_zero_scores():
    with stubbed_backend() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v9"}, {"itemId": "v2"}, {"itemId": "v4"}]},
            {"campaignArn": SIMS, "itemId": "v1", "numResults": 3},
        )
        result = backend.similar_items("v1", 3)
    assert result.items == [ScoredItem("v9", 0.0), ScoredItem("v2", 0.0), ScoredItem("v4", 0.0)]
    assert result.recommendation_id == ""


def test_similar_items_never_returns_the_query_item():
    with stubbed_backend() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v1"}, {"itemId": "v2"}]},
            {"campaignArn": SIMS, "itemId": "v1", "numResults": 2},
        )
        assert [i.item_id for i in backend.similar_items("v1", 2).items] == ["v2"]


def test_popular_items_without_user_sends_the_anonymous_user_id():
    with stubbed_backend(anonymous_user_id="guest") as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v5"}, {"itemId": "v6"}], "recommendationId": "RID-pop"},
            {"campaignArn": POPULAR, "userId": "guest", "numResults": 2},
        )
        result = backend.popular_items(2)
    assert result == Recommendations.of([ScoredItem("v5", 0.0), ScoredItem("v6", 0.0)], "RID-pop")


def test_popular_items_with_user_sends_that_user():
    with stubbed_backend() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v5"}]},
            {"campaignArn": POPULAR, "userId": "u8", "numResults": 1},
        )
        assert backend.popular_items(1, user_id="u8").items == [ScoredItem("v5", 0.0)]


def test_rerank_sends_distinct_ids_and_returns_a_permutation_of_them():
    with stubbed_backend(personalized_ranking_filter_arn=FILTER) as (backend, stubber):
        stubber.add_response(
            "get_personalized_ranking",
            {
                "personalizedRanking": [
                    {"itemId": "b", "score": 0.7},
                    {"itemId": "a", "score": 0.3},
                    {"itemId": "b", "score": 0.1},  # a repeat must not duplicate b
                    {"itemId": "zz", "score": 0.05},  # never asked for
                    {"itemId": "new"},  # untrained item, appended without a score
                ],
                "recommendationId": "RID-rank",
            },
            {
                "campaignArn": RANKING,
                "userId": "u1",
                "inputList": ["a", "b", "new", "gone"],
                "filterArn": FILTER,
            },
        )
        result = backend.rerank("u1", ["a", "b", "a", "new", "gone"])
    assert result == Recommendations.of(
        [
            ScoredItem("b", 0.7),
            ScoredItem("a", 0.3),
            ScoredItem("new", 0.0),
            ScoredItem("gone", 0.0),  # dropped by Personalize (e.g. a filter): last, score 0
        ],
        "RID-rank",
    )


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda b: b.recommend("", 10), "user_id"),
        (lambda b: b.recommend("u" * 257, 10), "user_id"),
        (lambda b: b.recommend("u1", 0), "num_results"),
        (lambda b: b.recommend("u1", 501), "num_results"),
        (lambda b: b.similar_items("", 10), "item_id"),
        (lambda b: b.similar_items("i" * 257, 10), "item_id"),
        (lambda b: b.similar_items("v1", 501), "num_results"),
        (lambda b: b.popular_items(501), "num_results"),
        (lambda b: b.popular_items(10, user_id="u" * 257), "user_id"),
        (lambda b: b.rerank("", ["a"]), "user_id"),
        (lambda b: b.rerank("u1", []), "item_ids"),
        (lambda b: b.rerank("u1", [f"v{i}" for i in range(501)]), "item_ids"),
        (lambda b: b.rerank("u1", ["a", "x" * 257]), "item_ids[1]"),
        (lambda b: b.rerank("u1", ["a", ""]), "item_ids[1]"),
    ],
)
def test_personalize_limits_are_checked_before_any_call(call, field):
    with stubbed_backend() as (backend, _stubber), pytest.raises(InvalidRequestError) as caught:
        call(backend)  # a call reaching the client would fail with UnStubbedResponseError
    assert caught.value.field == field


def test_limits_themselves_are_accepted():
    with stubbed_backend() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": []},
            {"campaignArn": UP, "userId": "u" * 256, "numResults": 500},
        )
        stubber.add_response(
            "get_personalized_ranking",
            {"personalizedRanking": []},
            {"campaignArn": RANKING, "userId": "u1", "inputList": ANY},
        )
        assert backend.recommend("u" * 256, 500).items == []
        assert len(backend.rerank("u1", [f"v{i}" for i in range(500)]).items) == 500


@pytest.mark.parametrize(
    ("key", "call"),
    [
        ("user_personalization_campaign_arn", lambda b: b.recommend("u1", 5)),
        ("similar_items_campaign_arn", lambda b: b.similar_items("v1", 5)),
        ("popularity_campaign_arn", lambda b: b.popular_items(5)),
        ("personalized_ranking_campaign_arn", lambda b: b.rerank("u1", ["v1"])),
    ],
)
def test_an_rpc_without_its_campaign_names_the_missing_key(key, call):
    with (
        stubbed_backend(**{key: None}) as (backend, _stubber),
        pytest.raises(BackendMisconfiguredError) as caught,
    ):
        call(backend)
    assert str(caught.value) == f"{key} is not configured in [personalize]"


def test_other_rpcs_still_work_when_one_campaign_is_missing():
    with stubbed_backend(similar_items_campaign_arn=None) as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v1", "score": 0.9}]},
            {"campaignArn": UP, "userId": "u1", "numResults": 1},
        )
        assert backend.recommend("u1", 1).items == [ScoredItem("v1", 0.9)]


def test_info_names_the_campaigns_without_calling_aws():
    with stubbed_backend(popularity_campaign_arn=None) as (backend, _stubber):
        info = backend.info()
    assert info.backend == "personalize"
    assert info.details["user_personalization_campaign_arn"] == UP
    assert info.details["popularity_campaign_arn"] == "(not configured)"
    assert info.details["region"] == "us-east-1"


def test_info_keeps_the_endpoint_url_to_the_operator():
    with stubbed_backend() as (backend, _stubber):
        info = backend.info()
    endpoint = backend.config.endpoint()
    assert endpoint
    assert "endpoint_url" not in info.details
    assert all(endpoint not in value for value in info.details.values())
