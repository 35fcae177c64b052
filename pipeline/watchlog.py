"""Reading and validating a raw watch log, block by block, without holding it in memory.

Input: a CSV file with a header. The default columns are
`user_id,item_id,timestamp,watch_duration,video_duration` (durations in seconds,
timestamp in epoch seconds or ISO-8601, see `pipeline.parsing`); `WatchLogColumns`
renames them so another log shape (e.g. KuaiRand's `video_id`, `play_time_ms`,
`duration_ms`) is read as it is. Other columns are ignored.

No timestamp column: some logs (KuaiRand samples) have none. Then the caller must give
an explicit `default_timestamp`, stamped on every row; it is never guessed (a row order
or file date would silently fake a time order that time-based splits rely on). Giving
one while the log has a timestamp column is an error, so it cannot mask a typo.

Every row is either valid or rejected for the first reason that applies, in this order:

- wrong number of fields (the line cannot be split into the header's columns)
- empty row (every field read is empty)
- missing <user column> / <item column>; <column> longer than 256 characters
  (Personalize's limit on ids)
- missing / unparseable <timestamp column>; <timestamp column> out of range (before
  1970 or after 2100, usually milliseconds read as seconds)
- missing / non-numeric / negative <watch column>
- missing / non-numeric / negative / zero <duration column>

Reasons name the columns as the input file spells them. Line numbers are lines of the
input file with the header as line 1 (a value may not span lines).
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recs.pipeline.parsing import parse_epoch_seconds, parse_float
from recs.pipeline.prefetch import prefetched
from recs.pipeline.rejects import Reject, RejectLog

MAX_ID_LENGTH = 256
LATEST_TIMESTAMP = 4_102_444_800  # 2100-01-01T00:00:00Z
SECONDS_PER_DURATION_UNIT = {"s": 1.0, "ms": 0.001}
BLOCK_BYTES = 8 << 20


class WatchLogError(Exception):
    """The watch log cannot be read at all (the message names the file and the problem)."""


@dataclass(frozen=True)
class WatchLogColumns:
    """Names of the columns holding each field in the input file."""

    user: str = "user_id"
    item: str = "item_id"
    timestamp: str = "timestamp"
    watch: str = "watch_duration"
    duration: str = "video_duration"


@dataclass(frozen=True)
class WatchLogFormat:
    """How to read a watch log: column names, units, and the fallback time."""

    columns: WatchLogColumns = field(default_factory=WatchLogColumns)
    duration_unit: str = "s"  # unit of both watch and video durations: "s" or "ms"
    timestamp_unit: str = "s"  # unit of numeric timestamps: "s" or "ms"
    default_timestamp: int | None = None  # epoch seconds for logs without timestamps


@dataclass(frozen=True)
class ValidRows:
    """The valid rows of one block, in input order."""

    user: pa.Array
    item: pa.Array
    timestamp: np.ndarray  # int64 epoch seconds
    watch: np.ndarray  # float64 seconds
    duration: np.ndarray  # float64 seconds, > 0

    def __len__(self) -> int:
        return len(self.timestamp)


def read_header(path: Path) -> list[str]:
    """Column names of the CSV header; WatchLogError if the file cannot be read."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), None)
    except FileNotFoundError as exc:
        raise WatchLogError(f"{path}: file not found") from exc
    except IsADirectoryError as exc:
        raise WatchLogError(f"{path}: is a directory, not a CSV file") from exc
    except PermissionError as exc:
        raise WatchLogError(f"{path}: permission denied") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise WatchLogError(f"{path}: cannot read the header ({exc})") from exc
    if not header:
        raise WatchLogError(f"{path}: empty file (a CSV header is required)")
    return [name.strip() for name in header]


