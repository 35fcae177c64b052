"""PutEvents (and PutItems) over the wire, against the local engine.

A real server on a free loopback port serving a model trained on the tiny dataset, its event
store in a temporary state dir, built from a serve config as `recs serve` builds it. An
accepted PutEvents is stored, then reflected in GetRecommendations within a second; a bad
request is INVALID_ARGUMENT naming the field, refused before anything is stored; PutItems is
FAILED_PRECONDITION on the local engine for now.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio

from recs.backends.base import Backend
from recs.backends.local.backend import LocalBackend
from recs.backends.local.params import TrainParams
from recs.backends.local.train import train
from recs.config import ServeConfig, build_config, create_configured_backend
from recs.server.app import RunningServer, build_server
from recs.server.catalog import Catalog
from recs.v1 import recommendation_service_pb2 as pb
from recs.v1 import recommendation_service_pb2_grpc as pb_grpc
from tests.backends.contract import BEST_NEXT, POPULAR_ORDER, TINY_DATASET

INVALID = grpc.StatusCode.INVALID_ARGUMENT
ALL = 25
REFLECTED_WITHIN = 1.0  # seconds


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("put-events") / "model"
    train(TINY_DATASET, out, TrainParams(factors=8, iterations=15, random_state=0))
    return out


@pytest.fixture
def config(model_dir: Path, tmp_path: Path) -> ServeConfig:
    return build_config(
        {
            "backend": "local",
            "catalog": str(TINY_DATASET / "items.csv"),
            "server": {"host": "127.0.0.1", "port": 0},
            "local": {"model_dir": str(model_dir), "state_dir": str(tmp_path / "state")},
            "filters": {"music": 'INCLUDE ItemID WHERE Items.CATEGORIES IN ("music")'},
        }
    )


@pytest.fixture
def backend(config: ServeConfig) -> Iterator[Backend]:
    backend = create_configured_backend(config)
    backend.start()
    yield backend
    backend.close()


@pytest.fixture
async def stub(
    config: ServeConfig, backend: Backend
) -> AsyncIterator[pb_grpc.RecommendationServiceStub]:
    server: RunningServer = await build_server(config, Catalog.load(config.catalog))
    await server.mark_ready(backend)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield pb_grpc.RecommendationServiceStub(channel)
    finally:
        await server.stop(0)


def sent_at(seconds: float | None = None) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int((time.time() if seconds is None else seconds) * 1e9))
    return stamp


def event(item: str = "a3", event_type: str = "watched", **fields: object) -> pb.Event:
    return pb.Event(
        event_type=event_type, item_id=item, sent_at=fields.pop("sent_at", sent_at()), **fields
    )


def stored(backend: Backend) -> list:
    assert isinstance(backend, LocalBackend)
    store = backend._store
    assert store is not None
    return store.events_after(0)


async def recommended(stub: pb_grpc.RecommendationServiceStub, user: str) -> list[str]:
    answer = await stub.GetRecommendations(
        pb.GetRecommendationsRequest(user_id=user, num_results=ALL), timeout=10
    )
    return [item.item_id for item in answer.items]


async def eventually_without(
    stub: pb_grpc.RecommendationServiceStub, user: str, item: str
) -> list[str]:
    """The user's recommendations once `item` has left them, within REFLECTED_WITHIN."""
    deadline = time.monotonic() + REFLECTED_WITHIN
    while True:
        items = await recommended(stub, user)
        if item not in items:
            return items
        assert time.monotonic() < deadline, f"{item} still recommended to {user}: {items}"
        await asyncio.sleep(0.01)


# --- accepted ------------------------------------------------------------------------------------


async def test_put_events_then_recommendations_reflect_them(
    stub: pb_grpc.RecommendationServiceStub, backend: Backend
) -> None:
    user = "u04"
    assert (await recommended(stub, user))[0] == BEST_NEXT[user]

    response = await stub.PutEvents(
        pb.PutEventsRequest(user_id=user, session_id="s-1", events=[event("a3")]), timeout=10
    )
    assert response == pb.PutEventsResponse()
    assert [row.event.item_id for row in stored(backend)] == ["a3"]  # durable before OK

    items = await eventually_without(stub, user, "a3")
    assert items and set(items).isdisjoint({"a1", "a2", "a3"})


