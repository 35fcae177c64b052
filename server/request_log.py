"""The request log: what the service answered, how fast, and which calls failed.

Two modes (`[server] request_log`):

- "summary" (the default): every `request_log_interval` seconds, one line per method that
  had calls: how many, per status, and their latency percentiles. Failed calls (any
  status but OK and CANCELLED) are also logged one by one with their message, up to
  `MAX_FAILURES_LOGGED` per interval; the summary counts the rest. At thousands of calls
  a second this is what an on-call engineer can read, and it costs each call an append
  instead of a log record, which costs the event loop more than the rest of a cheap call.
- "each": one line per call (method, status, latency), for debugging and low traffic.

`lighten_records` drops the record fields no format of ours prints (caller frame,
thread, process: the logging HOWTO's optimisation list).

Lines are written in place, not handed to a QueueHandler's listener thread: the listener's
formatting would compete with the event loop for the GIL, and each hand-over between the
two threads costs more than writing the line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Literal

import grpc
import numpy as np

log = logging.getLogger("recs.requests")

RequestLogMode = Literal["summary", "each"]
MAX_FAILURES_LOGGED = 20  # per interval; the summary counts every failure
# Latencies kept per method and interval (the percentiles come from the first ones); calls
# beyond are still counted. Bounds the memory if summaries stop being written.
MAX_LATENCIES = 200_000
_QUIET_STATUSES = ("OK", "CANCELLED")  # CANCELLED: the caller went away, not our failure


def lighten_records() -> None:
    """Skip the log record fields that no format of ours prints (process-wide)."""
    logging._srcfile = None  # type: ignore[attr-defined]  # no caller frame lookup
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def status_name(status: grpc.StatusCode | int) -> str:
    return status.name if isinstance(status, grpc.StatusCode) else str(status)


class RequestLog:
    """Records every call; writes per-call lines or periodic summaries (see module doc)."""

    def __init__(self, mode: RequestLogMode = "summary", level: int | str = logging.INFO) -> None:
        self.mode = mode
        self.level = logging.getLevelName(level) if isinstance(level, str) else level
        self._latencies: dict[str, list[float]] = {}  # per method, seconds, OK calls
        self._other: dict[tuple[str, str], int] = {}  # (method, status) -> calls
        self._ok_unsampled: dict[str, int] = {}  # OK calls beyond MAX_LATENCIES
        self._failures_logged = 0
        self._since = time.monotonic()

    def ok(self, method: str, seconds: float) -> None:
        """A call answered OK (the hot path: an append in summary mode)."""
        if self.mode == "summary":
            latencies = self._latencies.get(method)
            if latencies is None:
                latencies = self._latencies[method] = []
            if len(latencies) < MAX_LATENCIES:
                latencies.append(seconds)
            else:
                self._ok_unsampled[method] = self._ok_unsampled.get(method, 0) + 1
        elif log.isEnabledFor(self.level):
            log.log(self.level, "%s OK %.2fms", method, seconds * 1000)

    def failed(
        self, method: str, status: grpc.StatusCode | int, seconds: float, message: str = ""
    ) -> None:
        """A call that ended with a status other than OK; `message` is what the caller got."""
        name = status_name(status)
        if self.mode == "each":
            if log.isEnabledFor(self.level):
                log.log(self.level, "%s %s %.2fms %s", method, name, seconds * 1000, message)
            return
        key = (method, name)
        self._other[key] = self._other.get(key, 0) + 1
        if name not in _QUIET_STATUSES and self._failures_logged < MAX_FAILURES_LOGGED:
            self._failures_logged += 1
            log.log(self.level, "%s %s %.2fms %s", method, name, seconds * 1000, message)

    def summarise(self) -> None:
        """Log one line per method called since the last summary, then start afresh."""
        now = time.monotonic()
        elapsed, self._since = now - self._since, now
        latencies, self._latencies = self._latencies, {}
        other, self._other = self._other, {}
        unsampled, self._ok_unsampled = self._ok_unsampled, {}
        unlogged = sum(n for (_, s), n in other.items() if s not in _QUIET_STATUSES)
        unlogged -= self._failures_logged
        self._failures_logged = 0
        for method in sorted({*latencies, *(m for m, _ in other)}):
            ok = latencies.get(method, [])
            counts = {"OK": len(ok) + unsampled.get(method, 0)} if ok else {}
            counts.update({s: n for (m, s), n in other.items() if m == method})
            calls = sum(counts.values())
            rate = calls / elapsed
            line = (
                f"{method} {calls:,} calls in {elapsed:.1f} s "
                + (f"({rate:,.0f}/s): " if rate >= 10 else f"({rate:.1f}/s): ")
                + ", ".join(f"{status} {n:,}" for status, n in counts.items())
            )
            if ok:
                p50, p99 = np.percentile(ok, [50, 99]) * 1000
                line += (
                    f"; OK latency p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {max(ok) * 1000:.2f} ms"
                )
            log.log(self.level, "%s", line)
        if unlogged > 0:
            log.log(self.level, "%d more failed calls not logged one by one", unlogged)

    async def summarise_every(self, interval: float) -> None:
        """Write a summary every `interval` seconds until cancelled (then a last one)."""
        if self.mode != "summary":
            return
        try:
            while True:
                await asyncio.sleep(interval)
                self.summarise()
        finally:
            self.summarise()
