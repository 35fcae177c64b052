"""VIDEO_ON_DEMAND recommenders on the wire: a PersonalizeBackend whose
`[personalize.recommender_arns]` names the endpoint's recommenders -> boto3 (real
serialization and signing) -> the AWS-protocol endpoint (tests/aws_endpoint.py) -> the local
engine trained on the tiny dataset, for each RPC; what boto3 sends is recorded by `Wire`.

The answers are compared with the local engine's own, asked directly the same question.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recs.backends.errors import BackendMisconfiguredError, InvalidRequestError
from recs.backends.filtering import FilterSet
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model
from recs.backends.personalize.backend import PersonalizeBackend
from recs.pipeline.dataset import read_interactions, read_items
from recs.server.aws_protocol import DEFAULT_REGION, stand_in_arn
from tests.aws_endpoint import EndpointThread
from tests.backends.contract import HISTORY, TINY_DATASET
from tests.backends.personalize.wire import Wire, wired_backend

FILTERS = FilterSet.from_expressions(
    {
        "unwatched": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")',
        "category": "INCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES)",
    }
)


def recommender(key: str) -> str:
    return stand_in_arn(DEFAULT_REGION, "recommender", f"local-{key}")


def filter_arn(name: str) -> str:
    return stand_in_arn(DEFAULT_REGION, "filter", f"local-{name}")


@pytest.fixture(scope="module")
def local() -> Iterator[LocalBackend]:
    model = fit_model(read_interactions(TINY_DATASET), TrainParams(), read_items(TINY_DATASET))
    config = LocalBackendConfig(model_dir=Path("<in memory>"), mmap=False, catalog=TINY_DATASET)
    engine = LocalBackend.from_model(model, config=config, filters=FILTERS)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def endpoint(local: LocalBackend) -> Iterator[EndpointThread]:
    with EndpointThread(local) as running:  # stand-in ARNs for everything
        yield running


@pytest.fixture
def wire() -> Wire:
    return Wire()


def backend_for(endpoint: EndpointThread, wire: Wire, **overrides: Any) -> PersonalizeBackend:
    """A started PersonalizeBackend calling the endpoint's recommenders."""
    values: dict[str, Any] = {
        "region": "us-east-1",
        "max_attempts": 1,
        **endpoint.personalize_config(recommenders=True),
        **overrides,
    }
    return wired_backend(values, wire, FILTERS)


def test_the_config_names_every_recommender_of_the_endpoint(endpoint):
    assert endpoint.personalize_config(recommenders=True)["recommender_arns"] == {
        key: recommender(key)
        for key in (
            "recommendations",
            "similar_items",
            "more_like_x",
            "popular_items",
            "trending_items",
        )
    }
    assert "recommender_arns" not in endpoint.personalize_config()  # campaigns answer


def test_recommendations_round_trip_through_top_picks(endpoint, wire, local):
    backend = backend_for(endpoint, wire)
    answer = backend.recommend("u04", 5)
    direct = local.recommend("u04", 5)  # the default filter, as sent
    assert answer.item_ids == direct.item_ids
    assert answer.scores == pytest.approx(direct.scores)  # Top picks answers with scores
    assert not set(answer.item_ids) & HISTORY["u04"]
    assert [r.body for r in wire.requests] == [
        {
            "recommenderArn": recommender("recommendations"),
            "userId": "u04",
            "numResults": 5,
            "filterArn": filter_arn("exclude_interacted"),
        }
    ]


def test_similar_items_round_trip_through_because_you_watched_x(endpoint, wire, local):
    backend = backend_for(endpoint, wire)
    answer = backend.similar_items("a1", 5, user_id="u01")
    direct = local.similar_items("a1", 5, None, "u01")
    assert answer.item_ids == [i for i in direct.item_ids if i != "a1"]
    # u01 watched a2 and p (left out), only clicked a3 (kept); u04 did not watch a2.
    assert {"a2", "p"} & set(local.similar_items("a1", 5, None, "u04").item_ids)
    assert not {"a2", "p"} & set(answer.item_ids)
    assert "a3" in answer.item_ids
    assert set(answer.scores) <= {0.0}  # as a SIMS answer: no scores
    assert [r.body for r in wire.requests] == [
        {
            "recommenderArn": recommender("similar_items"),
            "itemId": "a1",
            "userId": "u01",
            "numResults": 5,
        }
    ]


