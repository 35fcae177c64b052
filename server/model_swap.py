"""Model swaps: SIGHUP (or `[local] watch_model`) loads the configured model again and
switches to it without a failed call. See `ModelSwapper`."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from pathlib import Path

from recs.backends.base import Backend
from recs.config import ServeConfig, create_configured_backend
from recs.server.metrics import ServiceMetrics

log = logging.getLogger("recs.server")

WATCH_SECONDS = 2.0  # how often watched model files are checked


def _stamps(files: list[Path]) -> list[tuple[int, int, int] | None]:
    """(mtime, size, inode) of each file, None for one that is missing."""
    stamps: list[tuple[int, int, int] | None] = []
    for path in files:
        try:
            status = path.stat()
        except OSError:
            stamps.append(None)
        else:
            stamps.append((status.st_mtime_ns, status.st_size, status.st_ino))
    return stamps


class ModelSwapper:
    """Loads the configured model again on request (SIGHUP, or its files changed) and
    switches to it atomically.

    The new backend is built from the same config, started (loaded, checked and warmed up,
    exactly as at start-up) on a thread while the old one keeps answering, then installed in
    one assignment: calls already running finish on the backend they started with (each
    holds its own reference), later calls get the new one. A model that fails is refused
    with a log line and the old one keeps serving. One reload at a time; a request during
    one makes another follow it, since the files may have changed after they were read.
    With `[local] watch_model`, a change of the files the backend names asks for a reload.
    """

    def __init__(
        self,
        config: ServeConfig,
        backend: Backend,
        install: Callable[[Backend], None],
        metrics: ServiceMetrics | None = None,
    ) -> None:
        """`backend` serves now; `install(new)` makes the server answer from `new`."""
        self.config = config
        self.backend = backend
        self.install = install
        self.metrics = metrics
        self.ready = False  # swaps only once the first backend serves
        self._task: asyncio.Task | None = None
        self._again = False

    def request(self) -> None:
        """Start a reload, unless one runs (or start-up has not finished)."""
        if not self.ready:
            log.warning("SIGHUP ignored: the server is still starting")
            return
        if self._task is not None and not self._task.done():
            log.info("a model reload is running: another follows it")
            self._again = True
            return
        self._task = asyncio.ensure_future(self._reload_until_current())

    async def _reload_until_current(self) -> None:
        """Reload; again if asked meanwhile (the files may have changed during the load)."""
        while True:
            self._again = False
            await self.reload()
            if not self._again:
                return

    async def reload(self) -> bool:
        """Load, check and install the configured model; False (old one kept) if it fails."""
        old_version = self.backend.info().details.get("model_version", "")
        log.info("reloading the model (serving %s meanwhile)", old_version or self.backend.name)
        started = time.perf_counter()
        try:
            fresh = create_configured_backend(self.config)
            await asyncio.to_thread(fresh.start)
        except Exception as exc:  # a bad model must never stop the one that serves
            log.error("model reload refused, still serving %s: %s", old_version, exc)
            return False
        seconds = time.perf_counter() - started
        if self.metrics is not None:
            fresh.observe_calls(self.metrics.remote_call)
        old, self.backend = self.backend, fresh
        self.install(fresh)
        info = fresh.info()
        version = info.details.get("model_version", "")
        if self.metrics is not None:
            self.metrics.model_loaded(info.backend, version, seconds)
        log.info("now serving model %s (was %s; loaded in %.2fs)", version, old_version, seconds)
        gc.collect()
        gc.freeze()
        # The old backend is released when its last running call ends (its memory maps
        # with it); closing it here could pull a model from under a call still using it.
        del old
        return True

    async def watch(self, interval: float = WATCH_SECONDS) -> None:
        """Reload when a file the backend names (`watched_files`) changes; until cancelled.

        A change is a new modification time, size or inode: `recs train` and `recs precompute`
        replace their files by renaming, so a half-written model is never seen.
        """
        files = self.backend.watched_files()
        if not files:
            return
        log.info("watching %s for a new model", ", ".join(str(f) for f in files))
        seen = _stamps(files)
        while True:
            await asyncio.sleep(interval)
            now = _stamps(files)
            if now != seen:
                seen = now
                log.info("the model's files changed: reloading")
                self.request()

    async def cancel(self) -> None:
        """Stop a reload in progress (on shutdown)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
