"""The AWS-protocol endpoint driven by real AWS clients: what boto3 parses of every answer.

The product's endpoint (`server.aws_endpoint` over `server.aws_protocol`) serves the local
engine trained on the tiny dataset (tests/fixtures/tiny_dataset, whose right answers are
known), its event store in a temporary state dir, on a background event loop
(tests/aws_endpoint.py). Every request goes through boto3's own serialization and every
answer through botocore's own parser: the assertions are on what an unchanged boto3
program sees (parsed members, `ClientError.response["Error"]["Code"]`, the HTTP status).
Requests that boto3 would refuse before sending (a required member left out, a list
below its minimum) are sent by clients with `parameter_validation=False`, so that the
endpoint's own checks answer them; bodies no AWS SDK would send go over plain HTTP and
their answer is still parsed by botocore's rest-json parser.

Recommendation answers are compared with the engine's own answers, asked directly.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.awsrequest import HeadersDict
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import create_parser

from recs.backends.base import Backend, Recommendations
from recs.backends.filtering import DEFAULT_FILTER_NAME, UNFILTERED
from recs.backends.local.backend import LocalBackend
from recs.backends.local.params import TrainParams
from recs.backends.local.train import train
from recs.config import build_config, create_configured_backend
from recs.server.app import build_server, start_aws_endpoint
from recs.server.aws_protocol import STAND_IN_ACCOUNT, AwsResources, stand_in_arn
from recs.server.catalog import Catalog
from tests.aws_endpoint import EndpointThread
from tests.backends.contract import CO_WATCHED, HISTORY, POPULAR_ORDER, TINY_DATASET
from tests.server.fakes import FakeBackend

ACCOUNT = "arn:aws:personalize:us-east-1:123456789012"
UP = f"{ACCOUNT}:campaign/videos-user-personalization"
SIMS = f"{ACCOUNT}:campaign/videos-sims"
POPULAR = f"{ACCOUNT}:campaign/videos-popularity"
# Not in [personalize]: answered under its stand-in ARN (account 000000000000).
RANKING = stand_in_arn("us-east-1", "campaign", "local-personalized-ranking")
CATEGORY = f"{ACCOUNT}:filter/videos-category"
EXCLUDE_INTERACTED = f"{ACCOUNT}:filter/videos-exclude-interacted"
UNWATCHED = stand_in_arn("us-east-1", "filter", "local-unwatched")
TRACKING_ID = "videos-event-tracker"
ITEMS_DATASET = f"{ACCOUNT}:dataset/videos/ITEMS"
USERS_DATASET = stand_in_arn("us-east-1", "dataset", "local/USERS")
UNKNOWN_CAMPAIGN = f"{ACCOUNT}:campaign/no-such-campaign"
UNKNOWN_FILTER = f"{ACCOUNT}:filter/no-such-filter"

PERSONALIZE: dict[str, Any] = {
    "region": "us-east-1",
    "user_personalization_campaign_arn": UP,
    "similar_items_campaign_arn": SIMS,
    "popularity_campaign_arn": POPULAR,
    "filter_arns": {"category": CATEGORY, DEFAULT_FILTER_NAME: EXCLUDE_INTERACTED},
    "event_tracking_id": TRACKING_ID,
    "items_dataset_arn": ITEMS_DATASET,
}
FILTERS = {
    "category": "INCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES)",
    "unwatched": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")',
}
ALL = 25
APPLIED_WITHIN = 5.0  # seconds, a generous bound: waits only, nothing is timed
CREDENTIALS = {
    "region_name": "us-east-1",
    "aws_access_key_id": "x",
    "aws_secret_access_key": "y",
}
ONE_ATTEMPT = Config(retries={"max_attempts": 1})
UNCHECKED = Config(retries={"max_attempts": 1}, parameter_validation=False)


def catalog_rows() -> dict[str, dict[str, str]]:
    with (TINY_DATASET / "items.csv").open(newline="", encoding="utf-8") as f:
        return {row["ITEM_ID"]: row for row in csv.DictReader(f)}


CATALOG_ROWS = catalog_rows()


# --- the endpoint over the engine ----------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("aws-endpoint") / "model"
    train(TINY_DATASET, out, TrainParams(factors=8, iterations=15, random_state=0))
    return out


@pytest.fixture(scope="module")
def backend(model_dir: Path) -> Iterator[LocalBackend]:
    config = build_config(
        {
            "backend": "local",
            "catalog": str(TINY_DATASET / "items.csv"),
            "local": {"model_dir": str(model_dir), "state_dir": str(model_dir.parent / "state")},
            "filters": FILTERS,
        }
    )
    engine = create_configured_backend(config)
    engine.start()
    assert isinstance(engine, LocalBackend)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def endpoint(backend: Backend) -> Iterator[EndpointThread]:
    with EndpointThread(backend, PERSONALIZE, Catalog.load(TINY_DATASET / "items.csv")) as running:
        yield running


def client(service: str, endpoint: EndpointThread, config: Config = ONE_ATTEMPT) -> Any:
    return boto3.client(service, endpoint_url=endpoint.endpoint_url, config=config, **CREDENTIALS)


@pytest.fixture(scope="module")
def runtime(endpoint: EndpointThread) -> Any:
    return client("personalize-runtime", endpoint)


@pytest.fixture(scope="module")
def events(endpoint: EndpointThread) -> Any:
    return client("personalize-events", endpoint)


@pytest.fixture(scope="module")
def unchecked(endpoint: EndpointThread) -> dict[str, Any]:
    """Clients that send whatever they are given: the endpoint's checks answer."""
    return {
        "runtime": client("personalize-runtime", endpoint, UNCHECKED),
        "events": client("personalize-events", endpoint, UNCHECKED),
    }


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["itemId"] for item in items]


