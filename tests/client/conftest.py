"""Client tests reuse the server tests' real server with a fake backend, and a recording
server (tests/client/recording.py) to see exactly what a caller sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.client.recording import RecordingServicer, recording_server
from tests.server.conftest import fake_backend, running, target  # noqa: F401


@pytest.fixture
def recording() -> Iterator[RecordingServicer]:
    """A server that records the requests it gets; `recording.target` is its address."""
    with recording_server() as servicer:
        yield servicer
