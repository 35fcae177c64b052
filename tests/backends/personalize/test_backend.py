"""PersonalizeBackend's runtime calls, checked by Stubber against the real service model."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from recs.backends.base import Recommendations, ScoredItem
from recs.backends.errors import BackendMisconfiguredError, InvalidRequestError
from recs.backends.filtering import DEFAULT_FILTER_NAME, FilterSet
from recs.backends.personalize.backend import PersonalizeBackend
from tests.backends.personalize.runtime_helpers import (
    ACCOUNT_ARN,
    CAMPAIGNS,
    stubbed_backend,
)
from tests.backends.personalize.runtime_helpers import make_config as make_test_config

UP = CAMPAIGNS["user_personalization_campaign_arn"]
SIMS = CAMPAIGNS["similar_items_campaign_arn"]
POPULAR = CAMPAIGNS["popularity_campaign_arn"]
RANKING = CAMPAIGNS["personalized_ranking_campaign_arn"]
DEFAULT_ARN = f"{ACCOUNT_ARN}:filter/videos-exclude_interacted"
UNWATCHED_ARN = f"{ACCOUNT_ARN}:filter/videos-unwatched"
GENRE_ARN = f"{ACCOUNT_ARN}:filter/videos-genre"
SAME_GENRE_ARN = f"{ACCOUNT_ARN}:filter/videos-same_genre"
FILTER_ARNS = {
    DEFAULT_FILTER_NAME: DEFAULT_ARN,
    "unwatched": UNWATCHED_ARN,
    "genre": GENRE_ARN,
    "same_genre": SAME_GENRE_ARN,
}
EXPRESSIONS = {
    "unwatched": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")',
    "genre": "INCLUDE ItemID WHERE Items.GENRES IN ($GENRES)",
    "same_genre": "INCLUDE ItemID WHERE Items.GENRES IN CurrentItem.GENRES",
}
FILTERS = FilterSet.from_expressions(EXPRESSIONS)
UNWATCHED = FILTERS.resolve("unwatched", {})
GENRE = FILTERS.resolve("genre", {"GENRES": '"comedy", "drama"'})
SAME_GENRE = FILTERS.resolve("same_genre", {}, current_item=True)


@contextmanager
def serving(
    filters: FilterSet = FILTERS, **overrides: Any
) -> Iterator[tuple[PersonalizeBackend, Stubber]]:
    """`stubbed_backend` serving `filters`, with an ARN for each unless overridden."""
    with stubbed_backend(**{"filter_arns": FILTER_ARNS, **overrides}) as (backend, stubber):
        backend.use_filters(filters)
        yield backend, stubber


def test_recommend_calls_the_user_personalization_campaign_and_passes_scores_through():
    with serving() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {
                "itemList": [{"itemId": "v7", "score": 0.61}, {"itemId": "v3", "score": 0.2}],
                "recommendationId": "RID-up",
            },
            {"campaignArn": UP, "userId": "u1", "numResults": 2, "filterArn": DEFAULT_ARN},
        )
        result = backend.recommend("u1", 2)
    assert result == Recommendations.of([ScoredItem("v7", 0.61), ScoredItem("v3", 0.2)], "RID-up")


def test_recommend_without_a_filter_sends_the_default_filter():
    with serving() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v1", "score": 0.5}]},
            {"campaignArn": UP, "userId": "u1", "numResults": 5, "filterArn": DEFAULT_ARN},
        )
        assert backend.recommend("u1", 5).item_ids == ["v1"]


def test_another_default_filter_is_sent_by_its_own_arn():
    filters = FilterSet.from_expressions(EXPRESSIONS, default="unwatched")
    with serving(filters) as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": []},
            {"campaignArn": UP, "userId": "u1", "numResults": 5, "filterArn": UNWATCHED_ARN},
        )
        backend.recommend("u1", 5)


def test_recommend_sends_no_filter_when_the_default_is_off():
    filters = FilterSet.from_expressions(EXPRESSIONS, default=None)
    with serving(filters, filter_arns={}) as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v1", "score": 0.5}]},
            {"campaignArn": UP, "userId": "u1", "numResults": 5},
        )
        assert backend.recommend("u1", 5).item_ids == ["v1"]


def test_recommend_with_a_filter_sends_its_arn_and_the_values_as_written():
    with serving() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": []},
            {
                "campaignArn": UP,
                "userId": "u1",
                "numResults": 5,
                "filterArn": GENRE_ARN,
                "filterValues": {"GENRES": '"comedy", "drama"'},
            },
        )
        backend.recommend("u1", 5, GENRE)


def test_recommend_many_sends_each_call_s_filter():
    with serving() as (backend, stubber):
        for user, arn in (("u1", DEFAULT_ARN), ("u2", UNWATCHED_ARN)):
            stubber.add_response(
                "get_recommendations",
                {"itemList": []},
                {"campaignArn": UP, "userId": user, "numResults": 3, "filterArn": arn},
            )
        backend.recommend_many([("u1", 3), ("u2", 3)], [None, UNWATCHED])


def test_similar_items_sends_the_filter_only_when_given():
    with serving() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v2"}]},
            {"campaignArn": SIMS, "itemId": "v1", "numResults": 3},
        )
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v3"}]},
            {"campaignArn": SIMS, "itemId": "v1", "numResults": 3, "filterArn": SAME_GENRE_ARN},
        )
        assert backend.similar_items("v1", 3).item_ids == ["v2"]
        assert backend.similar_items("v1", 3, SAME_GENRE).item_ids == ["v3"]


def test_similar_items_for_a_user_sends_the_user_and_the_default_filter():
    """A SIMS campaign does not leave out what the user watched; the default filter does."""
    with serving() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v2"}]},
            {
                "campaignArn": SIMS,
                "itemId": "v1",
                "numResults": 3,
                "userId": "u4",
                "filterArn": DEFAULT_ARN,
            },
        )
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v3"}]},
            {
                "campaignArn": SIMS,
                "itemId": "v1",
                "numResults": 3,
                "userId": "u4",
                "filterArn": SAME_GENRE_ARN,
            },
        )
        assert backend.similar_items("v1", 3, user_id="u4").item_ids == ["v2"]
        assert backend.similar_items("v1", 3, SAME_GENRE, "u4").item_ids == ["v3"]
        stubber.assert_no_pending_responses()


def test_popular_items_sends_the_filter_and_its_values_only_when_given():
    with serving() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v5"}]},
            {"campaignArn": POPULAR, "userId": "anonymous", "numResults": 2},
        )
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v6"}]},
            {
                "campaignArn": POPULAR,
                "userId": "u8",
                "numResults": 2,
                "filterArn": GENRE_ARN,
                "filterValues": {"GENRES": '"comedy", "drama"'},
            },
        )
        assert backend.popular_items(2).item_ids == ["v5"]
        assert backend.popular_items(2, user_id="u8", filter=GENRE).item_ids == ["v6"]


def test_rerank_with_a_filter_does_not_bring_back_the_items_it_dropped():
    with serving() as (backend, stubber):
        stubber.add_response(
            "get_personalized_ranking",
            {
                "personalizedRanking": [
                    {"itemId": "b", "score": 0.7},
                    {"itemId": "new"},  # untrained item, still answered without a score
                ],
                "recommendationId": "RID-rank",
            },
            {
                "campaignArn": RANKING,
                "userId": "u1",
                "inputList": ["a", "b", "new"],
                "filterArn": UNWATCHED_ARN,
            },
        )
        result = backend.rerank("u1", ["a", "b", "new"], UNWATCHED)
    assert result == Recommendations.of([ScoredItem("b", 0.7), ScoredItem("new", 0.0)], "RID-rank")


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.recommend("u1", 5, UNWATCHED),
        lambda b: b.similar_items("v1", 5, UNWATCHED),
        lambda b: b.popular_items(5, filter=UNWATCHED),
        lambda b: b.rerank("u1", ["v1"], UNWATCHED),
        lambda b: b.recommend_many([("u1", 5)], [UNWATCHED]),
    ],
)
def test_a_filter_without_an_arn_is_refused_naming_the_key_before_any_call(call):
    arns = {name: arn for name, arn in FILTER_ARNS.items() if name != "unwatched"}
    with (
        serving(filter_arns=arns) as (backend, _stubber),
        pytest.raises(BackendMisconfiguredError) as caught,
    ):
        call(backend)  # nothing is stubbed: a request would fail with UnStubbedResponseError
    assert str(caught.value) == (
        "personalize.filter_arns.unwatched: no ARN for filter 'unwatched' (run recs"
        " personalize provision, or add it to [personalize.filter_arns])"
    )


def test_the_default_filter_without_an_arn_refuses_recommend_without_a_filter():
    with (
        serving(filter_arns={}) as (backend, _stubber),
        pytest.raises(BackendMisconfiguredError, match=r"filter_arns\.exclude_interacted: "),
    ):
        backend.recommend("u1", 5)


def test_start_warns_once_about_every_filter_without_an_arn(caplog):
    backend = PersonalizeBackend(make_test_config(filter_arns={"genre": GENRE_ARN}))
    backend.use_filters(FILTERS)
    with caplog.at_level(logging.WARNING, logger="recs.backends.personalize.backend"):
        backend.start()
    backend.close()
    warnings = [r.getMessage() for r in caplog.records if "filter_arns" in r.getMessage()]
    assert len(warnings) == 1
    assert "'exclude_interacted', 'same_genre', 'unwatched'" in warnings[0]
    assert "'exclude_interacted' is the default filter" in warnings[0]


def test_start_says_nothing_of_filters_when_each_has_an_arn(caplog):
    backend = PersonalizeBackend(make_test_config(filter_arns=FILTER_ARNS))
    backend.use_filters(FILTERS)
    with caplog.at_level(logging.WARNING, logger="recs.backends.personalize.backend"):
        backend.start()
    backend.close()
    assert not [r for r in caplog.records if "filter_arns" in r.getMessage()]


def test_the_fallback_gets_the_same_filter():
    calls: list[tuple[str, object]] = []

    class Recording(PersonalizeBackend):
        name = "recording"

        def recommend(self, user_id, num_results, filter=None):
            calls.append(("recommend", filter))
            return Recommendations([], [])

        def similar_items(self, item_id, num_results, filter=None, user_id=None):
            calls.append(("similar_items", filter))
            return Recommendations([], [])

        def popular_items(self, num_results, user_id=None, filter=None):
            calls.append(("popular_items", filter))
            return Recommendations([], [])

        def rerank(self, user_id, item_ids, filter=None):
            calls.append(("rerank", filter))
            return Recommendations([], [])

    with serving() as (backend, _stubber):
        backend.set_fallback(Recording(make_test_config()))
        backend.breaker.failures = 1
        backend.breaker.failed()  # open: every call goes to the fallback
        assert backend.recommend("u1", 5, GENRE).served_by == "recording"
        backend.recommend("u1", 5)
        backend.similar_items("v1", 5, SAME_GENRE)
        backend.popular_items(5, filter=UNWATCHED)
        backend.rerank("u1", ["v1"], UNWATCHED)
    assert calls == [
        ("recommend", GENRE),
        ("recommend", None),  # the fallback applies the same default itself
        ("similar_items", SAME_GENRE),
        ("popular_items", UNWATCHED),
        ("rerank", UNWATCHED),
    ]


def test_similar_items_sends_item_id_and_keeps_order_with_zero_scores():
    with serving() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v9"}, {"itemId": "v2"}, {"itemId": "v4"}]},
            {"campaignArn": SIMS, "itemId": "v1", "numResults": 3},
        )
        result = backend.similar_items("v1", 3)
    assert result.items == [ScoredItem("v9", 0.0), ScoredItem("v2", 0.0), ScoredItem("v4", 0.0)]
    assert result.recommendation_id == ""


def test_similar_items_never_returns_the_query_item():
    with serving() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v1"}, {"itemId": "v2"}]},
            {"campaignArn": SIMS, "itemId": "v1", "numResults": 2},
        )
        assert [i.item_id for i in backend.similar_items("v1", 2).items] == ["v2"]


def test_popular_items_without_user_sends_the_anonymous_user_id():
    with serving(anonymous_user_id="guest") as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v5"}, {"itemId": "v6"}], "recommendationId": "RID-pop"},
            {"campaignArn": POPULAR, "userId": "guest", "numResults": 2},
        )
        result = backend.popular_items(2)
    assert result == Recommendations.of([ScoredItem("v5", 0.0), ScoredItem("v6", 0.0)], "RID-pop")


def test_popular_items_with_user_sends_that_user():
    with serving() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v5"}]},
            {"campaignArn": POPULAR, "userId": "u8", "numResults": 1},
        )
        assert backend.popular_items(1, user_id="u8").items == [ScoredItem("v5", 0.0)]


def test_rerank_sends_distinct_ids_and_returns_a_permutation_of_them():
    with serving() as (backend, stubber):
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
            },
        )
        result = backend.rerank("u1", ["a", "b", "a", "new", "gone"])
    assert result == Recommendations.of(
        [
            ScoredItem("b", 0.7),
            ScoredItem("a", 0.3),
            ScoredItem("new", 0.0),
            ScoredItem("gone", 0.0),  # left out by Personalize: last, score 0
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
    with serving() as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": []},
            {"campaignArn": UP, "userId": "u" * 256, "numResults": 500, "filterArn": DEFAULT_ARN},
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
    with serving(similar_items_campaign_arn=None) as (backend, stubber):
        stubber.add_response(
            "get_recommendations",
            {"itemList": [{"itemId": "v1", "score": 0.9}]},
            {"campaignArn": UP, "userId": "u1", "numResults": 1, "filterArn": DEFAULT_ARN},
        )
        assert backend.recommend("u1", 1).items == [ScoredItem("v1", 0.9)]


def test_info_names_the_campaigns_without_calling_aws():
    arns = {name: arn for name, arn in FILTER_ARNS.items() if name != "genre"}
    with serving(popularity_campaign_arn=None, filter_arns=arns) as (backend, _stubber):
        info = backend.info()
    assert info.backend == "personalize"
    assert info.details["user_personalization_campaign_arn"] == UP
    assert info.details["popularity_campaign_arn"] == "(not configured)"
    assert info.details["region"] == "us-east-1"
    assert info.details["filter_arns.exclude_interacted"] == DEFAULT_ARN
    assert info.details["filter_arns.genre"] == "(not configured)"


def test_info_keeps_the_endpoint_url_to_the_operator():
    with stubbed_backend() as (backend, _stubber):
        info = backend.info()
    endpoint = backend.config.endpoint()
    assert endpoint
    assert "endpoint_url" not in info.details
    assert all(endpoint not in value for value in info.details.values())
