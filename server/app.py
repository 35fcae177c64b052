"""Building, starting and stopping the gRPC server.

`build_server` wires the parts and binds the port (0 picks a free one, as tests do);
`serve` runs the whole life cycle: listen with health NOT_SERVING, load the backend,
switch to SERVING, then on SIGTERM/SIGINT stop accepting, drain every call already
accepted within the grace period and exit cleanly.

Two behaviours of gRPC core shape this module (grpcio 1.85; grpc/grpc#41785):

- Calls that arrive faster than the event loop takes them wait in a queue inside gRPC
  core (grpc.aio asks core for one call per method at a time). By default core drops
  queued calls at random once more than 1,000 wait (`grpc.server.max_pending_requests`,
  up to the hard limit of 3,000) and its callers see CANCELLED, though no handler ran.
  `server_options` turns that off: excess load is refused by `max_concurrent_rpcs`
  (RESOURCE_EXHAUSTED, before any handler runs) instead.
- `Server.stop(grace)` lets running calls finish but cancels every call still queued in
  core at that instant, and every call that reaches it afterwards on a connection opened
  before (the client has not read the GOAWAY yet): CANCELLED again. So `RunningServer.stop`
  first holds new calls back (they wait before touching the backend, which also keeps their
  callers from sending more) until every call the server accepted is either finished or
  held, and nothing new has arrived for a moment; only then does it stop the gRPC server
  (GOAWAY, listener closed, nothing queued left to cancel) and let the held calls run.
  "Accepted" is gRPC's own count (channelz: calls started minus calls finished), which
  includes the calls queued in core that Python cannot see.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from recs.backends.base import Backend
from recs.backends.errors import BackendError
from recs.config import ConfigError, ServeConfig, ServerSettings
from recs.pipeline.dataset import DatasetError
from recs.server.announce import print_ready
from recs.server.aws_endpoint import AwsEndpoint
from recs.server.aws_protocol import AwsResources, PersonalizeApi
from recs.server.catalog import Catalog
from recs.server.draining import (
    Gate,
    call_counts,
    health_watchers,
    newest_channelz_server,
)
from recs.server.handlers import SERVICE, add_service
from recs.server.metrics import MetricsPortError, ServiceMetrics, start_metrics_server
from recs.server.model_swap import ModelSwapper
from recs.server.request_log import RequestLog, lighten_records
from recs.server.security import (
    SecurityConfigError,
    TokenFile,
    TokenInterceptor,
    server_credentials,
)
from recs.server.servicer import RecommendationServicer

log = logging.getLogger("recs.server")

SERVICE_NAME = SERVICE.full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

# Largest value of an integer channel argument: "no limit" for core's pending-call queue.
UNLIMITED = 2**31 - 1
# Draining: how often gRPC's call counts are read, and how long no call may have started
# or finished before the server is considered quiet (a caller that just got an answer has
# had that long to send its next call, which then waits with the others).
DRAIN_POLL_SECONDS = 0.01
DRAIN_QUIET_SECONDS = 0.1
# Held calls refused at the end of the grace period get this long to send their answer.
REFUSAL_FLUSH_SECONDS = 0.1


def server_options(workers: int) -> list[tuple[str, int]]:
    """gRPC server options shared by the service and the benchmark's baseline server.

    Several worker processes bind the same port only with SO_REUSEPORT; a single process
    keeps it off so that a second server started by mistake fails instead of sharing.
    gRPC core's random early drop of queued calls (CANCELLED, see the module docstring) is
    off: overload is refused by `maximum_concurrent_rpcs` with RESOURCE_EXHAUSTED instead.
    """
    return [
        ("grpc.so_reuseport", 1 if workers > 1 else 0),
        ("grpc.server.max_pending_requests", UNLIMITED),
        ("grpc.server.max_pending_requests_hard_limit", UNLIMITED),
    ]


class BindError(OSError):
    """The server cannot listen on the configured address; the message names it."""


def check_bindable(host: str, port: int, reuse_port: bool = False) -> None:
    """Raise BindError (naming host:port) unless a server could listen on host:port now.

    Checked before anything is loaded, so that a port in use or an address this machine
    does not have ends start-up at once with one line, not after loading a model. gRPC
    binds every address the host resolves to and needs one to succeed; so does this.
    """
    address = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        raise BindError(f"cannot listen on {address}: {_reason(exc)}") from None
    first_error: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if reuse_port:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                probe.bind(sockaddr)
            return
        except OSError as exc:
            first_error = first_error or exc
    reason = _reason(first_error) if first_error else "no address to bind"
    raise BindError(f"cannot listen on {address}: {reason}")


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


@dataclass
class RunningServer:
    """A bound, started server and the parts needed to make it ready and stop it.

    `channelz_id` names the server in gRPC's channelz registry, whose call counts tell how
    many calls gRPC has accepted and not finished (None if channelz is unavailable: the
    server then stops as grpc.aio does, without holding calls back).
    """

    server: aio.Server
    port: int
    servicer: RecommendationServicer
    health: health.aio.HealthServicer
    executor: ThreadPoolExecutor
    request_log: RequestLog
    channelz_id: int | None = None
    metrics: ServiceMetrics | None = None

    async def mark_ready(self, backend: Backend) -> None:
        """Install a started backend and report SERVING."""
        self.servicer.install_backend(backend)
        await self._set_health(SERVING)

    async def stop(self, grace: float | None, release: bool = True) -> None:
        """Report NOT_SERVING, stop accepting, finish every accepted call within `grace`.

        Calls still running when the grace period ends are cancelled and counted in the
        log; calls held back that never reached the backend are refused UNAVAILABLE then.
        """
        await self.health.enter_graceful_shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (grace or 0.0)
        dispatcher = getattr(self.servicer, "dispatcher", None)
        if not grace or self.channelz_id is None or dispatcher is None:
            await self._stop_grpc(deadline)
        else:
            gate = Gate(dispatcher)
            self.servicer.dispatcher = gate  # type: ignore[assignment]
            try:
                quiet = await self._wait_until_quiet(gate, deadline)
            finally:
                self.servicer.dispatcher = dispatcher
            if quiet:
                # gRPC's shutdown (GOAWAY, listener closed) runs first, then the held calls:
                # their callers' next calls find the connection closing and go elsewhere.
                await self._stop_grpc(deadline, then=gate.open)
            else:
                gate.refuse()
                await self._stop_grpc(deadline)
        if release:
            self.release()

    def release(self) -> None:
        """Stop the scoring thread and the backend thread pool (after `stop`, once nothing
        else, such as the AWS-protocol endpoint, still calls the backend)."""
        self.servicer.dispatcher.close()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def _wait_until_quiet(self, gate: Gate, deadline: float) -> bool:
        """Hold calls until every accepted call is held or done and none came for a while.

        True once quiet; False if the grace period (less the moment held calls need to be
        refused) runs out first, or gRPC's call counts cannot be read.
        """
        loop = asyncio.get_running_loop()
        began = loop.time()
        give_up = deadline - min(REFUSAL_FLUSH_SECONDS, (deadline - began) / 4)
        last: tuple[int, int] | None = None
        changed_at = began
        while True:
            counts = self._call_counts()
            if counts is None:
                return False
            now = loop.time()
            if counts != last:
                last, changed_at = counts, now
            unfinished = counts[0] - counts[1] - health_watchers(self.health)
            if unfinished <= gate.waiting and now - changed_at >= DRAIN_QUIET_SECONDS:
                log.info(
                    "drained in %.2fs: %d calls held back, none queued or running; "
                    "closing the listener, then answering them",
                    now - began,
                    gate.waiting,
                )
                return True
            if now >= give_up:
                log.warning(
                    "grace period nearly over, not drained: %d calls held back refused "
                    "(UNAVAILABLE), %d running or queued",
                    gate.waiting,
                    max(0, unfinished - gate.waiting),
                )
                return False
            await asyncio.sleep(DRAIN_POLL_SECONDS)

    async def _stop_grpc(self, deadline: float, then: Callable[[], None] | None = None) -> None:
        """Stop gRPC's server; at `deadline` cancel the calls still running, counting them.

        `then` runs right after gRPC's shutdown call (GOAWAY sent, listener closed).
        """
        loop = asyncio.get_running_loop()
        remaining = max(0.0, deadline - loop.time())
        if remaining == 0:
            self._log_cancelled()
        # Our own timer below ends the grace period (and counts); gRPC's is a backstop.
        stopping = asyncio.ensure_future(self.server.stop(remaining + 1.0 if remaining else 0))
        if then is not None:
            await asyncio.sleep(0)  # `stopping` takes its first step: gRPC's shutdown call
            then()
        if remaining:
            done, _ = await asyncio.wait({stopping}, timeout=remaining)
            if not done:
                self._log_cancelled()
                await self.server.stop(None)  # cancel what still runs, now
        await stopping

    def _log_cancelled(self) -> None:
        counts = self._call_counts()
        unfinished = counts[0] - counts[1] if counts else 0
        if unfinished > 0:
            log.warning("grace period over: calls still in flight cancelled: %d", unfinished)

    def _call_counts(self) -> tuple[int, int] | None:
        """(calls started, calls finished) by this server, from channelz; None if unknown."""
        return None if self.channelz_id is None else call_counts(self.channelz_id)

    async def _set_health(self, status: int) -> None:
        await self.health.set("", status)
        await self.health.set(SERVICE_NAME, status)


@dataclass
class Security:
    """What `[server.tls]` and `[server.auth]` ask for, read from their files."""

    credentials: grpc.ServerCredentials | None = None
    tokens: TokenFile | None = None

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> Security:
        """Read the certificate, key, CA and token files; SecurityConfigError names a bad one."""
        tls, auth = settings.tls, settings.auth
        return cls(
            credentials=(
                server_credentials(tls.cert_file, tls.key_file, tls.client_ca_file) if tls else None
            ),
            tokens=TokenFile(auth.tokens_file) if auth else None,
        )


async def build_server(
    config: ServeConfig, catalog: Catalog | None = None, security: Security | None = None
) -> RunningServer:
    """Create, bind and start the server with health NOT_SERVING and no backend yet.

    Raises BindError (naming host:port) if the address cannot be listened on, and
    SecurityConfigError if a TLS or token file cannot be used.
    """
    settings = config.server
    security = security or Security.from_settings(settings)
    request_log = RequestLog(settings.request_log, settings.request_log_level)
    # Each server its own registry: in multiprocess mode (workers) the values go to the
    # shared directory whatever the registry, and the supervisor serves them.
    metrics = None
    if settings.metrics_port is not None:
        from prometheus_client import CollectorRegistry

        metrics = ServiceMetrics(CollectorRegistry())
    interceptors = []
    if security.tokens is not None:
        interceptors.append(
            TokenInterceptor(security.tokens, _count_unauthenticated(request_log, metrics))
        )
    executor = ThreadPoolExecutor(
        max_workers=settings.backend_threads, thread_name_prefix="backend"
    )
    servicer = RecommendationServicer(catalog or Catalog(), executor)
    server = aio.server(
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        options=server_options(settings.workers),
        interceptors=interceptors,
    )
    channelz_id = newest_channelz_server()  # ours: nothing ran since it was created
    add_service(server, servicer, request_log, metrics)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = f"{settings.host}:{settings.port}"
    try:
        port = (
            server.add_insecure_port(address)
            if security.credentials is None
            else server.add_secure_port(address, security.credentials)
        )
    except RuntimeError:  # grpcio raises this (after logging core's reason) when bind fails
        port = 0
    if port == 0:
        executor.shutdown(wait=False)
        raise BindError(f"cannot listen on {address}")
    await server.start()
    running = RunningServer(
        server, port, servicer, health_servicer, executor, request_log, channelz_id, metrics
    )
    await running._set_health(NOT_SERVING)
    return running


async def serve(
    config: ServeConfig, backend: Backend, on_ready: Callable[[int], None] | None = None
) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status (0 clean, 2 start-up failed).

    Start-up fails (status 2, one log line) when the address cannot be listened on, the
    backend cannot start or the catalog cannot be read.
    `on_ready(port)` is called once the server reports SERVING (worker processes use it to
    tell their supervisor); without it the "ready" line is printed for the operator.
    """
    settings = config.server
    try:
        check_bindable(settings.host, settings.port, reuse_port=settings.workers > 1)
        if settings.aws_port:
            check_bindable(settings.host, settings.aws_port, reuse_port=settings.workers > 1)
        security = Security.from_settings(settings)
        aws_resources = _aws_resources(config) if settings.aws_port is not None else None
    except (BindError, SecurityConfigError, ConfigError) as exc:
        log.error("%s", exc)
        return 2
    lighten_records()
    # The backend loads on a thread while the catalog loads and the port is bound: start-up
    # takes the longer of the two, not their sum.
    loading_since = time.perf_counter()
    starting = asyncio.ensure_future(asyncio.to_thread(backend.start))
    try:
        catalog = Catalog.load(config.catalog)
    except DatasetError as exc:
        log.error("catalog cannot be read: %s", exc)
        await asyncio.gather(starting, return_exceptions=True)  # its thread cannot be stopped
        return 2
    if config.catalog is not None:
        log.info("catalog: %d videos from %s", len(catalog), config.catalog)
    try:
        running = await build_server(config, catalog, security)
    except BindError as exc:  # taken since the check above
        log.error("%s", exc)
        await asyncio.gather(starting, return_exceptions=True)
        return 2
    if running.metrics is not None and settings.workers == 1:  # workers: the supervisor's
        try:
            start_metrics_server(settings.host, settings.metrics_port, running.metrics.registry)
        except MetricsPortError as exc:
            log.error("%s", exc)
            await running.stop(grace=0)
            await asyncio.gather(starting, return_exceptions=True)
            return 2
    log.info(
        "listening on %s:%d (NOT_SERVING until the backend is ready)",
        settings.host,
        running.port,
    )
    aws_endpoint = None
    if aws_resources is not None:
        try:
            aws_endpoint = await start_aws_endpoint(config, aws_resources, running, catalog)
        except OSError as exc:
            log.error(
                "AWS-protocol endpoint: cannot listen on %s:%s (%s)",
                settings.host,
                settings.aws_port,
                _reason(exc),
            )
            await running.stop(grace=0)
            await asyncio.gather(starting, return_exceptions=True)
            return 2
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    swapper = ModelSwapper(config, backend, running.servicer.install_backend, running.metrics)
    loop.add_signal_handler(signal.SIGHUP, swapper.request)

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
    if running.metrics is not None:
        backend.observe_calls(running.metrics.remote_call)
    await running.mark_ready(backend)
    info = backend.info()
    if running.metrics is not None:
        version = info.details.get("model_version", "")
        running.metrics.model_loaded(info.backend, version, time.perf_counter() - loading_since)
    swapper.ready = True
    watching = asyncio.ensure_future(swapper.watch())
    log.info(
        "SERVING with backend %s (%s)",
        info.backend,
        ", ".join(f"{k}={v}" for k, v in list(info.details.items())[:6]),
    )
    if on_ready is not None:
        on_ready(running.port)
    else:
        print_ready(settings.host, running.port, info.backend)

    summaries = asyncio.ensure_future(
        running.request_log.summarise_every(settings.request_log_interval)
    )
    periodic = [summaries]
    if running.metrics is not None:
        periodic.append(asyncio.ensure_future(running.metrics.drain_every()))
    await stop_requested.wait()
    grace = settings.grace_seconds
    log.info("stopping: NOT_SERVING, draining accepted calls for up to %.1fs", grace)
    if aws_endpoint is None:
        await running.stop(grace)
    else:
        await asyncio.gather(running.stop(grace, release=False), aws_endpoint.stop(grace))
        running.release()
    await asyncio.sleep(0)  # let calls cancelled at the end of grace reach the request log
    for task in periodic:
        task.cancel()
    await asyncio.gather(*periodic, return_exceptions=True)  # the last summary and counts
    watching.cancel()
    await swapper.cancel()
    with contextlib.suppress(Exception):
        swapper.backend.close()
    log.info("stopped")
    return 0