def refused(work: Callable[[], object]) -> tuple[str, int, str]:
    """(error code, HTTP status, message) of the ClientError `work` raises."""
    with pytest.raises(ClientError) as caught:
        work()
    response = caught.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def event(item: str, event_type: str = "watched", **members: Any) -> dict[str, Any]:
    return {"eventType": event_type, "itemId": item, "sentAt": time.time(), **members}


def wait_applied(backend: LocalBackend, subject: str, count: int) -> None:
    deadline = time.monotonic() + APPLIED_WITHIN
    while backend.events_applied(subject) < count:
        assert time.monotonic() < deadline, f"{subject}: events not applied"
        time.sleep(0.01)


def test_the_resources_are_the_configured_arns_and_stand_ins_for_the_rest(
    endpoint: EndpointThread,
) -> None:
    resources = endpoint.resources
    # (subset: a recipe added later gets a stand-in ARN of its own)
    assert (
        resources.campaigns.items()
        >= {
            UP: "user-personalization",
            SIMS: "sims",
            POPULAR: "popularity-count",
            RANKING: "personalized-ranking",
        }.items()
    )
    assert all(
        arn.startswith(f"arn:aws:personalize:us-east-1:{STAND_IN_ACCOUNT}:campaign/local-")
        for arn in resources.campaigns.keys() - {UP, SIMS, POPULAR}
    )
    assert resources.filters == {
        CATEGORY: "category",
        EXCLUDE_INTERACTED: DEFAULT_FILTER_NAME,
        UNWATCHED: "unwatched",
    }
    assert resources.tracking_ids == {TRACKING_ID}
    assert resources.items_dataset_arns == {ITEMS_DATASET}
    assert resources.users_dataset_arns == {USERS_DATASET}
    described = resources.describe()  # the start-up log's lines
    assert f"campaign user-personalization: {UP}" in described
    assert f"filter unwatched: {UNWATCHED}" in described


# --- GetRecommendations and GetPersonalizedRanking: what they answer ------------------------------


def test_user_personalization_answers_the_engines_items_with_scores(
    runtime: Any, backend: LocalBackend
) -> None:
    answer = runtime.get_recommendations(campaignArn=UP, userId="u04", numResults=5)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    items = answer["itemList"]
    expected = backend.recommend("u04", 5, UNFILTERED)
    assert ids(items) == expected.item_ids
    assert [item["score"] for item in items] == pytest.approx(list(expected.scores))
    assert all(set(item) == {"itemId", "score"} for item in items)
    assert answer["recommendationId"]
    again = runtime.get_recommendations(campaignArn=UP, userId="u04", numResults=5)
    assert again["recommendationId"] != answer["recommendationId"]


def test_num_results_defaults_to_25(runtime: Any) -> None:
    # The tiny model knows 9 items: all of them, every one scored.
    for members in ({}, {"numResults": 0}):
        answer = runtime.get_recommendations(campaignArn=UP, userId="u04", **members)
        assert len(answer["itemList"]) == 9


def test_without_a_filter_arn_nothing_is_filtered_not_even_what_the_user_watched(
    runtime: Any,
) -> None:
    # Unlike gRPC's GetRecommendations, whose default filter drops what the user interacted
    # with: a Personalize request without filterArn is unfiltered.
    unfiltered = runtime.get_recommendations(campaignArn=UP, userId="u01", numResults=ALL)
    watched = HISTORY["u01"]
    assert watched <= set(ids(unfiltered["itemList"]))
    assert unfiltered["itemList"][0]["itemId"] in watched  # the model ranks one of them first

    filtered = runtime.get_recommendations(
        campaignArn=UP, userId="u01", numResults=ALL, filterArn=EXCLUDE_INTERACTED
    )
    assert filtered["itemList"] == [
        item for item in unfiltered["itemList"] if item["itemId"] not in watched
    ]


