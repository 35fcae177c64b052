"""`recs serve --workers N`: N server processes answering on one port.

A Python process runs one event loop on one core at a time, so using every core takes
several processes. Each worker is spawned (not forked: gRPC's core does not survive a
fork), builds its own backend and its own grpc.aio server bound with SO_REUSEPORT; the
kernel spreads incoming connections over the workers. The local backend memory-maps the
model files, so the factor matrices' pages are shared by all workers, not copied.

The supervisor (the process running `recs serve`) loads no model. It reserves the port
(so `--port 0` works and no other program takes it meanwhile), starts the workers, prints
the ready line once every worker reports SERVING, forwards SIGTERM/SIGINT to them and
exits 0 when they all stopped cleanly. If a worker dies on its own, the others are
stopped and its exit status is returned (2 if it had none), so a supervisor such as
systemd sees the failure instead of a service running on fewer cores.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from recs.server.announce import print_ready

if TYPE_CHECKING:
    from recs.config import ServeConfig

log = logging.getLogger("recs.server")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[worker {index}]: %(message)s"


class AddressError(OSError):
    """The address cannot be listened on; the message names host:port and why."""


def reserve_port(host: str, port: int) -> socket.socket:
    """A SO_REUSEPORT socket bound (not listening) on host:port; its port is the one to use.

    Resolves port 0 to a free port the workers can all bind; a bound socket that does not
    listen receives no connections, so holding it while the workers start is harmless.
    Raises AddressError when the host cannot be resolved or bound, or when another socket
    already listens on the port (even one with SO_REUSEPORT: the workers must not share a
    port with a program that is not theirs).
    """
    address = f"{host}:{port}"
    holder: socket.socket | None = None
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        if port:  # without SO_REUSEPORT: fails if anything listens on the port
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(sockaddr)
        holder = socket.socket(family, kind, proto)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(sockaddr)
    except OSError as exc:
        if holder is not None:
            holder.close()
        raise AddressError(f"cannot listen on {address}: {exc.strerror or exc}") from None
    return holder


def run_workers(
    workers: int,
    host: str,
    port: int,
    target: Callable[..., int],
    args: tuple[Any, ...],
    on_ready: Callable[[int], None],
    start_timeout: float = 600.0,
) -> int:
    """Run `target(*args, index, port, ready_queue, log_level)` in `workers` processes.

    `target` must be a module-level function (spawned processes import it by name); it
    puts its index on the queue once serving. Returns the supervisor's exit status: 2
    (after one line naming the address) if the address cannot be listened on.
    """
    try:
        holder = reserve_port(host, port)
    except AddressError as exc:
        log.error("%s", exc)
        return 2
    context = multiprocessing.get_context("spawn")
    ready: Any = context.Queue()
    level = logging.getLogger().getEffectiveLevel()
    with holder:
        bound = holder.getsockname()[1]
        processes = [
            context.Process(
                target=target, args=(*args, index, bound, ready, level), name=f"recs-worker-{index}"
            )
            for index in range(workers)
        ]
        for process in processes:
            process.start()
        supervisor = _Supervisor(processes)
        with supervisor.forwarding_signals():
            if supervisor.wait_ready(ready, start_timeout):
                on_ready(bound)
            return supervisor.wait_stopped()


class _Supervisor:
    """Watches the worker processes: readiness, signals, unexpected exits."""

    def __init__(self, processes: list[BaseProcess]) -> None:
        self.processes = processes
        self.stopping = False
        self.failed_status: int | None = None

    @contextlib.contextmanager
    def forwarding_signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT stop the workers; SIGHUP is passed on (each reloads its model)."""
        signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        previous = {sig: signal.getsignal(sig) for sig in signals}
        for sig in previous:
            signal.signal(sig, self._on_signal)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            log.info("SIGHUP: each of the %d workers reloads its model", len(self.processes))
            self._signal_workers(signum)
            return
        log.info("%s: stopping %d workers", signal.Signals(signum).name, len(self.processes))
        self.stop(signum)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        self.stopping = True
        self._signal_workers(signum)

    def _signal_workers(self, signum: int) -> None:
        for process in self.processes:
            if process.pid is not None and process.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    def wait_ready(self, ready: Any, timeout: float) -> bool:
        """True once every worker reported SERVING; False if one exited or we are stopping."""
        pending = {index for index in range(len(self.processes))}
        deadline = time.monotonic() + timeout
        while pending and not self.stopping:
            with contextlib.suppress(queue.Empty):
                pending.discard(ready.get(timeout=0.1))
            if self._check_exits() or time.monotonic() > deadline:
                if not self.stopping:
                    log.error("a worker did not start; stopping the others")
                    self.failed_status = self.failed_status or 2
                    self.stop()
                return False
        return not self.stopping

    def wait_stopped(self) -> int:
        """Wait for every worker to exit; the supervisor's exit status."""
        while any(process.exitcode is None for process in self.processes):
            wait([p.sentinel for p in self.processes if p.exitcode is None], timeout=0.5)
            self._check_exits()
        for process in self.processes:
            process.join()
        if self.failed_status is not None:
            return self.failed_status
        return max((abs(p.exitcode or 0) for p in self.processes), default=0)

    def _check_exits(self) -> bool:
        """Stop everything when a worker exited unasked; True if any worker exited."""
        exited = [p for p in self.processes if p.exitcode is not None]
        if exited and not self.stopping:
            first = exited[0]
            log.error("%s exited with status %s; stopping the others", first.name, first.exitcode)
            self.failed_status = first.exitcode or 2
            self.stop()
        return bool(exited)


def configure_worker_logging(index: int, level: int) -> None:
    """Log like `recs` does, with the worker's index in each line."""
    logging.basicConfig(
        level=level, format=LOG_FORMAT.format(index=index), stream=sys.stderr, force=True
    )


def serve_workers(config: ServeConfig) -> int:
    """`recs serve` with `config.server.workers` processes; returns the exit status.

    The supervisor imports neither gRPC nor the backend: it only starts and watches.
    """
    settings = config.server

    def announce(port: int) -> None:
        print_ready(settings.host, port, config.backend, settings.workers)

    if settings.metrics_port is None:
        return run_workers(
            settings.workers, settings.host, settings.port, _serve_worker, (config,), announce
        )
    # Prometheus' multiprocess mode: the workers write their metrics into one directory
    # (named in the environment they inherit) and the supervisor serves /metrics from it.
    from recs.server.metrics import (
        MetricsPortError,
        prepare_multiprocess_directory,
        remove_multiprocess_directory,
        start_metrics_server,
    )

    directory = prepare_multiprocess_directory()
    try:
        try:
            start_metrics_server(settings.host, settings.metrics_port)
        except MetricsPortError as exc:
            log.error("%s", exc)
            return 2
        return run_workers(
            settings.workers, settings.host, settings.port, _serve_worker, (config,), announce
        )
    finally:
        remove_multiprocess_directory(directory)


def _serve_worker(config: ServeConfig, index: int, port: int, ready: Any, level: int) -> None:
    """One worker: build its own backend and serve on the shared port until signalled."""
    configure_worker_logging(index, level)
    import asyncio

    from recs.backends.errors import BackendError
    from recs.config import ConfigError, create_configured_backend
    from recs.server.app import serve

    server = config.server.model_copy(update={"port": port})
    config = config.model_copy(update={"server": server})
    try:
        backend = create_configured_backend(config)
    except (BackendError, ConfigError) as exc:
        log.error("cannot create backend %r: %s", config.backend, exc)
        sys.exit(2)
    sys.exit(asyncio.run(serve(config, backend, on_ready=lambda _port: ready.put(index))))