async def test_an_anonymous_session_is_answered_from_its_events(
    stub: pb_grpc.RecommendationServiceStub,
) -> None:
    session = "anonymous-visit-1"
    assert await recommended(stub, session) == POPULAR_ORDER

    await stub.PutEvents(pb.PutEventsRequest(session_id=session, events=[event("b1")]), timeout=10)

    items = await eventually_without(stub, session, "b1")
    assert items[0] in {"b2", "b3"}  # co-watched with b1


async def test_every_field_reaches_the_store(
    stub: pb_grpc.RecommendationServiceStub, backend: Backend
) -> None:
    full = pb.Event(
        event_id="e-1",
        event_type="watched",
        event_value=0.0,  # set to zero: not the same as absent
        item_id="a3",
        sent_at=sent_at(1_700_100_000.5),
        recommendation_id="r" * 40,
        impression=[f"i{k}" for k in range(25)],
    )
    bare = event("b1", "clicked", sent_at=sent_at(1_700_100_001))
    await stub.PutEvents(
        pb.PutEventsRequest(user_id="u" * 256, session_id="s" * 256, events=[full, bare]),
        timeout=10,
    )
    first, second = stored(backend)
    assert (first.user_id, first.session_id) == ("u" * 256, "s" * 256)
    assert first.event.event_id == "e-1"
    assert first.event.event_value == 0.0
    assert first.event.sent_at == pytest.approx(1_700_100_000.5)
    assert first.event.recommendation_id == "r" * 40
    assert first.event.impression == tuple(f"i{k}" for k in range(25))
    assert second.event.event_value is None
    assert (second.event.event_type, second.event.item_id) == ("clicked", "b1")


async def test_ten_events_are_accepted(
    stub: pb_grpc.RecommendationServiceStub, backend: Backend
) -> None:
    events = [event(item) for item in ["b1", "b2"] * 5]
    await stub.PutEvents(pb.PutEventsRequest(session_id="s", events=events), timeout=10)
    assert len(stored(backend)) == 10


async def test_an_event_on_an_unknown_item_is_accepted(
    stub: pb_grpc.RecommendationServiceStub, backend: Backend
) -> None:
    await stub.PutEvents(
        pb.PutEventsRequest(user_id="u01", session_id="s", events=[event("brand-new-video")]),
        timeout=10,
    )
    assert [row.event.item_id for row in stored(backend)] == ["brand-new-video"]
    assert await recommended(stub, "u01")  # still answers


# --- refused -------------------------------------------------------------------------------------


def too_many(k: int) -> list[pb.Event]:
    return [event(f"i{j}") for j in range(k)]


