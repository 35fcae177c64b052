"""`fallback = "local"`: while Personalize is down (breaker open), the local engine answers.

A real server on a real port, a Personalize backend whose endpoint refuses connections, and
the local engine trained on the tiny dataset behind it. The answer says who gave it in
trailing metadata (`x-recs-served-by`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc import aio

from recs.backends.local.params import TrainParams
from recs.backends.local.train import train
from recs.config import ConfigError, build_config, create_configured_backend
from recs.server.app import RunningServer, build_server
from recs.v1 import recommendation_service_pb2 as pb
from recs.v1 import recommendation_service_pb2_grpc as pb_grpc
from tests.aws import fake_aws_environment  # noqa: F401  (no way to reach AWS)
from tests.backends.contract import TINY_DATASET
from tests.backends.personalize.runtime_helpers import (
    ACCOUNT_ARN,
    CAMPAIGNS,
    UNREACHABLE_ENDPOINT,
)


@pytest.fixture(scope="module")
def local_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fallback") / "model"
    train(TINY_DATASET, out, TrainParams(factors=4, iterations=3))
    return out


def personalize_config(model: Path, **personalize: object):
    return build_config(
        {
            "backend": "personalize",
            "server": {"host": "127.0.0.1", "port": 0},
            "personalize": {
                "region": "us-east-1",
                "endpoint_url": UNREACHABLE_ENDPOINT,
                "max_attempts": 1,
                "breaker_failures": 1,
                **CAMPAIGNS,
                "filter_arns": {"exclude_interacted": f"{ACCOUNT_ARN}:filter/videos-unwatched"},
                **personalize,
            },
            "local": {"model_dir": str(model)},
        }
    )


@pytest.fixture
async def server(local_model: Path) -> AsyncIterator[RunningServer]:
    config = personalize_config(local_model, fallback="local")
    backend = create_configured_backend(config)
    backend.start()
    running = await build_server(config)
    await running.mark_ready(backend)
    yield running
    await running.stop(0)
    backend.close()


async def test_the_local_engine_answers_while_personalize_is_down(server: RunningServer) -> None:
    async with aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)
        request = pb.GetRecommendationsRequest(user_id="u01", num_results=3)
        with pytest.raises(aio.AioRpcError) as down:  # the failure that opens the breaker
            await stub.GetRecommendations(request, timeout=10)
        assert down.value.code() is grpc.StatusCode.UNAVAILABLE
        call = stub.GetRecommendations(request, timeout=10)
        answer = await call
        assert len(answer.items) == 3
        assert ("x-recs-served-by", "local") in tuple(await call.trailing_metadata())
        ranked = stub.GetPersonalizedRanking(
            pb.GetPersonalizedRankingRequest(user_id="u01", item_ids=["a1", "p", "zz"]), timeout=10
        )
        assert sorted(i.item_id for i in (await ranked).items) == ["a1", "p", "zz"]
        assert ("x-recs-served-by", "local") in tuple(await ranked.trailing_metadata())


def test_a_fallback_needs_a_local_section(local_model: Path) -> None:
    config = build_config(
        {"backend": "personalize", "personalize": {"fallback": "local", **CAMPAIGNS}}
    )
    with pytest.raises(ConfigError, match=r'fallback = "local" needs a \[local\] section'):
        create_configured_backend(config)
