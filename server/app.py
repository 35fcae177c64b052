"""Building, starting and stopping the gRPC server.

`build_server` wires the parts and binds the port (0 picks a free one, as tests do);
`serve` runs the whole life cycle: listen with health NOT_SERVING, load the backend,
switch to SERVING, then on SIGTERM/SIGINT stop accepting, drain in-flight calls within
the grace period and exit cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from recs.backends.base import Backend
from recs.backends.errors import BackendError
from recs.config import ServeConfig
from recs.pipeline.dataset import DatasetError
from recs.server.announce import print_ready
from recs.server.catalog import Catalog
from recs.server.handlers import SERVICE, add_service
from recs.server.request_log import RequestLog, lighten_records
from recs.server.servicer import RecommendationServicer

log = logging.getLogger("recs.server")

SERVICE_NAME = SERVICE.full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def server_options(workers: int) -> list[tuple[str, int]]:
    """gRPC server options shared by the service and the benchmark's baseline server.

    Several worker processes bind the same port only with SO_REUSEPORT; a single process
    keeps it off so that a second server started by mistake fails instead of sharing.
    """
    return [("grpc.so_reuseport", 1 if workers > 1 else 0)]


@dataclass
class RunningServer:
    """A bound, started server and the parts needed to make it ready and stop it."""

    server: aio.Server
    port: int
    servicer: RecommendationServicer
    health: health.aio.HealthServicer
    executor: ThreadPoolExecutor
    request_log: RequestLog

    async def mark_ready(self, backend: Backend) -> None:
        """Install a started backend and report SERVING."""
        self.servicer.install_backend(backend)
        await self._set_health(SERVING)

    async def stop(self, grace: float | None) -> None:
        """Report NOT_SERVING, stop accepting, let in-flight calls finish within `grace`."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        self.servicer.dispatcher.close()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def _set_health(self, status: int) -> None:
        await self.health.set("", status)
        await self.health.set(SERVICE_NAME, status)


async def build_server(config: ServeConfig, catalog: Catalog | None = None) -> RunningServer:
    """Create, bind and start the server with health NOT_SERVING and no backend yet."""
    settings = config.server
    executor = ThreadPoolExecutor(
        max_workers=settings.backend_threads, thread_name_prefix="backend"
    )
    servicer = RecommendationServicer(catalog or Catalog(), executor)
    server = aio.server(
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        options=server_options(settings.workers),
    )
    request_log = RequestLog(settings.request_log, settings.request_log_level)
    add_service(server, servicer, request_log)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    if port == 0:
        raise OSError(f"cannot bind {settings.host}:{settings.port}")
    await server.start()
    running = RunningServer(server, port, servicer, health_servicer, executor, request_log)
    await running._set_health(NOT_SERVING)
    return running


async def serve(
    config: ServeConfig, backend: Backend, on_ready: Callable[[int], None] | None = None
) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status (0 clean, 2 backend or catalog failed).

    `on_ready(port)` is called once the server reports SERVING (worker processes use it to
    tell their supervisor); without it the "ready" line is printed for the operator.
    """
    lighten_records()
    # The backend loads on a thread while the catalog loads and the port is bound: start-up
    # takes the longer of the two, not their sum.
    starting = asyncio.ensure_future(asyncio.to_thread(backend.start))
    try:
        catalog = Catalog.load(config.catalog)
    except DatasetError as exc:
        log.error("catalog cannot be read: %s", exc)
        await asyncio.gather(starting, return_exceptions=True)  # its thread cannot be stopped
        return 2
    if config.catalog is not None:
        log.info("catalog: %d videos from %s", len(catalog), config.catalog)
    running = await build_server(config, catalog)
    log.info(
        "listening on %s:%d (NOT_SERVING until the backend is ready)",
        config.server.host,
        running.port,
    )
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)

    try:
        await starting
    except BackendError as exc:
        log.error("backend %r cannot serve: %s", backend.name, exc)
        await running.stop(grace=0)
        return 2
    except Exception:
        log.exception("backend %r failed to start", backend.name)
        await running.stop(grace=0)
        return 2
    # The model, catalog and id maps live as long as the process: move them out of the
    # garbage collector's sight so that its collections, triggered by every request's
    # short-lived objects, do not keep traversing them (pauses of tens of milliseconds).
    gc.collect()
    gc.freeze()
    await running.mark_ready(backend)
    info = backend.info()
    log.info(
        "SERVING with backend %s (%s)",
        info.backend,
        ", ".join(f"{k}={v}" for k, v in list(info.details.items())[:6]),
    )
    if on_ready is not None:
        on_ready(running.port)
    else:
        print_ready(config.server.host, running.port, info.backend)

    summaries = asyncio.ensure_future(
        running.request_log.summarise_every(config.server.request_log_interval)
    )
    await stop_requested.wait()
    grace = config.server.grace_seconds
    log.info("stopping: draining in-flight calls for up to %.1fs", grace)
    await running.stop(grace)
    summaries.cancel()
    await asyncio.gather(summaries, return_exceptions=True)  # the last summary
    with contextlib.suppress(Exception):
        backend.close()
    log.info("stopped")
    return 0