class WatchLogReader:
    """Iterates over the valid rows of a watch log; rejected rows go to `self.rejects`.

    The rejects file, if any, is closed when iteration ends.

    `rows_read` counts every data row of the file seen so far, valid or not;
    `bytes_read` / `total_bytes` measure progress while iterating.
    """

    def __init__(
        self, path: str | Path, fmt: WatchLogFormat, rejects_file: str | Path | None = None
    ) -> None:
        self.path = Path(path)
        self.format = fmt
        self.header = read_header(self.path)
        self.source_columns = self._resolve_columns()
        self.rejects = RejectLog(self.source_columns, rejects_file)
        self.parsed_rows = 0  # rows the CSV parser split into columns
        self.total_bytes = self.path.stat().st_size
        self.bytes_read = 0
        self._malformed_lines: list[int] = []  # sorted: the parser runs in one thread
        self._malformed: list[Reject] = []
        self._malformed_count = 0
        self._lock = threading.Lock()
        self._reasons = self._reason_texts()

    def _columns_read(self) -> list[str]:
        """Input columns this reader uses, in role order."""
        c = self.format.columns
        names = [c.user, c.item, c.timestamp, c.watch, c.duration]
        if c.timestamp not in self.header and self.format.default_timestamp is not None:
            names.remove(c.timestamp)
        return names

    def _resolve_columns(self) -> list[str]:
        c, fmt = self.format.columns, self.format
        has_time = c.timestamp in self.header
        if has_time and fmt.default_timestamp is not None:
            raise WatchLogError(
                f"{self.path}: has a timestamp column '{c.timestamp}', so a default "
                "timestamp is not used; drop --default-timestamp"
            )
        missing = [name for name in self._columns_read() if name not in self.header]
        if missing:
            hint = ""
            if c.timestamp in missing:
                hint = (
                    " (a log without timestamps needs --default-timestamp; "
                    "another column name needs --timestamp-col)"
                )
            raise WatchLogError(
                f"{self.path}: header lacks required column(s) {', '.join(missing)}{hint}; "
                f"found: {', '.join(self.header)}"
            )
        return self._columns_read()

    def _reason_texts(self) -> list[str]:
        c = self.format.columns
        return [
            "",  # 0: valid
            "empty row",
            f"missing {c.user}",
            f"missing {c.item}",
            f"{c.user} longer than {MAX_ID_LENGTH} characters",
            f"{c.item} longer than {MAX_ID_LENGTH} characters",
            f"missing {c.timestamp}",
            f"unparseable {c.timestamp}",
            f"{c.timestamp} out of range (before 1970 or after 2100)",
            f"missing {c.watch}",
            f"non-numeric {c.watch}",
            f"negative {c.watch}",
            f"missing {c.duration}",
            f"non-numeric {c.duration}",
            f"negative {c.duration}",
            f"zero {c.duration}",
        ]

    def _on_invalid_row(self, row: pacsv.InvalidRow) -> str:
        reject = Reject(
            line=row.number,
            reason="wrong number of fields",
            values=(),
            raw=f"{row.text}  [{row.actual_columns} fields, expected {row.expected_columns}]",
        )
        with self._lock:
            if row.number is not None:
                self._malformed_lines.append(row.number)
            self._malformed.append(reject)
        return "skip"

    def _open(self) -> tuple[pa.NativeFile, pacsv.CSVStreamingReader]:
        source = pa.OSFile(str(self.path))
        names = self.source_columns
        try:
            reader = pacsv.open_csv(
                source,
                # Threads off: line numbers of malformed rows are only known without them;
                # parsing still overlaps with our processing through the prefetch thread.
                read_options=pacsv.ReadOptions(use_threads=False, block_size=BLOCK_BYTES),
                parse_options=pacsv.ParseOptions(
                    invalid_row_handler=self._on_invalid_row, ignore_empty_lines=False
                ),
                convert_options=pacsv.ConvertOptions(
                    include_columns=names,
                    column_types={name: pa.string() for name in names},
                    strings_can_be_null=True,
                    null_values=[""],
                ),
            )
        except (pa.ArrowInvalid, OSError) as exc:
            source.close()
            raise WatchLogError(f"{self.path}: cannot read as CSV ({exc})") from exc
        return source, reader

    @property
    def rows_read(self) -> int:
        """Data rows read so far: parsed rows plus rows too malformed to parse."""
        return self.parsed_rows + self._malformed_count

    def __iter__(self) -> Iterator[ValidRows]:
        source, reader = self._open()
        try:
            for batch in prefetched(_batches(reader, self.path, lambda: self.rows_read)):
                self.bytes_read = source.tell()
                valid, rejected = self._validate(batch)
                last_line = int(self._lines(np.array([self.parsed_rows + batch.num_rows]))[0])
                self._record(rejected, before_line=last_line)
                self.parsed_rows += batch.num_rows
                yield valid
            self._record([], before_line=None)
            self.bytes_read = self.total_bytes
        finally:
            source.close()
            self.rejects.close()

    def _record(self, rejected: list[Reject], before_line: int | None) -> None:
        """Log a block's rejects with the malformed rows up to `before_line`, in line order."""
        with self._lock:
            if before_line is None:
                malformed, self._malformed = self._malformed, []
            else:
                malformed = [r for r in self._malformed if (r.line or 0) < before_line]
                self._malformed = self._malformed[len(malformed) :]
        self._malformed_count += len(malformed)
        if malformed:
            rejected = sorted([*malformed, *rejected], key=lambda r: r.line or 0)
        self.rejects.add_many(rejected)

    def _lines(self, row_indices: np.ndarray) -> np.ndarray:
        """Input line numbers of data rows given by their index among parsed rows."""
        with self._lock:
            malformed = np.asarray(self._malformed_lines, dtype=np.int64)
        # Parsed rows before malformed line i: malformed[i] - 2 - i. A parsed row k comes
        # after every malformed line with at most k parsed rows before it.
        before = malformed - 2 - np.arange(len(malformed))
        return row_indices + 2 + np.searchsorted(before, row_indices, side="right")

    def _validate(self, batch: pa.RecordBatch) -> tuple[ValidRows, list[Reject]]:
        c, fmt = self.format.columns, self.format
        n = batch.num_rows
        user = batch.column(c.user)
        item = batch.column(c.item)
        watch = parse_float(batch.column(c.watch))
        duration = parse_float(batch.column(c.duration))
        if c.timestamp in batch.schema.names:
            stamp = parse_epoch_seconds(batch.column(c.timestamp), fmt.timestamp_unit)
            time_values = stamp.values
            time_checks = [
                stamp.missing,
                stamp.invalid,
                stamp.ok & ((time_values < 0) | (time_values > LATEST_TIMESTAMP)),
            ]
        else:
            time_values = np.full(n, fmt.default_timestamp, dtype=np.int64)
            time_checks = [np.zeros(n, bool)] * 3

        user_missing = _is_null(user)
        item_missing = _is_null(item)
        all_missing = user_missing & item_missing & watch.missing & duration.missing
        if c.timestamp in batch.schema.names:
            all_missing &= stamp.missing
        checks = [
            all_missing,
            user_missing,
            item_missing,
            _longer_than(user, MAX_ID_LENGTH),
            _longer_than(item, MAX_ID_LENGTH),
            *time_checks,
            watch.missing,
            watch.invalid,
            watch.ok & (watch.values < 0),
            duration.missing,
            duration.invalid,
            duration.ok & (duration.values < 0),
            duration.ok & (duration.values == 0),
        ]
        reason = np.zeros(n, dtype=np.uint8)
        for code in range(len(checks), 0, -1):  # the first reason that applies wins
            reason[checks[code - 1]] = code
        rows = np.flatnonzero(reason)
        rejected = self._rejects(batch, rows, reason[rows]) if len(rows) else []
        ok = reason == 0
        scale = SECONDS_PER_DURATION_UNIT[fmt.duration_unit]
        mask = pa.array(ok)
        valid = ValidRows(
            user=user.filter(mask),
            item=item.filter(mask),
            timestamp=time_values[ok],
            watch=watch.values[ok] * scale,
            duration=duration.values[ok] * scale,
        )
        return valid, rejected

    def _rejects(self, batch: pa.RecordBatch, rows: np.ndarray, codes: np.ndarray) -> list[Reject]:
        lines = self._lines(rows + self.parsed_rows)
        taken = batch.select(self.source_columns).take(pa.array(rows)).to_pydict()
        values = list(zip(*(taken[name] for name in self.source_columns), strict=True))
        return [
            Reject(line=int(line), reason=self._reasons[code], values=tuple(row))
            for line, code, row in zip(lines, codes, values, strict=True)
        ]


def _is_null(column: pa.Array) -> np.ndarray:
    if column.null_count == 0:
        return np.zeros(len(column), dtype=bool)
    return np.asarray(pc.is_null(column).to_numpy(zero_copy_only=False), dtype=bool)


def _longer_than(column: pa.Array, limit: int) -> np.ndarray:
    # Cheap bound first: a string of at most `limit` bytes has at most `limit` characters.
    lengths = pc.binary_length(column)
    if pc.max(lengths).as_py() is None or pc.max(lengths).as_py() <= limit:
        return np.zeros(len(column), dtype=bool)
    too_long = pc.greater(pc.utf8_length(column), limit)
    return np.asarray(pc.fill_null(too_long, False).to_numpy(zero_copy_only=False), dtype=bool)


def _batches(
    reader: pacsv.CSVStreamingReader, path: Path, rows_done: Callable[[], int]
) -> Iterator[pa.RecordBatch]:
    """The reader's batches; a parse error becomes a WatchLogError saying roughly where."""
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, OSError) as exc:
            done = rows_done() if callable(rows_done) else 0
            raise WatchLogError(f"{path}: cannot read past data row ~{done + 1:,} ({exc})") from exc
        yield batch
