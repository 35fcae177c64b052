"""What draining needs from gRPC: the calls it accepted, and a gate that holds new ones.

`RunningServer.stop` (server/app.py) holds new calls at a `Gate` until every call gRPC has
accepted is finished or held; gRPC's own count of accepted calls comes from channelz (calls
started minus calls finished), which includes the calls queued inside gRPC core that Python
cannot see.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any

from grpc._cython import cygrpc
from grpc_health.v1 import health

from recs.backends.errors import BackendUnavailableError

SHUTTING_DOWN = "the server is shutting down; retry"


class Gate:
    """Stands in for the servicer's dispatcher while the server drains.

    Every backend call waits here until `open` (then it runs) or `refuse` (then it fails
    UNAVAILABLE: no work was done, so the caller may retry elsewhere). The servicer looks
    its dispatcher up on each call, so swapping it costs the hot path nothing.
    """

    def __init__(self, dispatcher: Any) -> None:
        self.dispatcher = dispatcher
        self.waiting = 0
        self._released = asyncio.Event()
        self._refused = False

    def open(self) -> None:
        self._released.set()

    def refuse(self) -> None:
        self._refused = True
        self._released.set()

    async def _wait(self) -> None:
        self.waiting += 1
        try:
            await self._released.wait()
        finally:
            self.waiting -= 1
        if self._refused:
            raise BackendUnavailableError(SHUTTING_DOWN)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.dispatcher, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        async def gated(*args: Any, **kwargs: Any) -> Any:
            await self._wait()
            return await attribute(*args, **kwargs)

        return gated


def health_watchers(health_servicer: health.aio.HealthServicer) -> int:
    """Open Health.Watch streams: they never end by themselves, so draining ignores them."""
    counts = getattr(health_servicer, "_watcher_count_by_service", None) or {}
    return sum(counts.values())


def newest_channelz_server() -> int | None:
    """The id of the most recently created gRPC server in this process (channelz)."""
    newest: int | None = None
    start = 0
    try:
        while True:
            page = json.loads(cygrpc.channelz_get_servers(start))
            servers = page.get("server", [])
            for entry in servers:
                server_id = int(entry["ref"]["serverId"])
                newest = server_id if newest is None else max(newest, server_id)
            if page.get("end", False) or not servers or newest is None:
                return newest
            start = newest + 1
    except Exception:  # without channelz the server still works
        return None


def call_counts(channelz_id: int) -> tuple[int, int] | None:
    """(calls started, calls finished) by the server `channelz_id`; None if unknown."""
    try:
        data = json.loads(cygrpc.channelz_get_server(channelz_id))["server"]["data"]
    except Exception:  # channelz is a diagnostic aid, never fatal here
        return None
    finished = int(data.get("callsSucceeded", 0)) + int(data.get("callsFailed", 0))
    return int(data.get("callsStarted", 0)), finished
