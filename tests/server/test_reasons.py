"""An item's `reason` (the local engine's exploration picks) crosses gRPC: the encoder writes
it, the client reads it, the CLI prints it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from recs.backends.base import Recommendations
from recs.client import AsyncRecsClient
from recs.server.app import RunningServer, build_server
from recs.server.catalog import Catalog
from recs.server.encoding import ResponseEncoder
from recs.v1 import recommendation_service_pb2 as pb
from tests.server.conftest import CATALOG, make_config
from tests.server.fakes import FakeBackend


class Explaining(FakeBackend):
    def recommend(self, user_id, num_results, filter=None):  # type: ignore[override]
        return Recommendations(
            ["v1", "new", "v2"], [0.5, 0.25, 0.125], "rid", reasons={1: ("Exploration",)}
        )


def test_the_encoder_writes_reasons_protobuf_reads() -> None:
    encoder = ResponseEncoder(CATALOG)
    wire = encoder.encode(["v1", "new", "v2"], [0.5, 0.25, 0.125], "rid", {1: ("Exploration",)})
    response = pb.GetRecommendationsResponse.FromString(wire)
    assert [list(item.reason) for item in response.items] == [[], ["Exploration"], []]
    assert [item.score for item in response.items] == [0.5, 0.25, 0.125]
    assert response.items[0].title == "First video"
    assert response.recommendation_id == "rid"
    plain = ResponseEncoder(Catalog()).encode(["a"], [1.0], "rid")
    assert list(pb.GetRecommendationsResponse.FromString(plain).items[0].reason) == []


@pytest.fixture
async def explaining() -> AsyncIterator[RunningServer]:
    server = await build_server(make_config(grace_seconds=0.5), CATALOG)
    await server.mark_ready(Explaining())
    yield server
    await server.stop(0)


async def test_the_client_reads_each_items_reason(explaining: RunningServer) -> None:
    async with AsyncRecsClient(f"127.0.0.1:{explaining.port}") as client:
        result = await client.recommend("u1", 3)
    assert [item.reason for item in result.items] == [(), ("Exploration",), ()]
