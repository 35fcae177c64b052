"""Rejected input rows: counted by reason, the first few kept for display, all optionally saved.

Nothing is dropped silently: every row a reader refuses passes through a `RejectLog`,
which the command's summary reports. With a rejects file, every rejected row is written
as CSV: `line,reason,<the input columns that were read>,raw` where `line` is the line of
the input file (header = line 1) and `raw` holds the text of rows too malformed to split
into columns.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class Reject:
    """One rejected row."""

    line: int | None
    reason: str
    values: tuple[str | None, ...]
    raw: str = ""


class RejectLog:
    """Collects rejected rows of one input file."""

    def __init__(
        self, columns: list[str], path: str | Path | None = None, keep_first: int = 5
    ) -> None:
        self.columns = list(columns)
        self.counts: Counter[str] = Counter()
        self.first: list[Reject] = []
        self._keep_first = keep_first
        self._file: IO[str] | None = None
        self._writer = None
        if path is not None:
            # Kept open across blocks; close() ends it.
            self._file = Path(path).open("w", encoding="utf-8", newline="")  # noqa: SIM115
            self._writer = csv.writer(self._file)
            self._writer.writerow(["line", "reason", *self.columns, "raw"])

    @property
    def total(self) -> int:
        """Number of rows rejected so far."""
        return sum(self.counts.values())

    def add(self, reject: Reject) -> None:
        """Record one rejected row."""
        self.add_many([reject])

    def add_many(self, rejects: list[Reject]) -> None:
        """Record rejected rows, in input order."""
        for reject in rejects:
            self.counts[reject.reason] += 1
            if len(self.first) < self._keep_first:
                self.first.append(reject)
        if self._writer is not None:
            self._writer.writerows(
                [
                    ["" if r.line is None else r.line, r.reason, *self._cells(r.values), r.raw]
                    for r in rejects
                ]
            )

    def _cells(self, values: tuple[str | None, ...]) -> list[str]:
        """One cell per column; blank where a malformed row has no values."""
        cells = ["" if v is None else v for v in values]
        return cells + [""] * (len(self.columns) - len(cells))

    def close(self) -> None:
        """Flush and close the rejects file, if any."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def describe(self) -> list[str]:
        """Human-readable lines: counts by reason, then the first rejected rows."""
        lines = [f"{count:>10,}  {reason}" for reason, count in self.counts.most_common()]
        for reject in self.first:
            where = f"line {reject.line}" if reject.line is not None else "line ?"
            shown = reject.raw or ",".join("" if v is None else v for v in reject.values)
            lines.append(f"  {where}: {reject.reason}: {shown}")
        return lines