def test_a_filter_arn_applies_its_filter_with_the_values_given(runtime: Any) -> None:
    sports = {"CATEGORIES": '"sports"'}
    answer = runtime.get_recommendations(
        campaignArn=UP, userId="u04", numResults=ALL, filterArn=CATEGORY, filterValues=sports
    )
    assert set(ids(answer["itemList"])) == {"b1", "b2", "b3"}

    similar = runtime.get_recommendations(
        campaignArn=SIMS,
        itemId="a1",
        numResults=ALL,
        filterArn=CATEGORY,
        filterValues={"CATEGORIES": '"music","comedy"'},
    )
    assert set(ids(similar["itemList"])) == {"a3", "p"}

    popular = runtime.get_recommendations(
        campaignArn=POPULAR,
        numResults=ALL,
        filterArn=CATEGORY,
        filterValues={"CATEGORIES": '"animals"'},
    )
    assert ids(popular["itemList"]) == [i for i in POPULAR_ORDER if i in {"a1", "a2", "a3"}]

    # An EXCLUDE filter on interactions, under its stand-in ARN: u01 watched a1, a2 and p,
    # and only clicked a3.
    unwatched = runtime.get_recommendations(
        campaignArn=UP, userId="u01", numResults=ALL, filterArn=UNWATCHED
    )
    assert {"a1", "a2", "p"}.isdisjoint(ids(unwatched["itemList"]))
    assert "a3" in ids(unwatched["itemList"])

    ranked = runtime.get_personalized_ranking(
        campaignArn=RANKING,
        userId="u04",
        inputList=["b1", "a3", "p", "a1"],
        filterArn=CATEGORY,
        filterValues={"CATEGORIES": '"animals"'},
    )
    assert set(ids(ranked["personalizedRanking"])) == {"a3", "a1"}


def test_similar_items_and_popularity_answer_item_ids_without_scores(runtime: Any) -> None:
    similar = runtime.get_recommendations(campaignArn=SIMS, itemId="a1", numResults=5)
    assert set(ids(similar["itemList"][:2])) == CO_WATCHED["a1"]
    assert "a1" not in ids(similar["itemList"])
    assert all(set(item) == {"itemId"} for item in similar["itemList"])
    assert similar["recommendationId"]

    popular = runtime.get_recommendations(campaignArn=POPULAR, numResults=5)
    assert ids(popular["itemList"]) == POPULAR_ORDER[:5]
    assert all(set(item) == {"itemId"} for item in popular["itemList"])
    assert popular["recommendationId"]
    # userId is optional for popularity; given, it is accepted
    with_user = runtime.get_recommendations(campaignArn=POPULAR, userId="u01", numResults=5)
    assert ids(with_user["itemList"]) == POPULAR_ORDER[:5]


def test_metadata_columns_answer_the_catalogs_values(runtime: Any) -> None:
    columns = {"ITEMS": ["TITLE", "CATEGORIES"]}
    similar = runtime.get_recommendations(
        campaignArn=SIMS, itemId="a1", numResults=5, metadataColumns=columns
    )
    for item in similar["itemList"]:
        row = CATALOG_ROWS[item["itemId"]]
        assert item["metadata"] == {"TITLE": row["TITLE"], "CATEGORIES": row["CATEGORIES"]}

    # u09's items orphan1 and orphan2 are not in the catalog: no value to answer.
    answer = runtime.get_recommendations(
        campaignArn=UP, userId="u09", numResults=50, metadataColumns=columns
    )
    assert {"orphan1", "orphan2"} <= set(ids(answer["itemList"]))
    for item in answer["itemList"]:
        assert "score" in item
        row = CATALOG_ROWS.get(item["itemId"])
        expected = {"TITLE": row["TITLE"], "CATEGORIES": row["CATEGORIES"]} if row else {}
        assert item.get("metadata", {}) == expected

    ranked = runtime.get_personalized_ranking(
        campaignArn=RANKING,
        userId="u04",
        inputList=["a1", "b2"],
        metadataColumns={"ITEMS": ["TITLE"]},
    )
    assert {i["itemId"]: i["metadata"] for i in ranked["personalizedRanking"]} == {
        "a1": {"TITLE": CATALOG_ROWS["a1"]["TITLE"]},
        "b2": {"TITLE": CATALOG_ROWS["b2"]["TITLE"]},
    }


