"""Filters over the wire: `filter_name` / `filter_values` on the four recommendation RPCs.

A real server on a free loopback port, the local engine trained on the tiny dataset, the
catalog (tests/fixtures/tiny_dataset/items.csv) and a `[filters]` table, all through the
serve config as `recs serve` builds them (`create_configured_backend`). Each filtered answer
is checked against items.csv and the users' histories; a bad filter is INVALID_ARGUMENT
naming the field; scores do not change with the filter.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from grpc import aio

from recs.backends.base import Backend
from recs.backends.filtering import DEFAULT_FILTER_EXPRESSION, DEFAULT_FILTER_NAME
from recs.backends.local.params import TrainParams
from recs.backends.local.train import train
from recs.config import ServeConfig, build_config, create_configured_backend
from recs.server.app import RunningServer, build_server
from recs.server.catalog import Catalog
from recs.v1 import recommendation_service_pb2 as pb
from recs.v1 import recommendation_service_pb2_grpc as pb_grpc
from tests.backends.contract import HISTORY, MODEL_ITEMS, POPULAR_ORDER, TINY_DATASET

ITEMS_CSV = TINY_DATASET / "items.csv"
INVALID = grpc.StatusCode.INVALID_ARGUMENT
ALL = 25  # more than the model's 9 items: every item a filter lets through

FILTERS = {
    "in_categories": "INCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES)",
    "not_categories": "EXCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES)",
    "short": "INCLUDE ItemID WHERE Items.DURATION <= 30",
    "shorter_than": "INCLUDE ItemID WHERE Items.DURATION < $SECONDS",
    "unwatched": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")',
    "same_category": "INCLUDE ItemID WHERE Items.CATEGORIES IN CurrentItem.CATEGORIES",
    # EXCLUDE with its parameter left out: the part is ignored, nothing is filtered.
    "keep_all": "EXCLUDE ItemID WHERE Items.CATEGORIES IN ($SKIP)",
}


def read_catalog() -> dict[str, dict[str, str]]:
    with ITEMS_CSV.open(newline="", encoding="utf-8") as handle:
        return {row["ITEM_ID"]: row for row in csv.DictReader(handle)}


CATALOG_ROWS = read_catalog()


def categories(item: str) -> set[str]:
    row = CATALOG_ROWS.get(item)
    return set(row["CATEGORIES"].split("|")) if row and row["CATEGORIES"] else set()


def duration(item: str) -> float | None:
    row = CATALOG_ROWS.get(item)
    return float(row["DURATION"]) if row and row["DURATION"] else None


def watched(user: str) -> set[str]:
    with (TINY_DATASET / "interactions.csv").open(newline="", encoding="utf-8") as handle:
        return {
            row["ITEM_ID"]
            for row in csv.DictReader(handle)
            if row["USER_ID"] == user and row["EVENT_TYPE"] == "watched"
        }


def short_items(items: set[str], limit: float = 30) -> set[str]:
    return {i for i in items if (d := duration(i)) is not None and d <= limit}


# --- the served engine ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("filters-grpc") / "model"
    train(TINY_DATASET, out, TrainParams(factors=8, iterations=10, random_state=0))
    return out


def serve_config(model: Path, **server: object) -> ServeConfig:
    return build_config(
        {
            "backend": "local",
            "catalog": str(ITEMS_CSV),  # also the catalog Items filters read
            "server": {"host": "127.0.0.1", "port": 0, **server},
            "filters": FILTERS,
            "local": {"model_dir": str(model)},
        }
    )


def started(config: ServeConfig) -> Backend:
    backend = create_configured_backend(config)
    backend.start()
    return backend


@pytest.fixture(scope="module")
def config(model_dir: Path) -> ServeConfig:
    return serve_config(model_dir)


@pytest.fixture(scope="module")
def backend(config: ServeConfig) -> Iterator[Backend]:
    backend = started(config)
    yield backend
    backend.close()


async def running_server(config: ServeConfig, backend: Backend) -> RunningServer:
    server = await build_server(config, Catalog.load(config.catalog))
    await server.mark_ready(backend)
    return server


@pytest.fixture
async def stub(
    config: ServeConfig, backend: Backend
) -> AsyncIterator[pb_grpc.RecommendationServiceStub]:
    server = await running_server(config, backend)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield pb_grpc.RecommendationServiceStub(channel)
    finally:
        await server.stop(0)


def same(score: float):
    """Equal up to rounding: the filtered and unfiltered paths may batch the products
    differently (the contract suite's tolerance)."""
    return pytest.approx(score, rel=1e-9, abs=1e-12)


def ids(answer) -> list[str]:
    return [item.item_id for item in answer.items]


def scores(answer) -> dict[str, float]:
    return {item.item_id: item.score for item in answer.items}


# --- GetRecommendations -----------------------------------------------------------------------


@pytest.mark.parametrize("user", sorted(HISTORY))
async def test_recommendations_without_a_filter_exclude_the_users_history(
    stub: pb_grpc.RecommendationServiceStub, user: str
) -> None:
    answer = await stub.GetRecommendations(
        pb.GetRecommendationsRequest(user_id=user, num_results=ALL), timeout=10
    )
    assert set(ids(answer)) == MODEL_ITEMS - HISTORY[user]


@pytest.mark.parametrize("user", ["u01", "u02", "u04", "u05", "u06", "u08"])
async def test_unwatched_excludes_only_the_watched_items(
    stub: pb_grpc.RecommendationServiceStub, user: str
) -> None:
    answer = await stub.GetRecommendations(
        pb.GetRecommendationsRequest(user_id=user, num_results=ALL, filter_name="unwatched"),
        timeout=10,
    )
    seen_not_watched = HISTORY[user] - watched(user)
    assert seen_not_watched, "each of these users clicked something they did not watch"
    assert set(ids(answer)) == MODEL_ITEMS - watched(user)
    assert seen_not_watched <= set(ids(answer))


async def test_u01_clicked_a3_and_unwatched_gives_it_back(
    stub: pb_grpc.RecommendationServiceStub,
) -> None:
    plain = await stub.GetRecommendations(
        pb.GetRecommendationsRequest(user_id="u01", num_results=ALL), timeout=10
    )
    unwatched = await stub.GetRecommendations(
        pb.GetRecommendationsRequest(user_id="u01", num_results=ALL, filter_name="unwatched"),
        timeout=10,
    )
    assert "a3" not in ids(plain)
    assert "a3" in ids(unwatched)
    assert not {"a1", "a2", "p"} & set(ids(unwatched))


@pytest.mark.parametrize(
    ("written", "wanted"),
    [
        ('"animals"', {"animals"}),
        ('"music"', {"music"}),
        ('"sports", "comedy"', {"sports", "comedy"}),
        ("sports", {"sports"}),  # one bare value
    ],
)
@pytest.mark.parametrize("user", ["u01", "u05", "user-never-seen"])
async def test_recommendations_in_categories(
    stub: pb_grpc.RecommendationServiceStub, user: str, written: str, wanted: set[str]
) -> None:
    request = pb.GetRecommendationsRequest(
        user_id=user,
        num_results=ALL,
        filter_name="in_categories",
        filter_values={"CATEGORIES": written},
    )
    answer = await stub.GetRecommendations(request, timeout=10)
    assert answer.items
    for item in ids(answer):
        assert categories(item) & wanted, f"{item} is not in {wanted}"
    # A named filter replaces the default one: items of the history come back too.
    assert set(ids(answer)) == {i for i in MODEL_ITEMS if categories(i) & wanted}


async def test_recommendations_short(stub: pb_grpc.RecommendationServiceStub) -> None:
    for user in ["u01", "u08", "user-never-seen"]:
        answer = await stub.GetRecommendations(
            pb.GetRecommendationsRequest(user_id=user, num_results=ALL, filter_name="short"),
            timeout=10,
        )
        assert set(ids(answer)) == short_items(MODEL_ITEMS) == {"a3", "b1", "b2", "p"}
        for item in answer.items:  # enriched from the catalog as ever
            assert item.title == CATALOG_ROWS[item.item_id]["TITLE"]


async def test_recommendations_shorter_than_a_number_given_as_a_value(
    stub: pb_grpc.RecommendationServiceStub,
) -> None:
    answer = await stub.GetRecommendations(
        pb.GetRecommendationsRequest(
            user_id="u04",
            num_results=ALL,
            filter_name="shorter_than",
            filter_values={"SECONDS": "20"},
        ),
        timeout=10,
    )
    assert set(ids(answer)) == {"b1", "p"}


async def test_recommendations_not_in_categories_excludes_them(
    stub: pb_grpc.RecommendationServiceStub,
) -> None:
    answer = await stub.GetRecommendations(
        pb.GetRecommendationsRequest(
            user_id="u05",
            num_results=ALL,
            filter_name="not_categories",
            filter_values={"CATEGORIES": '"animals","comedy"'},
        ),
        timeout=10,
    )
    assert set(ids(answer)) == {i for i in MODEL_ITEMS if not categories(i) & {"animals", "comedy"}}


async def test_num_results_cuts_a_filtered_answer(stub: pb_grpc.RecommendationServiceStub) -> None:
    full = await stub.GetRecommendations(
        pb.GetRecommendationsRequest(user_id="u01", num_results=ALL, filter_name="short"),
        timeout=10,
    )
    two = await stub.GetRecommendations(
        pb.GetRecommendationsRequest(user_id="u01", num_results=2, filter_name="short"),
        timeout=10,
    )
    assert ids(two) == ids(full)[:2]


# --- GetSimilarItems --------------------------------------------------------------------------


@pytest.mark.parametrize("item", ["a1", "a3", "b2", "p"])
async def test_similar_items_of_the_same_category(
    stub: pb_grpc.RecommendationServiceStub, item: str
) -> None:
    answer = await stub.GetSimilarItems(
        pb.GetSimilarItemsRequest(item_id=item, num_results=ALL, filter_name="same_category"),
        timeout=10,
    )
    expected = {i for i in MODEL_ITEMS - {item} if categories(i) & categories(item)}
    assert set(ids(answer)) == expected
    for other in ids(answer):
        assert categories(other) & categories(item)


async def test_similar_items_in_categories(stub: pb_grpc.RecommendationServiceStub) -> None:
    answer = await stub.GetSimilarItems(
        pb.GetSimilarItemsRequest(
            item_id="a1",
            num_results=ALL,
            filter_name="in_categories",
            filter_values={"CATEGORIES": '"sports"'},
        ),
        timeout=10,
    )
    assert set(ids(answer)) == {"b1", "b2", "b3"}


async def test_similar_items_short(stub: pb_grpc.RecommendationServiceStub) -> None:
    answer = await stub.GetSimilarItems(
        pb.GetSimilarItemsRequest(item_id="a1", num_results=ALL, filter_name="short"),
        timeout=10,
    )
    assert set(ids(answer)) == short_items(MODEL_ITEMS - {"a1"})


# --- GetPopularItems --------------------------------------------------------------------------


async def test_popular_items_without_a_filter_are_every_item(
    stub: pb_grpc.RecommendationServiceStub,
) -> None:
    answer = await stub.GetPopularItems(
        pb.GetPopularItemsRequest(num_results=ALL, user_id="u01"), timeout=10
    )
    assert ids(answer) == POPULAR_ORDER  # no default filter here: only GetRecommendations


async def test_popular_items_through_filters_keep_the_popular_order(
    stub: pb_grpc.RecommendationServiceStub,
) -> None:
    short = await stub.GetPopularItems(
        pb.GetPopularItemsRequest(num_results=ALL, filter_name="short"), timeout=10
    )
    assert ids(short) == [i for i in POPULAR_ORDER if i in short_items(MODEL_ITEMS)]
    sports = await stub.GetPopularItems(
        pb.GetPopularItemsRequest(
            num_results=ALL, filter_name="in_categories", filter_values={"CATEGORIES": "sports"}
        ),
        timeout=10,
    )
    assert ids(sports) == ["b1", "b2", "b3"]


async def test_popular_items_unwatched_by_the_user(
    stub: pb_grpc.RecommendationServiceStub,
) -> None:
    mine = await stub.GetPopularItems(
        pb.GetPopularItemsRequest(num_results=ALL, user_id="u01", filter_name="unwatched"),
        timeout=10,
    )
    assert ids(mine) == [i for i in POPULAR_ORDER if i not in watched("u01")]
    anyone = await stub.GetPopularItems(
        pb.GetPopularItemsRequest(num_results=ALL, filter_name="unwatched"), timeout=10
    )
    assert ids(anyone) == POPULAR_ORDER  # no user: no interactions to exclude


# --- GetPersonalizedRanking -------------------------------------------------------------------

RERANK = ["b1", "a1", "p", "cold1", "zz-unknown", "a3", "b3"]


async def rerank(
    stub: pb_grpc.RecommendationServiceStub, user: str, name: str = "", **given: str
) -> pb.GetPersonalizedRankingResponse:
    return await stub.GetPersonalizedRanking(
        pb.GetPersonalizedRankingRequest(
            user_id=user, item_ids=RERANK, filter_name=name, filter_values=given
        ),
        timeout=10,
    )


@pytest.mark.parametrize("user", ["u01", "u05", "user-never-seen"])
async def test_rerank_drops_filtered_ids_and_keeps_the_others_order_and_scores(
    stub: pb_grpc.RecommendationServiceStub, user: str
) -> None:
    plain = await rerank(stub, user)
    assert sorted(ids(plain)) == sorted(RERANK)  # no default filter on ranking
    cases = [
        (("in_categories",), {"CATEGORIES": '"sports"'}, lambda i: "sports" in categories(i)),
        (
            ("not_categories",),
            {"CATEGORIES": '"animals","news"'},
            lambda i: not categories(i) & {"animals", "news"},
        ),
        (("short",), {}, lambda i: (d := duration(i)) is not None and d <= 30),
        (("keep_all",), {}, lambda i: True),
    ]
    for (name,), given, keeps in cases:
        filtered = await rerank(stub, user, name, **given)
        assert ids(filtered) == [i for i in ids(plain) if keeps(i)], name
        assert scores(filtered) == {i: s for i, s in scores(plain).items() if keeps(i)}, name


async def test_rerank_unwatched_drops_the_users_watched_ids(
    stub: pb_grpc.RecommendationServiceStub,
) -> None:
    plain = await rerank(stub, "u01")
    filtered = await rerank(stub, "u01", "unwatched")
    assert ids(filtered) == [i for i in ids(plain) if i not in watched("u01")]
    assert {"a1", "p"} & set(ids(plain)) and not {"a1", "p"} & set(ids(filtered))


# --- scores do not depend on the filter ---------------------------------------------------------


@pytest.mark.parametrize("user", [*sorted(HISTORY), "user-never-seen"])
async def test_scores_in_a_filtered_answer_equal_those_in_the_unfiltered_answer(
    stub: pb_grpc.RecommendationServiceStub, user: str
) -> None:
    async def ask(name: str = "", **given: str) -> dict[str, float]:
        answer = await stub.GetRecommendations(
            pb.GetRecommendationsRequest(
                user_id=user, num_results=ALL, filter_name=name, filter_values=given
            ),
            timeout=10,
        )
        return scores(answer)

    default = await ask()  # through exclude_interacted
    everything = await ask("keep_all")
    assert set(everything) == MODEL_ITEMS
    for item, score in default.items():
        assert everything[item] == same(score), item
    for name, given in [
        ("short", {}),
        ("unwatched", {}),
        ("in_categories", {"CATEGORIES": '"animals","sports"'}),
        ("not_categories", {"CATEGORIES": "comedy"}),
        (DEFAULT_FILTER_NAME, {}),
    ]:
        filtered = await ask(name, **given)
        assert filtered, name
        for item, score in filtered.items():
            assert score == same(everything[item]), (name, item)
            if item in default:
                assert score == same(default[item]), (name, item)


async def test_similar_and_popular_scores_do_not_depend_on_the_filter(
    stub: pb_grpc.RecommendationServiceStub,
) -> None:
    popular = scores(await stub.GetPopularItems(pb.GetPopularItemsRequest(num_results=ALL)))
    short = scores(
        await stub.GetPopularItems(pb.GetPopularItemsRequest(num_results=ALL, filter_name="short"))
    )
    assert short and all(popular[i] == s for i, s in short.items())
    similar = scores(
        await stub.GetSimilarItems(pb.GetSimilarItemsRequest(item_id="a1", num_results=ALL))
    )
    same = scores(
        await stub.GetSimilarItems(
            pb.GetSimilarItemsRequest(item_id="a1", num_results=ALL, filter_name="same_category")
        )
    )
    assert same and all(similar[i] == s for i, s in same.items())


# --- refusals: INVALID_ARGUMENT naming the field -------------------------------------------------


async def refused(call, request) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as caught:
        await call(request, timeout=10)
    assert caught.value.code() == INVALID, caught.value.details()
    return caught.value


def each_rpc(stub: pb_grpc.RecommendationServiceStub, **fields: object) -> list:
    """(method, request) for each of the four recommendation RPCs, with `fields`."""
    return [
        (stub.GetRecommendations, pb.GetRecommendationsRequest(user_id="u01", **fields)),
        (stub.GetSimilarItems, pb.GetSimilarItemsRequest(item_id="a1", **fields)),
        (stub.GetPopularItems, pb.GetPopularItemsRequest(user_id="u01", **fields)),
        (
            stub.GetPersonalizedRanking,
            pb.GetPersonalizedRankingRequest(user_id="u01", item_ids=["a1", "b1"], **fields),
        ),
    ]


async def test_an_unknown_filter_is_refused_by_every_rpc(
    stub: pb_grpc.RecommendationServiceStub,
) -> None:
    for call, request in each_rpc(stub, filter_name="no_such_filter"):
        error = await refused(call, request)
        details = error.details()
        assert details.startswith("filter_name: "), details
        assert "'no_such_filter'" in details
        assert "in_categories" in details and "unwatched" in details  # the known names


async def test_a_current_item_filter_is_refused_except_on_similar_items(
    stub: pb_grpc.RecommendationServiceStub,
) -> None:
    for call, request in each_rpc(stub, filter_name="same_category"):
        if call is stub.GetSimilarItems:
            assert (await call(request, timeout=10)).items
            continue
        error = await refused(call, request)
        assert error.details().startswith("filter_name: "), error.details()
        assert "CurrentItem" in error.details()


async def test_a_missing_include_value_is_refused_naming_it(
    stub: pb_grpc.RecommendationServiceStub,
) -> None:
    for given in [{}, {"CATEGORIES": ""}]:
        for call, request in each_rpc(stub, filter_name="in_categories", filter_values=given):
            error = await refused(call, request)
            assert error.details().startswith("filter_values.CATEGORIES: "), error.details()
            assert "required" in error.details()


async def test_values_without_a_filter_name_are_refused(
    stub: pb_grpc.RecommendationServiceStub,
) -> None:
    for call, request in each_rpc(stub, filter_values={"CATEGORIES": '"animals"'}):
        error = await refused(call, request)
        assert error.details().startswith("filter_values: "), error.details()


@pytest.mark.parametrize(
    ("name", "given", "field", "says"),
    [
        (
            "keep_all",
            {f"K{k}": '"x"' for k in range(26)},
            "filter_values",
            "at most 25",
        ),
        (
            "in_categories",
            {"CATEGORIES": "animals", "K" * 51: '"x"'},
            "filter_values." + "K" * 50,
            "1 to 50 characters",
        ),
        (
            "in_categories",
            {"CATEGORIES": "animals", "BAD-KEY": '"x"'},
            "filter_values.BAD-KEY",
            "A-Z, a-z, 0-9 and _",
        ),
        (
            "in_categories",
            {"CATEGORIES": '"' + "x" * 999 + '"'},
            "filter_values.CATEGORIES",
            "longer than 1000",
        ),
        (
            "in_categories",
            {"CATEGORIES": "animals", "GENRE": "jazz"},
            "filter_values.GENRE",
            "has no $GENRE",
        ),
        (
            "in_categories",
            {"CATEGORIES": '"animals","music'},
            "filter_values.CATEGORIES",
            "at character 11",
        ),
        ("shorter_than", {"SECONDS": "half a minute"}, "filter_values.SECONDS", "one number"),
        ("shorter_than", {"SECONDS": '"10","20"'}, "filter_values.SECONDS", "one number"),
    ],
)
async def test_filter_values_beyond_the_limits_are_refused(
    stub: pb_grpc.RecommendationServiceStub,
    name: str,
    given: dict[str, str],
    field: str,
    says: str,
) -> None:
    request = pb.GetRecommendationsRequest(
        user_id="u01", num_results=5, filter_name=name, filter_values=given
    )
    error = await refused(stub.GetRecommendations, request)
    assert error.details().startswith(f"{field}: "), error.details()
    assert says in error.details()


async def test_a_value_of_1000_characters_is_accepted(
    stub: pb_grpc.RecommendationServiceStub,
) -> None:
    head = '"animals","'
    value = head + "x" * (1000 - len(head) - 1) + '"'
    assert len(value) == 1000
    answer = await stub.GetRecommendations(
        pb.GetRecommendationsRequest(
            user_id="u01",
            num_results=ALL,
            filter_name="in_categories",
            filter_values={"CATEGORIES": value},
        ),
        timeout=10,
    )
    assert set(ids(answer)) == {"a1", "a2", "a3"}


# --- GetModelInfo -------------------------------------------------------------------------------


async def test_model_info_lists_the_default_and_every_filter(
    stub: pb_grpc.RecommendationServiceStub,
) -> None:
    info = await stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=10)
    details = dict(info.details)
    assert info.backend == "local"
    assert details["default_filter"] == DEFAULT_FILTER_NAME
    listed = {k.removeprefix("filters."): v for k, v in details.items() if k.startswith("filters.")}
    assert listed == {**FILTERS, DEFAULT_FILTER_NAME: DEFAULT_FILTER_EXPRESSION}
    assert "model_version" in details  # the engine's own details are still there


# --- another default filter ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("default", "excluded"),
    [("unwatched", lambda user: watched(user)), ("", lambda user: set())],
)
async def test_the_configured_default_filter_applies_to_recommendations_without_one(
    model_dir: Path, default: str, excluded
) -> None:
    config = serve_config(model_dir, default_filter=default)
    backend = started(config)
    server = await running_server(config, backend)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.RecommendationServiceStub(channel)
            info = await stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=10)
            assert info.details["default_filter"] == (default or "none")
            for user in ["u01", "u06"]:
                answer = await stub.GetRecommendations(
                    pb.GetRecommendationsRequest(user_id=user, num_results=ALL), timeout=10
                )
                assert set(ids(answer)) == MODEL_ITEMS - excluded(user)
    finally:
        await server.stop(0)
        backend.close()
