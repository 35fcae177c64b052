"""Real gRPC services for the page's tests: the local engine on the tiny dataset, and a stub.

Each service runs its own asyncio loop in a thread, because the page (AppTest or a
Streamlit process) calls it with the blocking client from other threads.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from recs.backends.base import Backend, ModelInfo, Recommendations
from recs.backends.local.backend import LocalBackend
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model
from recs.config import build_config
from recs.pipeline.dataset import read_interactions, read_items
from recs.server.app import RunningServer, build_server
from recs.server.catalog import Catalog
from tests.client.recording import RecordingServicer, recording_server

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
TINY_DATASET = ROOT / "tests" / "fixtures" / "tiny_dataset"
ARTIFACTS = ROOT / "test-artifacts"

# Small and fast, still enough to learn the tiny dataset's two groups of users.
FAST_PARAMS = TrainParams(factors=8, iterations=10, random_state=0)


class ServiceThread:
    """A real gRPC server serving `backend` on 127.0.0.1, on its own loop in a thread."""

    def __init__(self, backend: Backend, catalog: Catalog, port: int = 0) -> None:
        self.backend = backend
        self.catalog = catalog
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._running: RunningServer | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ServiceThread:
        self._thread.start()
        self._running = self._call(self._serve())
        self.port = self._running.port
        return self

    def stop(self) -> None:
        if self._running is not None:
            self._call(self._running.stop(0))
            self._running = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    async def _serve(self) -> RunningServer:
        config = build_config(
            {"server": {"host": "127.0.0.1", "port": self.port, "grace_seconds": 0}}
        )
        running = await build_server(config, self.catalog)
        await running.mark_ready(self.backend)
        return running

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=60)


class FixedBackend(Backend):
    """Answers every question with the same ids (a second service to compare with); trending
    with them reversed, so a view asking the wrong call shows.

    With `reasons` (by item id), recommend, similar, popular and rerank say why those items
    are there, as the local engine does for its exploration picks.
    """

    name = "fixed"
    config_model = BaseModel

    def __init__(
        self, item_ids: Sequence[str], reasons: Mapping[str, tuple[str, ...]] | None = None
    ) -> None:
        self.item_ids = list(item_ids)
        self.reasons = dict(reasons or {})

    def _explained(self, ids: list[str], scores: list[float], rid: str) -> Recommendations:
        reasons = {k: self.reasons[i] for k, i in enumerate(ids) if i in self.reasons}
        return Recommendations(ids, scores, rid, reasons=reasons or None)

    def _answer(self, num_results: int) -> Recommendations:
        ids = self.item_ids[:num_results]
        return self._explained(ids, [1.0 / (k + 1) for k in range(len(ids))], "fixed")

    def info(self) -> ModelInfo:
        return ModelInfo("fixed", {"trained_at": "never", "params.ids": str(len(self.item_ids))})

    def recommend(self, user_id: str, num_results: int, filter=None) -> Recommendations:
        return self._answer(num_results)

    def similar_items(
        self, item_id: str, num_results: int, filter=None, user_id=None
    ) -> Recommendations:
        return self._answer(num_results)

    def popular_items(
        self, num_results: int, user_id: str | None = None, filter=None
    ) -> Recommendations:
        return self._answer(num_results)

    def rerank(self, user_id: str, item_ids: Sequence[str], filter=None) -> Recommendations:
        ids = list(dict.fromkeys(item_ids))
        return self._explained(ids, [0.0] * len(ids), "fixed")

    def trending_items(
        self, num_results: int, user_id: str | None = None, filter=None
    ) -> Recommendations:
        ids = self.item_ids[::-1][:num_results]
        return Recommendations(ids, [1.0 / (k + 1) for k in range(len(ids))], "fixed-trending")


class UntrendingBackend(FixedBackend):
    """A FixedBackend without a trending recipe: Backend's own FAILED_PRECONDITION."""

    name = "untrending"

    def trending_items(
        self, num_results: int, user_id: str | None = None, filter=None
    ) -> Recommendations:
        return Backend.trending_items(self, num_results, user_id, filter)


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_catalog() -> Catalog:
    return Catalog.load(TINY_DATASET / "items.csv")


@pytest.fixture(scope="session")
def tiny_backend() -> LocalBackend:
    model = fit_model(read_interactions(TINY_DATASET), FAST_PARAMS, read_items(TINY_DATASET))
    return LocalBackend.from_model(model)


@pytest.fixture(scope="session")
def service(tiny_backend: LocalBackend, tiny_catalog: Catalog) -> Iterator[ServiceThread]:
    """The local engine trained on the tiny dataset, behind a real gRPC server."""
    running = ServiceThread(tiny_backend, tiny_catalog).start()
    yield running
    running.stop()


@pytest.fixture
def recording() -> Iterator[RecordingServicer]:
    """A service that only records what it is asked (one video per answer): what the page sent."""
    with recording_server() as servicer:
        yield servicer


@pytest.fixture(scope="session")
def fixed_service(tiny_catalog: Catalog) -> Iterator[ServiceThread]:
    """A second service whose answers share some videos with the local engine's."""
    running = ServiceThread(FixedBackend(["b1", "a1", "cold1", "zz"]), tiny_catalog).start()
    yield running
    running.stop()


EXPLORED = "cold1"  # the exploring service's new video, its only item with a reason


@pytest.fixture(scope="session")
def exploring_service(tiny_catalog: Catalog) -> Iterator[ServiceThread]:
    """A service that mixes a new video into its answers, marked `("Exploration",)` as the
    local engine's exploration picks are; the other videos carry no reason."""
    backend = FixedBackend(["b1", EXPLORED, "a1", "zz"], reasons={EXPLORED: ("Exploration",)})
    running = ServiceThread(backend, tiny_catalog).start()
    yield running
    running.stop()