def test_similar_items_without_a_user_never_reach_the_wire(endpoint, wire):
    backend = backend_for(endpoint, wire)
    with pytest.raises(InvalidRequestError) as caught:
        backend.similar_items("a1", 5)
    assert caught.value.field == "user_id"
    assert wire.requests == []


def test_more_like_x_copied_into_similar_items_answers_them(endpoint, wire, local):
    arns = {**endpoint.personalize_config(recommenders=True)["recommender_arns"]}
    arns["similar_items"] = arns["more_like_x"]
    backend = backend_for(endpoint, wire, recommender_arns=arns)
    answer = backend.similar_items("b1", 5, user_id="u08")
    direct = local.similar_items("b1", 5, None, "u08")
    assert answer.item_ids == [i for i in direct.item_ids if i != "b1"]
    assert wire.requests[0].body["recommenderArn"] == recommender("more_like_x")


def test_popular_items_round_trip_through_most_popular(endpoint, wire, local):
    backend = backend_for(endpoint, wire)
    category = FILTERS.resolve("category", {"CATEGORIES": '"sports"'})
    answers = [backend.popular_items(5), backend.popular_items(5, "u01", category)]
    direct = [local.popular_items(5, "anonymous"), local.popular_items(5, "u01", category)]
    assert [a.item_ids for a in answers] == [d.item_ids for d in direct]
    assert answers[0].item_ids
    assert [r.body for r in wire.requests] == [
        {"recommenderArn": recommender("popular_items"), "userId": "anonymous", "numResults": 5},
        {
            "recommenderArn": recommender("popular_items"),
            "userId": "u01",
            "numResults": 5,
            "filterArn": filter_arn("category"),
            "filterValues": {"CATEGORIES": '"sports"'},
        },
    ]


def test_trending_items_round_trip_through_trending_now(endpoint, wire, local):
    backend = backend_for(endpoint, wire)
    unwatched = FILTERS.resolve("unwatched", {})
    answers = [backend.trending_items(5), backend.trending_items(5, "u01", unwatched)]
    direct = [local.trending_items(5), local.trending_items(5, "u01", unwatched)]
    assert [a.item_ids for a in answers] == [d.item_ids for d in direct]
    assert answers[0].item_ids
    assert [r.body for r in wire.requests] == [
        {"recommenderArn": recommender("trending_items"), "numResults": 5},
        {
            "recommenderArn": recommender("trending_items"),
            "userId": "u01",
            "numResults": 5,
            "filterArn": filter_arn("unwatched"),
        },
    ]


def test_trending_now_refuses_an_interactions_filter_without_a_user(endpoint, wire):
    backend = backend_for(endpoint, wire)
    with pytest.raises(InvalidRequestError) as caught:
        backend.trending_items(5, filter=FILTERS.resolve("unwatched", {}))
    assert caught.value.field == "user_id"  # the input field of trending_items
    assert "userId: is required for filter 'unwatched'" in caught.value.message


def test_ranking_keeps_its_campaign(endpoint, wire, local):
    backend = backend_for(endpoint, wire)
    answer = backend.rerank("u04", ["b1", "a3", "p"])
    assert answer.item_ids == local.rerank("u04", ["b1", "a3", "p"]).item_ids
    assert wire.requests[0].body["campaignArn"] == stand_in_arn(
        DEFAULT_REGION, "campaign", "local-personalized-ranking"
    )


def test_an_unknown_recommender_is_named_by_its_key(endpoint, wire):
    gone = "arn:aws:personalize:us-east-1:000000000000:recommender/deleted"
    arns = {**endpoint.personalize_config(recommenders=True)["recommender_arns"]}
    arns["trending_items"] = gone
    backend = backend_for(endpoint, wire, recommender_arns=arns)
    with pytest.raises(BackendMisconfiguredError) as caught:
        backend.trending_items(2)
    assert f"recommender_arns.trending_items = {gone}" in str(caught.value)
