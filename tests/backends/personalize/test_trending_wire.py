"""Trending on the wire: PersonalizeBackend.trending_items -> boto3 (real serialization and
signing) -> the AWS-protocol endpoint (tests/aws_endpoint.py), whose `trending_now_campaign_arn`
campaign is answered by the backend behind it's `trending_items`, without scores.

The backend behind the endpoint is a tiny one with fixed trending items that records what it
was asked, so the test knows exactly what crossed the wire in both directions; what boto3
sends is recorded by `Wire` (wire.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from recs.backends.base import Recommendations, ScoredItem
from recs.backends.errors import BackendMisconfiguredError, InvalidRequestError
from recs.backends.filtering import FilterCall, FilterSet
from recs.backends.personalize.backend import PersonalizeBackend
from recs.server.aws_protocol import (
    CAMPAIGN_KEYS,
    DEFAULT_REGION,
    TRENDING_NOW,
    stand_in_arn,
)
from tests.aws_endpoint import EndpointThread
from tests.backends.personalize.test_wire import FILTER_ARNS, FILTERS, ScriptedBackend
from tests.backends.personalize.wire import Wire, wired_backend

STAND_IN = stand_in_arn(DEFAULT_REGION, "campaign", "local-trending-now")
GENRE_ARN = FILTER_ARNS["genre"]
UNWATCHED_ARN = FILTER_ARNS["unwatched"]


class TrendingBackend(ScriptedBackend):
    """ScriptedBackend plus fixed trending items (with scores, which the wire drops)."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, str | None, FilterCall | None]] = []

    def trending_items(
        self, num_results: int, user_id: str | None = None, filter: FilterCall | None = None
    ) -> Recommendations:
        if user_id == "bad":
            raise InvalidRequestError("user_id", "unknown to the engine")
        self.asked.append((num_results, user_id, filter))
        items = [ScoredItem("t3", 0.5), ScoredItem("t1", 0.3), ScoredItem("t2", 0.2)]
        return Recommendations.of(items[:num_results], "rid-trend")


@pytest.fixture
def trending() -> TrendingBackend:
    backend = TrendingBackend()
    backend.use_filters(FILTERS)
    return backend


@pytest.fixture
def endpoint(trending: TrendingBackend) -> Iterator[EndpointThread]:
    with EndpointThread(trending, {"filter_arns": FILTER_ARNS}) as running:
        yield running


@pytest.fixture
def wire() -> Wire:
    return Wire()


def backend_for(endpoint: EndpointThread, wire: Wire, **overrides: Any) -> PersonalizeBackend:
    """A started PersonalizeBackend whose clients talk to the endpoint, with its ARNs."""
    values: dict[str, Any] = {
        "region": "us-east-1",
        "max_attempts": 1,
        **endpoint.personalize_config(),
    }
    values.update(overrides)
    return wired_backend(values, wire, FILTERS)


def test_the_campaign_kind_and_its_stand_in_arn(endpoint):
    assert CAMPAIGN_KEYS["trending_now_campaign_arn"] == TRENDING_NOW == "trending-now"
    assert endpoint.resources.campaigns[STAND_IN] == "trending-now"
    assert endpoint.personalize_config()["trending_now_campaign_arn"] == STAND_IN
    assert f"campaign trending-now: {STAND_IN}" in endpoint.resources.describe()


def test_a_configured_arn_is_answered_instead_of_the_stand_in(trending):
    mine = "arn:aws:personalize:eu-west-1:123456789012:campaign/videos-trending-now"
    with EndpointThread(trending, {"trending_now_campaign_arn": mine}) as running:
        assert running.resources.campaigns[mine] == "trending-now"
        assert STAND_IN not in running.resources.campaigns
        assert running.personalize_config()["trending_now_campaign_arn"] == mine


def test_trending_round_trips_without_scores(endpoint, wire, trending):
    backend = backend_for(endpoint, wire)
    answer = backend.trending_items(2)
    assert answer == Recommendations.of([ScoredItem("t3", 0.0), ScoredItem("t1", 0.0)], "rid-trend")
    assert [(r.path, r.body) for r in wire.requests] == [
        ("/recommendations", {"campaignArn": STAND_IN, "numResults": 2}),
    ]
    assert trending.asked == [(2, None, None)]  # no user, and unfiltered