REFUSALS = {
    "no session_id": (
        pb.PutEventsRequest(user_id="u01", events=[event()]),
        "session_id: is required",
    ),
    "no events": (
        pb.PutEventsRequest(user_id="u01", session_id="s"),
        "events: must hold 1 to 10 events",
    ),
    "11 events": (
        pb.PutEventsRequest(user_id="u01", session_id="s", events=too_many(11)),
        "events: must hold 1 to 10 events",
    ),
    "no event_type": (
        pb.PutEventsRequest(session_id="s", events=[event(), event(event_type="")]),
        "events[1].event_type: is required",
    ),
    "no item_id": (
        pb.PutEventsRequest(session_id="s", events=[event(), event(), event(item="")]),
        "events[2].item_id: is required",
    ),
    "no sent_at": (
        pb.PutEventsRequest(
            session_id="s", events=[event(), pb.Event(event_type="watched", item_id="a1")]
        ),
        "events[1].sent_at: is required",
    ),
    "sent_at at the epoch": (
        pb.PutEventsRequest(session_id="s", events=[event(sent_at=Timestamp())]),
        "events[0].sent_at: is required",
    ),
    "recommendation_id of 41": (
        pb.PutEventsRequest(session_id="s", events=[event(recommendation_id="r" * 41)]),
        "events[0].recommendation_id: is longer than 40 characters",
    ),
    "26 impressions": (
        pb.PutEventsRequest(
            session_id="s", events=[event(impression=[f"i{k}" for k in range(26)])]
        ),
        "events[0].impression: holds more than 25 ids",
    ),
    "an empty impression id": (
        pb.PutEventsRequest(session_id="s", events=[event(impression=["a1", ""])]),
        "events[0].impression[1]: is required",
    ),
    "user_id of 257": (
        pb.PutEventsRequest(user_id="u" * 257, session_id="s", events=[event()]),
        "user_id: is longer than 256 characters",
    ),
    "session_id of 257": (
        pb.PutEventsRequest(session_id="s" * 257, events=[event()]),
        "session_id: is longer than 256 characters",
    ),
    "item_id of 257": (
        pb.PutEventsRequest(session_id="s", events=[event(item="i" * 257)]),
        "events[0].item_id: is longer than 256 characters",
    ),
    "event_id of 257": (
        pb.PutEventsRequest(session_id="s", events=[event(event_id="e" * 257)]),
        "events[0].event_id: is longer than 256 characters",
    ),
    "event_value not a number": (
        pb.PutEventsRequest(session_id="s", events=[event(event_value=float("nan"))]),
        "events[0].event_value: must be a finite number",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
async def test_a_bad_request_is_invalid_argument_naming_the_field(
    stub: pb_grpc.RecommendationServiceStub, backend: Backend, case: str
) -> None:
    request, details = REFUSALS[case]
    with pytest.raises(aio.AioRpcError) as caught:
        await stub.PutEvents(request, timeout=10)
    assert caught.value.code() == INVALID, caught.value.details()
    assert caught.value.details() == details
    assert stored(backend) == []  # refused before any work


# --- PutItems ------------------------------------------------------------------------------------


async def music(stub: pb_grpc.RecommendationServiceStub, user: str) -> list[pb.RecommendedItem]:
    answer = await stub.GetRecommendations(
        pb.GetRecommendationsRequest(user_id=user, num_results=25, filter_name="music"),
        timeout=10,
    )
    return list(answer.items)


async def test_put_items_joins_filters_and_enrichment_within_a_second(
    stub: pb_grpc.RecommendationServiceStub, backend: Backend, config: ServeConfig
) -> None:
    """b1 (sports) becomes sports|music with a new title: u08's "music" answer gains it,
    enriched with what PutItems said; a video the model does not know is enriched too."""
    assert "b1" not in [i.item_id for i in await music(stub, "u08")]
    request = pb.PutItemsRequest(
        items=[
            pb.CatalogItem(
                item_id="b1",
                title="Bicycle kick, with music",
                url="https://videos.example/b1.mp4",
                properties={"CATEGORIES": "sports|music", "DURATION": "18"},
            ),
            pb.CatalogItem(item_id="brand-new", title="Uploaded a minute ago"),
        ]
    )
    await stub.PutItems(request, timeout=10)
    deadline = time.monotonic() + 1.0
    while "b1" not in [i.item_id for i in await music(stub, "u08")]:
        assert time.monotonic() < deadline, "PutItems not visible to filters within 1 s"
        await asyncio.sleep(0.02)
    b1 = next(i for i in await music(stub, "u08") if i.item_id == "b1")
    assert (b1.title, b1.url) == ("Bicycle kick, with music", "https://videos.example/b1.mp4")
    assert b1.metadata["categories"] == "sports|music"
    ranked = await stub.GetPersonalizedRanking(
        pb.GetPersonalizedRankingRequest(user_id="u08", item_ids=["b3", "brand-new"]), timeout=10
    )
    new = next(i for i in ranked.items if i.item_id == "brand-new")
    assert new.title == "Uploaded a minute ago" and new.score == 0.0

    restarted = create_configured_backend(config)  # the items are stored: a restart has them
    restarted.start()
    try:
        seen: list = []
        restarted.observe_items(seen.extend)
        assert {item.item_id for item in seen} == {"b1", "brand-new"}
    finally:
        restarted.close()


async def test_a_bad_put_items_request_is_still_invalid_argument(
    stub: pb_grpc.RecommendationServiceStub,
) -> None:
    with pytest.raises(aio.AioRpcError) as caught:
        await stub.PutItems(pb.PutItemsRequest(), timeout=10)
    assert caught.value.code() == INVALID
    assert caught.value.details() == "items: must hold 1 to 10 items"