def _aws_resources(config: ServeConfig) -> AwsResources:
    """The ARNs the AWS-protocol endpoint answers: `[personalize]`'s, stand-ins for the rest."""
    return AwsResources.from_config(config.personalize_section(), config.filter_set().filters)


async def start_aws_endpoint(
    config: ServeConfig, resources: AwsResources, running: RunningServer, catalog: Catalog
) -> AwsEndpoint:
    """Listen for Personalize's own API on `[server] aws_port`, answering from the servicer's
    dispatcher (looked up per request: draining swaps it); OSError if the port is taken."""
    settings = config.server
    servicer = running.servicer
    api = PersonalizeApi(resources, catalog, lambda: servicer.dispatcher)
    endpoint = AwsEndpoint(api, running.request_log, running.metrics)
    port = await endpoint.start(settings.host, settings.aws_port or 0, settings.workers > 1)
    log.info(
        "AWS-protocol endpoint (personalize-runtime, personalize-events) on http://%s:%d; "
        "it answers: %s",
        settings.host,
        port,
        "; ".join(resources.describe()),
    )
    return endpoint


def _count_unauthenticated(
    request_log: RequestLog, metrics: ServiceMetrics | None
) -> Callable[[str], None]:
    """Record a call refused for want of a token: request log (capped like the rest), metrics."""

    def refused(path: str) -> None:
        method = path.rsplit("/", 1)[-1]
        request_log.failed(method, grpc.StatusCode.UNAUTHENTICATED, 0.0, "no valid bearer token")
        if metrics is not None:
            metrics.refused("unauthenticated")

    return refused