def test_the_user_and_the_filter_reach_the_engine(endpoint, wire, trending):
    backend = backend_for(endpoint, wire)
    genre = FILTERS.resolve("genre", {"GENRES": '"comedy","drama"'})
    backend.trending_items(3, "u1", genre)
    backend.trending_items(1, filter=FILTERS.resolve("unwatched", {}))
    assert [r.body for r in wire.requests] == [
        {
            "campaignArn": STAND_IN,
            "userId": "u1",
            "numResults": 3,
            "filterArn": GENRE_ARN,
            "filterValues": {"GENRES": '"comedy","drama"'},
        },
        {"campaignArn": STAND_IN, "numResults": 1, "filterArn": UNWATCHED_ARN},
    ]
    assert trending.asked == [
        (3, "u1", FILTERS.resolve("genre", {"GENRES": '"comedy","drama"'})),
        (1, None, FILTERS.resolve("unwatched", {})),
    ]


def test_boto3_sees_no_scores_and_the_default_count(endpoint, trending):
    runtime = boto3.client(
        "personalize-runtime", region_name="us-east-1", endpoint_url=endpoint.endpoint_url
    )
    answer = runtime.get_recommendations(campaignArn=STAND_IN)
    assert answer["itemList"] == [{"itemId": "t3"}, {"itemId": "t1"}, {"itemId": "t2"}]
    assert answer["recommendationId"] == "rid-trend"
    assert trending.asked == [(25, None, None)]  # numResults absent: 25, as AWS


def test_the_engine_s_refusal_comes_back_naming_the_field(endpoint, wire):
    with pytest.raises(InvalidRequestError) as caught:
        backend_for(endpoint, wire).trending_items(2, user_id="bad")
    assert caught.value.field == "user_id"
    assert "unknown to the engine" in caught.value.message


def test_an_engine_without_trending_is_a_campaign_personalize_does_not_have(wire):
    with EndpointThread(ScriptedBackend()) as running:  # Backend.trending_items: refused
        backend = backend_for(running, wire)
        with pytest.raises(BackendMisconfiguredError) as caught:
            backend.trending_items(2)
    assert f"trending_now_campaign_arn = {STAND_IN}" in str(caught.value)


def test_an_unknown_trending_campaign_is_named_by_its_key(endpoint, wire):
    gone = "arn:aws:personalize:us-east-1:000000000000:campaign/deleted-trending-now"
    backend = backend_for(endpoint, wire, trending_now_campaign_arn=gone)
    with pytest.raises(BackendMisconfiguredError) as caught:
        backend.trending_items(2)
    assert f"trending_now_campaign_arn = {gone}" in str(caught.value)


# the local engine behind the endpoint ------------------------------------------------


def test_the_local_engine_s_trending_round_trips(wire):
    from recs.backends.local.backend import LocalBackend, LocalBackendConfig
    from recs.backends.local.params import TrainParams
    from recs.backends.local.train import fit_model
    from recs.pipeline.dataset import read_interactions, read_items
    from tests.backends.contract import TINY_DATASET

    filters = FilterSet.from_expressions(
        {
            "unwatched": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")',
            "category": "INCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES)",
        }
    )
    model = fit_model(read_interactions(TINY_DATASET), TrainParams(), read_items(TINY_DATASET))
    config = LocalBackendConfig(model_dir=Path("<in memory>"), mmap=False, catalog=TINY_DATASET)
    local = LocalBackend.from_model(model, config=config, filters=filters)
    asked = [
        (5, None, None),
        (5, "u01", filters.resolve("unwatched", {})),
        (5, "u01", filters.resolve("category", {"CATEGORIES": '"sports"'})),
    ]
    try:
        with EndpointThread(local) as running:  # stand-in ARNs for campaigns and filters
            backend = wired_backend(
                {"region": "us-east-1", "max_attempts": 1, **running.personalize_config()},
                wire,
                filters,
            )
            direct = [local.trending_items(*question) for question in asked]
            answers = [backend.trending_items(*question) for question in asked]
    finally:
        local.close()
    assert direct[0].item_ids  # the tiny dataset has trending items
    assert [answer.item_ids for answer in answers] == [answer.item_ids for answer in direct]
    assert {score for answer in answers for score in answer.scores} <= {0.0}  # no scores
    assert [request.body.get("filterArn", "").rsplit("/", 1)[-1] for request in wire.requests] == [
        "",
        "local-unwatched",
        "local-category",
    ]
