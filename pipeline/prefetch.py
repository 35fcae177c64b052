"""Read ahead in a background thread, so producing the next item overlaps using this one.

Arrow parses CSV blocks with the GIL released, so a parser thread and the numpy work on
the previous block really do run on two cores at once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def prefetched(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate `items` in a background thread, `depth` ahead: parsing overlaps processing."""
    buffer: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put(("item", item))
            buffer.put(("end", None))
        except BaseException as exc:  # handed to the consumer, re-raised there
            buffer.put(("error", exc))

    thread = threading.Thread(target=produce, name="csv-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, payload = buffer.get()
            if kind == "end":
                return
            if kind == "error":
                raise payload  # type: ignore[misc]
            yield payload  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                buffer.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
