"""Progress displays for long pipeline commands, drawn on stderr with rich.

Progress goes to stderr so stdout carries only the command's results (the summary
line), which scripts and benchmarks can parse.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def console(stderr: bool) -> Console:
    """A console on stdout or stderr (no colour codes when it is not a terminal)."""
    return Console(stderr=stderr, highlight=False)


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:>12,} rows  {task.fields[rate]:>10,.0f} rows/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
        disable=not enabled,
        transient=False,
    )


@contextmanager
def byte_progress(
    description: str, enabled: bool = True
) -> Iterator[Callable[[int, int, int], None]]:
    """Yields `update(bytes_done, bytes_total, rows_done)` for a pass over a file."""
    started = time.perf_counter()
    with _progress(enabled) as progress:
        task = progress.add_task(description, total=None, rows=0, rate=0.0)

        def update(done: int, total: int, rows: int) -> None:
            elapsed = max(time.perf_counter() - started, 1e-9)
            progress.update(task, completed=done, total=total, rows=rows, rate=rows / elapsed)

        yield update


@contextmanager
def row_progress(
    description: str, total: int, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yields `advance(rows)` for a job of `total` rows."""
    started = time.perf_counter()
    with _progress(enabled) as progress:
        task = progress.add_task(description, total=total, rows=0, rate=0.0)
        done = 0

        def advance(rows: int) -> None:
            nonlocal done
            done += rows
            elapsed = max(time.perf_counter() - started, 1e-9)
            progress.update(task, completed=done, rows=done, rate=done / elapsed)

        yield advance


def every_step(report: Callable[[float], None], step: float = 0.1) -> Callable[[float], None]:
    """A progress callback (fraction done, 0 to 1) passing on each further `step` and the end.

    For commands whose progress goes to the log (`recs index`, `recs precompute`): one
    line per tenth reads well there, where a redrawn bar does not.
    """
    passed = {"steps": 0, "end": False}

    def on_progress(done: float) -> None:
        if done >= 1.0:
            if not passed["end"]:
                passed["end"] = True
                report(done)
            return
        steps = int(done / step + 1e-9)  # 0.30000000000000004 / 0.1: 3, not 2.999...
        if steps > passed["steps"]:
            passed["steps"] = steps
            report(done)

    return on_progress
