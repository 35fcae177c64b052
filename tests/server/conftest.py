"""A real gRPC server on a free loopback port, serving a fake backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from recs.config import build_config
from recs.server.app import RunningServer, build_server
from recs.server.catalog import Catalog, CatalogEntry
from recs.server.dispatch import BackendDispatcher
from tests.server.fakes import FakeBackend


def make_config(**server: object):
    return build_config({"server": {"host": "127.0.0.1", "port": 0, **server}})


CATALOG = Catalog(
    {
        "v1": CatalogEntry("First video", "https://b.s3.amazonaws.com/shortVideos/v1.mp4"),
        "v2": CatalogEntry("Second video", "https://b.s3.amazonaws.com/shortVideos/v2.mp4"),
    }
)


@pytest.fixture
async def fake_backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
async def running(fake_backend: FakeBackend) -> AsyncIterator[RunningServer]:
    server = await build_server(make_config(grace_seconds=0.5), CATALOG)
    await server.mark_ready(fake_backend)
    yield server
    await server.stop(0)


@pytest.fixture
def target(running: RunningServer) -> str:
    return f"127.0.0.1:{running.port}"


@pytest.fixture
def root() -> Path:
    return Path(__file__).resolve().parents[2]


@pytest.fixture
def dispatcher() -> Iterator[BackendDispatcher]:
    """A dispatcher with no backend installed yet, closed after the test."""
    executor = ThreadPoolExecutor(max_workers=1)
    dispatcher = BackendDispatcher(executor)
    yield dispatcher
    dispatcher.close()
    executor.shutdown()
