"""Prometheus metrics of the service, served on `[server] metrics_port` at /metrics.

With prometheus-client (the Prometheus project's own Python client). One process serves its
own registry. With `--workers N` the supervisor points every worker at one directory
(`PROMETHEUS_MULTIPROC_DIR`, prometheus-client's multiprocess mode) before starting them, and
serves /metrics itself from what all the workers wrote there, so a scrape sees the whole
service, not the one worker it happened to reach.

Every call is counted once by the request guard (`server.handlers`): by method and status
code, with its latency (in the handler: validation, backend, encoding) in a histogram by
method, and the calls in flight as a gauge; with the Personalize backend, its calls to AWS
by operation (latency) and by AWS error code (errors). The model served shows as
`recs_model_info{backend, version} 1` (0 for a model no longer served) with its load time.
The periodic request-log summary stays: metrics are for dashboards and alerts, the log for
reading.

Calls reach prometheus-client through a queue rather than on each call's path: its counters
take a lock per update and a histogram walks its buckets in Python, which cost a cheap call a
twentieth of the service's throughput. The event loop appends (method, code, seconds) and
counts calls in flight in a plain integer; `drain()` moves both into the metrics before every
scrape of the process's own registry and every `DRAIN_SECONDS` (in multiprocess mode the
supervisor reads the workers' files, which are then at most that old).
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Latency buckets (seconds): the service answers in well under a millisecond at rest and in
# tens of milliseconds under saturation; Personalize round trips take tens to hundreds.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
DRAIN_SECONDS = 0.25


@dataclass
class ServiceMetrics:
    """The service's metrics; `registry` None means prometheus-client's default registry."""

    registry: Any = None
    _calls: Any = field(init=False, repr=False)
    _latency: Any = field(init=False, repr=False)
    _children: dict[tuple[str, str], tuple[Any, Any]] = field(init=False, default_factory=dict)
    _model_served: tuple[str, str] | None = field(init=False, default=None)
    # Calls answered but not yet counted: (method, code, seconds), appended by `call`.
    _pending: collections.deque[tuple[str, str, float]] = field(
        init=False, default_factory=collections.deque
    )
    # Calls being handled now, counted by the request guard on the event loop.
    calls_in_flight: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram

        registry = self.registry or REGISTRY
        registry.register(_DrainBeforeScrape(self))  # first: the others then collect fresh
        self._calls = Counter(
            "recs_calls",
            "Calls answered, by RPC method and gRPC status code",
            ["method", "code"],
            registry=registry,
        )
        self._latency = Histogram(
            "recs_call_duration_seconds",
            "Time in the handler (validation, backend, encoding), by RPC method",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._in_flight = Gauge(
            "recs_calls_in_flight",
            "Calls being handled now",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self._model = Gauge(
            "recs_model_info",
            "The model served: 1 for its backend and version",
            ["backend", "version"],
            multiprocess_mode="liveall",
            registry=registry,
        )
        self._refused = Counter(
            "recs_calls_refused",
            "Calls refused before any handler ran, by reason",
            ["reason"],
            registry=registry,
        )
        self._remote_latency = Histogram(
            "recs_personalize_call_duration_seconds",
            "Calls to Personalize's runtime, by operation (each with botocore's retries)",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._remote_errors = Counter(
            "recs_personalize_errors",
            "Failed calls to Personalize's runtime, by operation and AWS error code",
            ["operation", "code"],
            registry=registry,
        )
        self._load_seconds = Gauge(
            "recs_model_load_seconds",
            "Seconds the served model took to load and check",
            multiprocess_mode="liveall",
            registry=registry,
        )

    def call(self, method: str, code: str, seconds: float) -> None:
        """Count one answered call (the hot path: an append; `drain` counts it)."""
        self._pending.append((method, code, seconds))

    def drain(self) -> None:
        """Move the calls answered since the last drain, and the calls in flight, into the
        metrics. Safe from any thread (the queue's appends and pops are atomic)."""
        pending, children = self._pending, self._children
        while pending:
            try:
                method, code, seconds = pending.popleft()
            except IndexError:  # another thread drained the last one
                break
            bound = children.get((method, code))
            if bound is None:
                bound = children[(method, code)] = (
                    self._calls.labels(method, code),
                    self._latency.labels(method),
                )
            bound[0].inc()
            bound[1].observe(seconds)
        self._in_flight.set(self.calls_in_flight)

    async def drain_every(self, interval: float = DRAIN_SECONDS) -> None:
        """`drain()` every `interval` seconds until cancelled (then once more)."""
        try:
            while True:
                await asyncio.sleep(interval)
                self.drain()
        finally:
            self.drain()

    def refused(self, reason: str) -> None:
        """A call refused before any handler ran (e.g. "unauthenticated")."""
        self._refused.labels(reason).inc()

    def remote_call(self, operation: str, seconds: float, code: str) -> None:
        """One call the backend made to Personalize (`Backend.observe_calls`)."""
        self._remote_latency.labels(operation).observe(seconds)
        if code != "OK":
            self._remote_errors.labels(operation, code).inc()

    def model_loaded(self, backend: str, version: str, seconds: float) -> None:
        """Record the model now served; a previous model's series drops to 0.

        (Set to 0 rather than removed: multiprocess mode cannot remove a series.)
        """
        if self._model_served is not None and self._model_served != (backend, version):
            self._model.labels(*self._model_served).set(0)
        self._model_served = (backend, version)
        self._model.labels(backend, version).set(1)
        self._load_seconds.set(seconds)


class _DrainBeforeScrape:
    """A collector with no metrics of its own, registered first: each scrape of the registry
    drains the queued calls before the other collectors are read."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list:
        return []

    def collect(self) -> list:
        self._metrics.drain()
        return []


def prepare_multiprocess_directory() -> str:
    """A fresh directory for the workers' metric files, exported as PROMETHEUS_MULTIPROC_DIR.

    Called by the supervisor before it starts the workers (spawned processes inherit the
    environment and must see it before they import prometheus-client).
    """
    directory = tempfile.mkdtemp(prefix="recs-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    return directory


def remove_multiprocess_directory(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)


class MetricsPortError(OSError):
    """/metrics cannot be served on the configured address; the message names it."""


def start_metrics_server(host: str, port: int, registry: Any = None) -> tuple[Any, int]:
    """Serve /metrics on host:port (a daemon thread); returns (server, bound port).

    Raises MetricsPortError (naming host:port) when the address cannot be listened on.

    In multiprocess mode (PROMETHEUS_MULTIPROC_DIR set) the registry aggregates the files
    of every worker; otherwise it is `registry`, by default this process's default one.
    """
    from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = registry or REGISTRY
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise MetricsPortError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
        ) from None
    return server, server.server_port
