"""The AWS-protocol endpoint's VIDEO_ON_DEMAND recommenders, driven by boto3:
get_recommendations(recommenderArn=...) against the local engine trained on the tiny dataset
(tests/fixtures/tiny_dataset), answers compared with the engine's own.

Use case requirements: https://docs.aws.amazon.com/personalize/latest/dg/VIDEO_ON_DEMAND-use-cases.html
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from recs.backends.filtering import FilterSet
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model
from recs.pipeline.dataset import read_interactions, read_items
from recs.server.aws_protocol import RECOMMENDER_KINDS, AwsResources, stand_in_arn
from tests.aws_endpoint import EndpointThread
from tests.backends.contract import HISTORY, TINY_DATASET

ACCOUNT = "arn:aws:personalize:us-east-1:123456789012"
TOP_PICKS = f"{ACCOUNT}:recommender/videos-top-picks"
BECAUSE_WATCHED = f"{ACCOUNT}:recommender/videos-because-you-watched-x"
PERSONALIZE: dict[str, Any] = {
    "region": "us-east-1",
    "recommender_arns": {"recommendations": TOP_PICKS, "similar_items": BECAUSE_WATCHED},
}
# Not configured: answered under their stand-in ARNs (account 000000000000).
MORE_LIKE_X = stand_in_arn("us-east-1", "recommender", "local-more_like_x")
MOST_POPULAR = stand_in_arn("us-east-1", "recommender", "local-popular_items")
TRENDING_NOW = stand_in_arn("us-east-1", "recommender", "local-trending_items")
UNWATCHED = stand_in_arn("us-east-1", "filter", "local-unwatched")
CATEGORY = stand_in_arn("us-east-1", "filter", "local-category")
FILTERS = FilterSet.from_expressions(
    {
        "unwatched": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")',
        "category": "INCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES)",
    }
)


@pytest.fixture(scope="module")
def local() -> Iterator[LocalBackend]:
    model = fit_model(read_interactions(TINY_DATASET), TrainParams(), read_items(TINY_DATASET))
    config = LocalBackendConfig(model_dir=Path("<in memory>"), mmap=False, catalog=TINY_DATASET)
    engine = LocalBackend.from_model(model, config=config, filters=FILTERS)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def endpoint(local: LocalBackend) -> Iterator[EndpointThread]:
    with EndpointThread(local, PERSONALIZE) as running:
        yield running


@pytest.fixture(scope="module")
def runtime(endpoint: EndpointThread) -> Any:
    return boto3.client(
        "personalize-runtime",
        region_name="us-east-1",
        endpoint_url=endpoint.endpoint_url,
        config=Config(retries={"max_attempts": 1}),
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def ids(answer: dict[str, Any]) -> list[str]:
    return [item["itemId"] for item in answer["itemList"]]


def refused(call: Any, **members: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as caught:
        call(**members)
    error = caught.value.response
    return (
        error["Error"]["Code"],
        error["Error"]["Message"],
        error["ResponseMetadata"]["HTTPStatusCode"],
    )


# which ARN is which -------------------------------------------------------------------


def test_configured_arns_and_stand_ins_for_the_rest():
    resources = AwsResources.from_config(PERSONALIZE, FILTERS.filters)
    assert resources.recommenders == {
        TOP_PICKS: "recommendations",
        BECAUSE_WATCHED: "similar_items",
        MORE_LIKE_X: "more_like_x",
        MOST_POPULAR: "popular_items",
        TRENDING_NOW: "trending_items",
    }
    assert RECOMMENDER_KINDS == {
        "recommendations": "user-personalization",
        "similar_items": "sims",
        "more_like_x": "sims",
        "popular_items": "popularity-count",
        "trending_items": "trending-now",
    }
    assert f"recommender similar_items: {BECAUSE_WATCHED}" in resources.describe()
    assert f"recommender trending_items: {TRENDING_NOW}" in resources.describe()


def test_stand_ins_follow_the_region():
    resources = AwsResources.from_config({"region": "eu-west-1"}, ())
    assert "arn:aws:personalize:eu-west-1:000000000000:recommender/local-recommendations" in (
        resources.recommenders
    )


# each use case ------------------------------------------------------------------------


def test_top_picks_answers_with_scores_leaving_out_what_the_user_watched(runtime, local):
    answer = runtime.get_recommendations(recommenderArn=TOP_PICKS, userId="u04", numResults=5)
    direct = local.recommend("u04", 5)  # the engine's default filter stands in
    assert ids(answer) == direct.item_ids
    assert [item["score"] for item in answer["itemList"]] == pytest.approx(direct.scores)
    assert not set(ids(answer)) & HISTORY["u04"]
    assert answer["recommendationId"]


def test_top_picks_with_a_filter_applies_that_filter(runtime, local):
    answer = runtime.get_recommendations(
        recommenderArn=TOP_PICKS, userId="u04", numResults=5, filterArn=UNWATCHED
    )
    assert ids(answer) == local.recommend("u04", 5, FILTERS.resolve("unwatched", {})).item_ids


@pytest.mark.parametrize("arn", [BECAUSE_WATCHED, MORE_LIKE_X])
def test_because_you_watched_and_more_like_x_leave_out_what_the_user_watched(runtime, local, arn):
    answer = runtime.get_recommendations(
        recommenderArn=arn, userId="u01", itemId="a1", numResults=5
    )
    assert ids(answer) == local.similar_items("a1", 5, None, "u01").item_ids
    assert not {"a2", "p"} & set(ids(answer))  # watched by u01
    assert "a2" in ids(runtime.get_recommendations(recommenderArn=arn, userId="u04", itemId="a1"))
    assert all("score" not in item for item in answer["itemList"])  # as SIMS


def test_most_popular_answers_without_scores(runtime, local):
    answer = runtime.get_recommendations(recommenderArn=MOST_POPULAR, userId="u09", numResults=4)
    assert ids(answer) == local.popular_items(4, "u09").item_ids
    assert all("score" not in item for item in answer["itemList"])


def test_trending_now_needs_no_user(runtime, local):
    answer = runtime.get_recommendations(recommenderArn=TRENDING_NOW, numResults=4)
    assert ids(answer) == local.trending_items(4).item_ids
    assert ids(answer)
    with_user = runtime.get_recommendations(
        recommenderArn=TRENDING_NOW, userId="u01", numResults=4, filterArn=UNWATCHED
    )
    assert (
        ids(with_user) == local.trending_items(4, "u01", FILTERS.resolve("unwatched", {})).item_ids
    )


def test_filters_values_and_metadata_work_as_on_campaigns(runtime, local):
    answer = runtime.get_recommendations(
        recommenderArn=MOST_POPULAR,
        userId="u09",
        numResults=3,
        filterArn=CATEGORY,
        filterValues={"CATEGORIES": '"sports"'},
    )
    category = FILTERS.resolve("category", {"CATEGORIES": '"sports"'})
    assert ids(answer) == local.popular_items(3, "u09", category).item_ids


# refusals -----------------------------------------------------------------------------


def test_an_unknown_recommender_is_not_found(runtime):
    unknown = f"{ACCOUNT}:recommender/no-such-recommender"
    assert refused(runtime.get_recommendations, recommenderArn=unknown, userId="u01") == (
        "ResourceNotFoundException",
        f"Recommender {unknown} not found",
        404,
    )


@pytest.mark.parametrize(
    ("members", "missing"),
    [
        ({"recommenderArn": TOP_PICKS}, "userId"),
        ({"recommenderArn": BECAUSE_WATCHED, "itemId": "a1"}, "userId"),
        ({"recommenderArn": BECAUSE_WATCHED, "userId": "u01"}, "itemId"),
        ({"recommenderArn": MORE_LIKE_X, "itemId": "a1"}, "userId"),
        ({"recommenderArn": MORE_LIKE_X, "userId": "u01"}, "itemId"),
        ({"recommenderArn": MOST_POPULAR}, "userId"),
    ],
)
def test_each_use_case_s_required_members_are_enforced(runtime, members, missing):
    code, message, status = refused(runtime.get_recommendations, **members)
    assert (code, status) == ("InvalidInputException", 400)
    assert message.startswith(f"{missing}: is required for the VIDEO_ON_DEMAND recommender")
    assert members["recommenderArn"] in message


def test_trending_now_needs_a_user_for_a_filter_on_interactions(runtime):
    code, message, _ = refused(
        runtime.get_recommendations, recommenderArn=TRENDING_NOW, filterArn=UNWATCHED
    )
    assert code == "InvalidInputException"
    assert message.startswith("userId: is required for filter 'unwatched'")
    promoted = refused(
        runtime.get_recommendations,
        recommenderArn=TRENDING_NOW,
        promotions=[{"name": "p", "percentPromotedItems": 20, "filterArn": UNWATCHED}],
    )
    assert "promotions[0].filterArn" in promoted[1]


def test_a_campaign_and_a_recommender_at_once_are_refused(runtime):
    campaign = stand_in_arn("us-east-1", "campaign", "local-user-personalization")
    code, message, _ = refused(
        runtime.get_recommendations, campaignArn=campaign, recommenderArn=TOP_PICKS, userId="u1"
    )
    assert (code, message) == (
        "InvalidInputException",
        "give campaignArn or recommenderArn, not both",
    )


def test_an_unknown_filter_on_a_recommender_is_not_found(runtime):
    unknown = f"{ACCOUNT}:filter/nope"
    code, message, _ = refused(
        runtime.get_recommendations, recommenderArn=TOP_PICKS, userId="u01", filterArn=unknown
    )
    assert (code, message) == ("ResourceNotFoundException", f"Filter {unknown} does not exist")