def test_personalized_ranking_appends_unknown_items_without_a_score(
    runtime: Any, backend: LocalBackend
) -> None:
    answer = runtime.get_personalized_ranking(
        campaignArn=RANKING,
        userId="u04",
        inputList=["b1", "never-seen", "a3", "cold1", "a1"],
    )
    ranking = answer["personalizedRanking"]
    known = backend.rerank("u04", ["b1", "a3", "a1"])
    assert ids(ranking) == [*known.item_ids, "never-seen", "cold1"]
    assert [item["score"] for item in ranking[:3]] == pytest.approx(list(known.scores))
    assert all("score" not in item for item in ranking[3:])
    assert answer["recommendationId"]


def test_a_promotion_takes_its_share_rounded_up_marked_with_its_name(runtime: Any) -> None:
    unfiltered = ids(runtime.get_recommendations(campaignArn=UP, userId="u04")["itemList"])
    promotion = {
        "name": "sports-week",
        "percentPromotedItems": 30,  # of 4: 1.2, rounded up to 2
        "filterArn": CATEGORY,
        "filterValues": {"CATEGORIES": '"sports"'},
    }
    answer = runtime.get_recommendations(
        campaignArn=UP, userId="u04", numResults=4, promotions=[promotion]
    )
    items = answer["itemList"]
    assert len(items) == 4
    promoted = [item for item in items if "promotionName" in item]
    assert [item["promotionName"] for item in promoted] == ["sports-week"] * 2
    assert {item["itemId"] for item in promoted} <= {"b1", "b2", "b3"}
    assert all("score" in item for item in items)
    # The rest is the request's own answer, in its order, without the promoted items.
    rest = [item["itemId"] for item in items if "promotionName" not in item]
    promoted_ids = {item["itemId"] for item in promoted}
    assert rest == [i for i in unfiltered if i not in promoted_ids][:2]
    # spread through the answer, not appended
    assert [n for n, item in enumerate(items) if "promotionName" in item] == [0, 2]

    # 1% of 3 is still one item; a promoted item the answer holds anyway is not repeated.
    small = {**promotion, "percentPromotedItems": 1}
    answer = runtime.get_recommendations(
        campaignArn=UP, userId="u08", numResults=3, promotions=[small]
    )
    items = answer["itemList"]
    assert len(items) == 3
    assert len(set(ids(items))) == 3
    assert sum("promotionName" in item for item in items) == 1


# --- PutEvents, PutItems, PutUsers ---------------------------------------------------------------


