"""The items catalog: a raw video catalog CSV becomes Personalize's `items.csv`.

Input columns (header required, other columns ignored):
`item_id,title,duration,categories,url,creation_time`

- `item_id` required, at most 256 characters, unique: a repeated id is rejected (the
  first row wins).
- `title` optional free text (Personalize's textual field).
- `duration` optional, in seconds (or `duration_unit`); non-numeric or negative rejected.
- `categories` optional, several values separated by `|` (blanks around values and
  empty values are dropped); written `|`-joined as Personalize's multi-value format.
- `url` optional: a URL, or an S3 key turned into a URL when `url_base` is given
  (values with `://` are kept as they are).
- `creation_time` required: epoch seconds or ISO-8601 (as in the watch log).

With `require_categories` (the VIDEO_ON_DEMAND domain, whose items need GENRES) a row
without categories is rejected too.

The catalog is small next to the watch log (one row per video), so it is read whole.
Rejected rows go to a `RejectLog`, like the watch log's.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recs.pipeline.dataset import ITEM_COLUMNS, ITEM_TYPES
from recs.pipeline.output import write_csv
from recs.pipeline.parsing import parse_epoch_seconds, parse_float
from recs.pipeline.rejects import Reject, RejectLog
from recs.pipeline.watchlog import (
    LATEST_TIMESTAMP,
    MAX_ID_LENGTH,
    SECONDS_PER_DURATION_UNIT,
    WatchLogError,
    read_header,
)

CATALOG_COLUMNS = ["item_id", "title", "duration", "categories", "url", "creation_time"]
REQUIRED_CATALOG_COLUMNS = ["item_id", "creation_time"]
MAX_CATEGORICAL_LENGTH = 1000  # Personalize fails an import with a longer categorical value
MISSING_GENRES = "missing categories (VIDEO_ON_DEMAND items require GENRES)"


class CatalogError(WatchLogError):
    """The catalog cannot be read at all."""


@dataclass(frozen=True)
class CatalogFormat:
    """How to read the raw catalog."""

    duration_unit: str = "s"
    url_base: str | None = None  # prefix for S3 keys, e.g. https://bucket.s3.amazonaws.com


@dataclass(frozen=True)
class CatalogResult:
    """What preparing the catalog produced."""

    items: pa.Table  # in ITEM_COLUMNS form
    rows_read: int
    rejects: RejectLog


def read_catalog(
    path: str | Path,
    fmt: CatalogFormat,
    rejects_file: str | Path | None = None,
    *,
    require_categories: bool = False,
) -> CatalogResult:
    """Read and validate a raw catalog into the `items.csv` table (in ITEM_COLUMNS form)."""
    path = Path(path)
    header = read_header(path)
    missing = [name for name in REQUIRED_CATALOG_COLUMNS if name not in header]
    if missing:
        raise CatalogError(
            f"{path}: header lacks required column(s) {', '.join(missing)}; "
            f"found: {', '.join(header)}"
        )
    present = [name for name in CATALOG_COLUMNS if name in header]
    rejects = RejectLog(present, rejects_file)
    try:
        return _read_catalog(path, fmt, present, rejects, require_categories)
    finally:
        rejects.close()


def _read_catalog(
    path: Path,
    fmt: CatalogFormat,
    present: list[str],
    rejects: RejectLog,
    require_categories: bool = False,
) -> CatalogResult:
    malformed: list[Reject] = []
    lock = threading.Lock()

    def on_invalid(row: pacsv.InvalidRow) -> str:
        with lock:
            malformed.append(
                Reject(
                    row.number,
                    "wrong number of fields",
                    (),
                    f"{row.text}  [{row.actual_columns} fields, expected {row.expected_columns}]",
                )
            )
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                include_columns=present,
                column_types={name: pa.string() for name in present},
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise CatalogError(f"{path}: cannot read as CSV ({exc})") from exc
    table = table.combine_chunks()
    n = table.num_rows
    column = {name: table.column(name).combine_chunks() for name in present}
    for name in CATALOG_COLUMNS:
        column.setdefault(name, pa.nulls(n, pa.string()))

    item_id = column["item_id"]
    duration = parse_float(column["duration"])
    created = parse_epoch_seconds(column["creation_time"])
    categories = _normalise_categories(column["categories"])
    category_length = pc.fill_null(pc.utf8_length(categories), 0).to_numpy()
    id_missing = np.asarray(pc.is_null(item_id).to_numpy(zero_copy_only=False), bool)
    id_length = pc.fill_null(pc.utf8_length(item_id), 0).to_numpy()
    checks = {
        "missing item_id": id_missing,
        f"item_id longer than {MAX_ID_LENGTH} characters": id_length > MAX_ID_LENGTH,
        "duplicate item_id": _repeated(item_id) & ~id_missing,
        "non-numeric duration": duration.invalid,
        "negative duration": duration.ok & (duration.values < 0),
        "missing creation_time": created.missing,
        "unparseable creation_time": created.invalid,
        "creation_time out of range (before 1970 or after 2100)": created.ok
        & ((created.values < 0) | (created.values > LATEST_TIMESTAMP)),
        f"categories longer than {MAX_CATEGORICAL_LENGTH} characters": category_length
        > MAX_CATEGORICAL_LENGTH,
    }
    if require_categories:
        checks[MISSING_GENRES] = np.asarray(
            pc.is_null(categories).to_numpy(zero_copy_only=False), bool
        )
    reasons = list(checks)
    code = np.zeros(n, dtype=np.int16)
    for index in range(len(reasons), 0, -1):
        code[checks[reasons[index - 1]]] = index

    rows = np.flatnonzero(code)
    lines = _line_numbers(n, [r.line for r in malformed if r.line is not None])
    raw = table.select(present).take(pa.array(rows)).to_pydict()
    rejected = [
        Reject(int(lines[row]), reasons[code[row] - 1], tuple(raw[name][i] for name in present))
        for i, row in enumerate(rows)
    ]
    rejects.add_many(sorted([*malformed, *rejected], key=lambda r: r.line or 0))

    ok = code == 0
    mask = pa.array(ok)
    seconds = SECONDS_PER_DURATION_UNIT[fmt.duration_unit]
    duration_values = pa.array(duration.values * seconds, mask=~duration.ok)
    items = pa.table(
        {
            "ITEM_ID": item_id.filter(mask),
            "TITLE": column["title"].filter(mask),
            "URL": _urls(column["url"], fmt.url_base).filter(mask),
            "CATEGORIES": categories.filter(mask),
            "DURATION": duration_values.filter(mask),
            "CREATION_TIMESTAMP": pa.array(created.values[ok], pa.int64()),
        },
        schema=pa.schema([(name, ITEM_TYPES[name]) for name in ITEM_COLUMNS]),
    )
    return CatalogResult(items=items, rows_read=n + len(malformed), rejects=rejects)


def write_items(items: pa.Table, path: str | Path) -> None:
    """Write the `items.csv` table (header unquoted, as Personalize requires)."""
    write_csv(items, path)


def _normalise_categories(categories: pa.Array) -> pa.Array:
    """`a | b||c ` -> `a|b|c`; empty -> null."""
    text = pc.replace_substring_regex(categories, r"\s*\|\s*", "|")
    text = pc.replace_substring_regex(text, r"\|{2,}", "|")
    text = pc.utf8_trim(pc.utf8_trim_whitespace(text), "|")
    empty = pc.equal(text, "")
    return pc.if_else(pc.fill_null(empty, False), pa.scalar(None, pa.string()), text)


def _urls(urls: pa.Array, base: str | None) -> pa.Array:
    if base is None:
        return urls
    prefix = base.rstrip("/") + "/"
    keys = pc.utf8_ltrim(urls, "/")
    joined = pc.binary_join_element_wise(prefix, keys, "")
    has_scheme = pc.fill_null(pc.match_substring(urls, "://"), True)
    return pc.if_else(has_scheme, urls, joined)


def _repeated(ids: pa.Array) -> np.ndarray:
    """True for every occurrence of an id after its first."""
    encoded = pc.dictionary_encode(ids).indices.to_numpy(zero_copy_only=False)
    encoded = np.nan_to_num(encoded.astype(np.float64), nan=-1).astype(np.int64)
    _, first = np.unique(encoded, return_index=True)
    repeated = np.ones(len(ids), dtype=bool)
    repeated[first] = False
    return repeated


def _line_numbers(parsed_rows: int, malformed_lines: list[int]) -> np.ndarray:
    """File line of each parsed row (header = 1), skipping the malformed lines."""
    malformed = np.sort(np.asarray(malformed_lines, dtype=np.int64))
    before = malformed - 2 - np.arange(len(malformed))
    index = np.arange(parsed_rows)
    return index + 2 + np.searchsorted(before, index, side="right")
