"""The one-line-per-request log: method, status, latency.

Every call logs a line, so the line's cost is paid thousands of times a second on the
event loop. `lighten_records` drops the record fields no format of ours prints (caller
frame, thread, process: the logging HOWTO's optimisation list).

Handing the records to a QueueHandler's listener thread was tried and measured slower
(GetPersonalizedRanking 1,270 -> 1,030 req/s): the listener's formatting competes with
the event loop for the GIL, and every hand-over between the two threads costs more than
writing the line in place.
"""

from __future__ import annotations

import logging

log = logging.getLogger("recs.requests")


def lighten_records() -> None:
    """Skip the log record fields that no format of ours prints (process-wide)."""
    logging._srcfile = None  # type: ignore[attr-defined]  # no caller frame lookup
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