def test_put_events_reach_the_engine_and_its_filters(
    runtime: Any, events: Any, backend: LocalBackend
) -> None:
    user = "aws-new-viewer"
    shown = runtime.get_recommendations(campaignArn=UP, userId=user, numResults=5)
    before = len(backend._store.events_after(0, limit=100_000))  # type: ignore[union-attr]
    answer = events.put_events(
        trackingId=TRACKING_ID,
        userId=user,
        sessionId="aws-session-1",
        eventList=[
            event(
                "a1",
                eventId="aws-e1",
                eventValue=0.75,
                recommendationId=shown["recommendationId"],
                impression=ids(shown["itemList"]),
                properties=json.dumps({"device": "tv"}),
            ),
            event("a2", "clicked", eventId="aws-e2"),
        ],
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert set(answer) == {"ResponseMetadata"}

    stored = backend._store.events_after(0, limit=100_000)[before:]  # type: ignore[union-attr]
    assert [(e.user_id, e.session_id, e.event.event_id) for e in stored] == [
        (user, "aws-session-1", "aws-e1"),
        (user, "aws-session-1", "aws-e2"),
    ]
    first = stored[0].event
    assert (first.event_type, first.item_id, first.event_value) == ("watched", "a1", 0.75)
    assert first.recommendation_id == shown["recommendationId"]
    assert list(first.impression) == ids(shown["itemList"])
    assert abs(first.sent_at - time.time()) < 60

    wait_applied(backend, user, 2)
    filtered = runtime.get_recommendations(
        campaignArn=UP, userId=user, numResults=ALL, filterArn=EXCLUDE_INTERACTED
    )
    assert {"a1", "a2"}.isdisjoint(ids(filtered["itemList"]))
    unwatched = runtime.get_recommendations(
        campaignArn=UP, userId=user, numResults=ALL, filterArn=UNWATCHED
    )
    assert "a1" not in ids(unwatched["itemList"])  # watched
    assert "a2" in ids(unwatched["itemList"])  # only clicked


def test_put_events_of_an_anonymous_session_are_accepted(
    events: Any, backend: LocalBackend
) -> None:
    answer = events.put_events(
        trackingId=TRACKING_ID, sessionId="aws-anonymous-1", eventList=[event("b1")]
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    wait_applied(backend, "aws-anonymous-1", 1)


def test_put_items_are_stored_and_put_users_acknowledged(
    events: Any, backend: LocalBackend
) -> None:
    properties = {"title": "A new video", "categories": "news|music", "creationTimestamp": 1}
    answer = events.put_items(
        datasetArn=ITEMS_DATASET,
        items=[{"itemId": "aws-new-item", "properties": json.dumps(properties)}],
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    stored = {s.item.item_id: s.item for s in backend._store.items_after(0)}  # type: ignore[union-attr]
    item = stored["aws-new-item"]
    assert item.title == "A new video"
    assert dict(item.properties) == {"CATEGORIES": "news|music", "CREATION_TIMESTAMP": "1"}

    answer = events.put_users(
        datasetArn=USERS_DATASET,
        users=[{"userId": "u01", "properties": json.dumps({"membership": "gold"})}],
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200


# --- errors: the code botocore raises and the HTTP status ----------------------------------------


def case(service: str, method: str, expected: str, **members: Any) -> Any:
    """One request refused: (service, method, members, what its message starts with)."""
    return pytest.param(service, method, members, expected, id=f"{method}:{expected}")


def recommendations(expected: str, **members: Any) -> Any:
    return case("runtime", "get_recommendations", expected, **members)


def ranking(expected: str, **members: Any) -> Any:
    return case("runtime", "get_personalized_ranking", expected, **members)


def put_events(expected: str, **members: Any) -> Any:
    return case("events", "put_events", expected, **members)


def put_items(expected: str, **members: Any) -> Any:
    return case("events", "put_items", expected, **members)


def put_users(expected: str, **members: Any) -> Any:
    return case("events", "put_users", expected, **members)


def many(n: int, prefix: str = "i") -> list[str]:
    return [f"{prefix}{k}" for k in range(n)]


# The message names the unknown resource.
NOT_FOUND = [
    recommendations(UNKNOWN_CAMPAIGN, campaignArn=UNKNOWN_CAMPAIGN, userId="u01"),
    ranking(UNKNOWN_CAMPAIGN, campaignArn=UNKNOWN_CAMPAIGN, userId="u01", inputList=["a1"]),
    recommendations(
        f"{ACCOUNT}:recommender/videos", recommenderArn=f"{ACCOUNT}:recommender/videos", userId="u"
    ),
    recommendations(UNKNOWN_FILTER, campaignArn=UP, userId="u01", filterArn=UNKNOWN_FILTER),
    ranking(
        UNKNOWN_FILTER,
        campaignArn=RANKING,
        userId="u01",
        inputList=["a1"],
        filterArn=UNKNOWN_FILTER,
    ),
    recommendations(
        UNKNOWN_FILTER,
        campaignArn=UP,
        userId="u01",
        promotions=[{"name": "p", "percentPromotedItems": 10, "filterArn": UNKNOWN_FILTER}],
    ),
    put_events(
        "no-such-tracker", trackingId="no-such-tracker", sessionId="s", eventList=[event("a1")]
    ),
    put_items(
        f"{ACCOUNT}:dataset/other/ITEMS",
        datasetArn=f"{ACCOUNT}:dataset/other/ITEMS",
        items=[{"itemId": "x"}],
    ),
    put_items(USERS_DATASET, datasetArn=USERS_DATASET, items=[{"itemId": "x"}]),
    put_users(ITEMS_DATASET, datasetArn=ITEMS_DATASET, users=[{"userId": "x"}]),
]


@pytest.mark.parametrize(("service", "method", "members", "named"), NOT_FOUND)
def test_an_unknown_resource_is_resource_not_found_404(
    unchecked: dict[str, Any], service: str, method: str, members: dict[str, Any], named: str
) -> None:
    code, status, message = refused(lambda: getattr(unchecked[service], method)(**members))
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert named in message


def test_the_stand_in_arn_of_a_configured_campaign_is_not_answered(runtime: Any) -> None:
    stand_in = stand_in_arn("us-east-1", "campaign", "local-user-personalization")
    code, status, _ = refused(lambda: runtime.get_recommendations(campaignArn=stand_in, userId="u"))
    assert (code, status) == ("ResourceNotFoundException", 404)


COLUMNS = {"ITEMS": ["TITLE"]}
PROMOTION = {"name": "promo", "percentPromotedItems": 10, "filterArn": UNWATCHED}
TRACKER = {"trackingId": TRACKING_ID, "sessionId": "s"}
INVALID = [
    # GetRecommendations: the member each recipe needs; limits
    recommendations("userId: is required", campaignArn=UP),
    recommendations("itemId: is required", campaignArn=SIMS, userId="u01"),
    recommendations(
        "a PERSONALIZED_RANKING campaign answers GetPersonalizedRanking",
        campaignArn=RANKING,
        userId="u01",
    ),
    recommendations("campaignArn: is required", userId="u01"),
    recommendations("numResults: must be 0 to 500", campaignArn=UP, userId="u", numResults=501),
    recommendations("numResults: must be 0 to 500", campaignArn=UP, userId="u", numResults=-1),
    recommendations(
        "numResults: must be 0 to 50 when metadataColumns is given",
        campaignArn=UP,
        userId="u",
        numResults=51,
        metadataColumns=COLUMNS,
    ),
    recommendations("userId: must be 1 to 256", campaignArn=UP, userId="u" * 257),
    recommendations(
        "metadataColumns", campaignArn=UP, userId="u", metadataColumns={"USERS": ["X"]}
    ),
    recommendations("context.bad key", campaignArn=UP, userId="u", context={"bad key": "x"}),
    # filters
    recommendations(
        "filterValues: given without a filterArn",
        campaignArn=UP,
        userId="u",
        filterValues={"CATEGORIES": '"news"'},
    ),
    recommendations(
        "filterValues: holds 26 keys",
        campaignArn=UP,
        userId="u",
        filterArn=CATEGORY,
        filterValues={f"K{k}": '"x"' for k in range(26)},
    ),
    recommendations(
        "filterValues.CATEGORIES: is required",
        campaignArn=UP,
        userId="u",
        filterArn=CATEGORY,
    ),
    recommendations(
        "filterValues.NOPE",
        campaignArn=UP,
        userId="u",
        filterArn=CATEGORY,
        filterValues={"NOPE": '"x"'},
    ),
    recommendations(
        "promotions[0].filterValues.NOPE",
        campaignArn=UP,
        userId="u",
        promotions=[{**PROMOTION, "filterArn": CATEGORY, "filterValues": {"NOPE": "x"}}],
    ),
    # promotions
    recommendations(
        "promotions: at most 1 promotion",
        campaignArn=UP,
        userId="u",
        promotions=[PROMOTION, {**PROMOTION, "name": "other"}],
    ),
    recommendations(
        "promotions[0].percentPromotedItems",
        campaignArn=UP,
        userId="u",
        promotions=[{**PROMOTION, "percentPromotedItems": 0}],
    ),
    recommendations(
        "promotions[0].name", campaignArn=UP, userId="u", promotions=[{**PROMOTION, "name": "-p"}]
    ),
    recommendations(
        "promotions[0].filterArn: is required",
        campaignArn=UP,
        userId="u",
        promotions=[{"name": "p", "percentPromotedItems": 5}],
    ),
    # GetPersonalizedRanking
    ranking(
        "GetPersonalizedRanking needs a PERSONALIZED_RANKING campaign",
        campaignArn=UP,
        userId="u01",
        inputList=["a1"],
    ),
    ranking("userId: is required", campaignArn=RANKING, inputList=["a1"]),
    ranking(
        "inputList: must hold 1 to 500 item ids", campaignArn=RANKING, userId="u", inputList=[]
    ),
    ranking(
        "inputList: must hold 1 to 500 item ids",
        campaignArn=RANKING,
        userId="u",
        inputList=many(501),
    ),
    ranking(
        "inputList: must hold 1 to 50 item ids when metadataColumns is given",
        campaignArn=RANKING,
        userId="u",
        inputList=many(51),
        metadataColumns=COLUMNS,
    ),
    ranking("inputList[1]", campaignArn=RANKING, userId="u", inputList=["a1", ""]),
    # PutEvents
    put_events("eventList: must hold 1 to 10 events", **TRACKER, eventList=[]),
    put_events(
        "eventList: must hold 1 to 10 events", **TRACKER, eventList=[event(i) for i in many(11)]
    ),
    put_events("sessionId: is required", trackingId=TRACKING_ID, eventList=[event("a1")]),
    put_events("trackingId: is required", sessionId="s", eventList=[event("a1")]),
    put_events(
        "eventList[0].eventType: is required",
        **TRACKER,
        eventList=[{"itemId": "a1", "sentAt": 1.0}],
    ),
    put_events(
        "eventList[1].itemId: is required",
        **TRACKER,
        eventList=[event("a1"), {"eventType": "watched", "sentAt": 1.0}],
    ),
    put_events(
        "eventList[0].sentAt: is required",
        **TRACKER,
        eventList=[{"eventType": "watched", "itemId": "a1"}],
    ),
    put_events(
        "eventList[0].properties: Error parsing properties json",
        **TRACKER,
        eventList=[event("a1", properties="{not json")],
    ),
    put_events("eventList[0].impression", **TRACKER, eventList=[event("a1", impression=many(26))]),
    put_events(
        "eventList[0].recommendationId",
        **TRACKER,
        eventList=[event("a1", recommendationId="r" * 41)],
    ),
    # PutItems, PutUsers
    put_items("items: must hold 1 to 10 items", datasetArn=ITEMS_DATASET, items=[]),
    put_items(
        "items: must hold 1 to 10 items",
        datasetArn=ITEMS_DATASET,
        items=[{"itemId": i} for i in many(11)],
    ),
    put_items(
        "items[0].itemId: is required", datasetArn=ITEMS_DATASET, items=[{"properties": "{}"}]
    ),
    put_items(
        "items[0].properties: Error parsing properties json",
        datasetArn=ITEMS_DATASET,
        items=[{"itemId": "x", "properties": '["not", "an object"]'}],
    ),
    put_items("datasetArn: is required", items=[{"itemId": "x"}]),
    put_users(
        "users[0].userId: is required", datasetArn=USERS_DATASET, users=[{"properties": "{}"}]
    ),
    put_users(
        "users[0].properties: Error parsing properties json",
        datasetArn=USERS_DATASET,
        users=[{"userId": "x", "properties": "nope"}],
    ),
]


@pytest.mark.parametrize(("service", "method", "members", "message"), INVALID)
def test_a_bad_request_is_invalid_input_400_naming_the_member(
    unchecked: dict[str, Any], service: str, method: str, members: dict[str, Any], message: str
) -> None:
    code, status, answered = refused(lambda: getattr(unchecked[service], method)(**members))
    assert (code, status) == ("InvalidInputException", 400)
    assert answered.startswith(message), answered


def test_a_refused_put_events_stores_none_of_its_events(
    unchecked: dict[str, Any], backend: LocalBackend
) -> None:
    store = backend._store
    assert store is not None
    before = len(store.events_after(0, limit=100_000))
    code, _, _ = refused(
        lambda: unchecked["events"].put_events(
            trackingId=TRACKING_ID,
            userId="aws-refused",
            sessionId="s",
            eventList=[event("a1"), event("a2"), {"eventType": "watched", "sentAt": 1.0}],
        )
    )
    assert code == "InvalidInputException"
    assert len(store.events_after(0, limit=100_000)) == before


# --- what no AWS SDK sends, parsed by botocore all the same --------------------------------------


@functools.cache
def recommendations_output_shape() -> Any:
    model = botocore.session.get_session().get_service_model("personalize-runtime")
    return model.operation_model("GetRecommendations").output_shape


def post_raw(
    endpoint: EndpointThread, path: str, body: bytes, method: str = "POST"
) -> tuple[int, dict[str, Any]]:
    """Send `body` as is; (status, the answer as botocore's rest-json parser reads it)."""
    request = urllib.request.Request(
        endpoint.endpoint_url + path,
        data=body if method == "POST" else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status, headers, payload = answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        status, headers, payload = error.code, error.headers, error.read()
    parsed = create_parser("rest-json").parse(
        {"status_code": status, "headers": HeadersDict(dict(headers)), "body": payload},
        recommendations_output_shape(),
    )
    return status, parsed


@pytest.mark.parametrize("body", [b"not json", b'{"campaignArn": ', b'["a list"]', b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_serialization_exception_400(
    endpoint: EndpointThread, body: bytes
) -> None:
    status, parsed = post_raw(endpoint, "/recommendations", body)
    assert status == 400
    assert parsed["Error"]["Code"] == "SerializationException"


def test_an_unknown_path_is_unknown_operation_404(endpoint: EndpointThread) -> None:
    status, parsed = post_raw(endpoint, "/action-recommendations", b"{}")
    assert (status, parsed["Error"]["Code"]) == (404, "UnknownOperationException")
    assert "/action-recommendations" in parsed["Error"]["Message"]
    status, parsed = post_raw(endpoint, "/recommendations", b"", method="GET")
    assert (status, parsed["Error"]["Code"]) == (405, "UnknownOperationException")


def test_an_empty_body_is_a_request_without_members(endpoint: EndpointThread) -> None:
    status, parsed = post_raw(endpoint, "/recommendations", b"")
    assert (status, parsed["Error"]["Code"]) == (400, "InvalidInputException")
    assert parsed["Error"]["Message"].startswith("campaignArn: is required")


# --- while the model loads; under concurrent load -------------------------------------------------


async def test_a_request_while_the_model_loads_is_service_unavailable_503(
    backend: LocalBackend,
) -> None:
    """The product's wiring (`build_server`, `start_aws_endpoint`) before `mark_ready`."""
    config = build_config(
        {"server": {"host": "127.0.0.1", "port": 0, "aws_port": 0}, "filters": FILTERS}
    )
    resources = AwsResources.from_config(PERSONALIZE, config.filter_set().filters)
    running = await build_server(config)
    aws = await start_aws_endpoint(config, resources, running, Catalog())
    url = f"http://127.0.0.1:{aws.port}"
    # botocore retries a 503 (with backoff): one attempt only, to see it
    loading = boto3.client(
        "personalize-runtime", endpoint_url=url, config=ONE_ATTEMPT, **CREDENTIALS
    )
    try:
        for work in (
            lambda: loading.get_recommendations(campaignArn=UP, userId="u04"),
            lambda: loading.get_recommendations(
                campaignArn=UP, userId="u04", filterArn=EXCLUDE_INTERACTED
            ),
            lambda: loading.get_personalized_ranking(
                campaignArn=RANKING, userId="u04", inputList=["a1"]
            ),
        ):
            code, status, message = await asyncio.to_thread(refused, work)
            assert (code, status) == ("ServiceUnavailableException", 503)
            assert "loading" in message

        await running.mark_ready(backend)  # the same endpoint answers from now on
        answer = await asyncio.to_thread(
            loading.get_recommendations, campaignArn=UP, userId="u04", numResults=3
        )
        assert ids(answer["itemList"]) == backend.recommend("u04", 3, UNFILTERED).item_ids
    finally:
        await asyncio.gather(running.stop(0), aws.stop(0))


def test_fifty_concurrent_requests_are_all_answered(
    endpoint: EndpointThread, backend: LocalBackend
) -> None:
    config = Config(retries={"max_attempts": 1}, max_pool_connections=50)
    shared_runtime = client("personalize-runtime", endpoint, config)
    shared_events = client("personalize-events", endpoint, config)
    users = sorted(HISTORY)
    start = threading.Barrier(50)

    def one(k: int) -> tuple[int, list[str]]:
        start.wait(timeout=10)
        user = users[k % len(users)]
        kind = k % 5
        if kind == 0:
            answer = shared_runtime.get_recommendations(campaignArn=UP, userId=user, numResults=5)
        elif kind == 1:
            answer = shared_runtime.get_recommendations(campaignArn=SIMS, itemId="a1", numResults=3)
        elif kind == 2:
            answer = shared_runtime.get_recommendations(campaignArn=POPULAR, numResults=3)
        elif kind == 3:
            answer = shared_runtime.get_personalized_ranking(
                campaignArn=RANKING, userId=user, inputList=["a1", "b1", "p"]
            )
        else:
            answer = shared_events.put_events(
                trackingId=TRACKING_ID,
                userId=f"aws-load-{k}",
                sessionId=f"aws-load-{k}",
                eventList=[event("p", eventId=f"aws-load-{k}")],
            )
        items = answer.get("itemList") or answer.get("personalizedRanking") or []
        return answer["ResponseMetadata"]["HTTPStatusCode"], ids(items)

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(one, range(50)))
    assert [status for status, _ in answers] == [200] * 50
    for k, (_, items) in enumerate(answers):
        if k % 5 == 0:  # the same answer as the engine's, batched with the others or not
            assert items == backend.recommend(users[k % len(users)], 5, UNFILTERED).item_ids
        elif k % 5 == 2:
            assert items == POPULAR_ORDER[:3]


def test_an_exploration_pick_carries_its_reason() -> None:
    """A backend answer with reasons (the local engine's exploration) reaches botocore as
    PredictedItem.reason."""

    class Explaining(FakeBackend):
        def recommend(self, user_id, num_results, filter=None):  # type: ignore[override]
            return Recommendations(
                ["a", "new", "b"], [0.5, 0.2, 0.1], "rid", reasons={1: ("Exploration",)}
            )

    with EndpointThread(Explaining()) as endpoint:
        config = endpoint.personalize_config()
        runtime = boto3.client(
            "personalize-runtime",
            endpoint_url=endpoint.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="y",
        )
        answer = runtime.get_recommendations(
            campaignArn=config["user_personalization_campaign_arn"], userId="u1", numResults=3
        )
    assert [item.get("reason") for item in answer["itemList"]] == [None, ["Exploration"], None]
