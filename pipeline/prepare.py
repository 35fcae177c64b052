"""`recs prepare`: a raw watch log (and catalog) becomes a Personalize-format dataset.

Streaming: the log is read block by block (`pipeline.watchlog`), each block is
validated, de-duplicated, labelled and appended to `interactions.csv` before the next
is read, so memory stays bounded by the block size plus 8 bytes per distinct row (the
duplicate fingerprints) and per distinct user and item.

Duplicates: two rows are duplicates when they have the same user, item, time, watch
duration and video duration after parsing (so `12` and `12.0`, or an epoch and the same
instant in ISO-8601, are the same value). The first is kept, the others counted. Only
the columns `prepare` reads take part: the others never reach the dataset.

Labels and re-watches: see `pipeline.labels`. Rejections: see `pipeline.watchlog`.
The run ends with one accounting identity: read = written + rejected + duplicates.

Domain: by default the files are for a custom dataset group. With
`domain=DOMAIN_VIDEO_ON_DEMAND` they follow the VIDEO_ON_DEMAND domain's schemas
(`pipeline.schemas`): event types `Watch`/`Click`, items' categories under GENRES (a
catalog row without categories is rejected, GENRES being required), the domain's Avro
schemas under the same file names, and `dataset.json` holding `{"domain":
"VIDEO_ON_DEMAND"}` so that provisioning knows which domain the data is for. Preparing
a custom dataset removes a `dataset.json` left in the directory by an earlier run.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from recs.pipeline.dataset import (
    DATASET_META_FILE,
    DOMAIN_VIDEO_ON_DEMAND,
    EVENT_CLICKED,
    EVENT_WATCHED,
    INTERACTION_TYPES,
    INTERACTIONS_FILE,
    INTERACTIONS_SCHEMA_FILE,
    ITEMS_FILE,
    ITEMS_SCHEMA_FILE,
    VOD_EVENT_CLICK,
    VOD_EVENT_WATCH,
    VOD_ITEM_COLUMNS,
)
from recs.pipeline.hashing import (
    CountedSet,
    HashSet,
    combine,
    distinct_counts,
    first_occurrences,
    hash_strings,
)
from recs.pipeline.items import CatalogFormat, read_catalog, write_items
from recs.pipeline.labels import DEFAULT_MAX_EVENT_VALUE, DEFAULT_THRESHOLD, label
from recs.pipeline.output import BackgroundWriter, CsvFileWriter
from recs.pipeline.rejects import RejectLog
from recs.pipeline.schemas import (
    interactions_schema,
    items_schema,
    vod_interactions_schema,
    vod_items_schema,
    write_schema,
)
from recs.pipeline.watchlog import ValidRows, WatchLogFormat, WatchLogReader

log = logging.getLogger(__name__)

# Personalize's minimum data for training (reference 5.2).
MIN_INTERACTIONS = 1000
MIN_REPEAT_USERS = 25
MIN_REPEAT_USER_SHARE = 0.01

ROW_FILTER_BITS = 27  # duplicate pre-filter: 128 MiB, good for tens of millions of rows
INTERACTIONS_ARROW_SCHEMA = pa.schema(list(INTERACTION_TYPES.items()))

ProgressCallback = Callable[[int, int, int], None]  # bytes done, bytes total, rows read

DOMAINS = (DOMAIN_VIDEO_ON_DEMAND,)  # the domain dataset groups `prepare` writes for


class PrepareError(Exception):
    """Preparing cannot produce a dataset (message says why, for the user)."""


@dataclass(frozen=True)
class PrepareOptions:
    """Everything `prepare` needs to know."""

    watch_log: Path
    out_dir: Path
    items: Path | None = None
    threshold: float = DEFAULT_THRESHOLD
    max_event_value: float = DEFAULT_MAX_EVENT_VALUE
    log_format: WatchLogFormat = field(default_factory=WatchLogFormat)
    catalog_format: CatalogFormat = field(default_factory=CatalogFormat)
    rejects_file: Path | None = None
    item_rejects_file: Path | None = None
    domain: str | None = None  # None: a custom dataset group; or one of DOMAINS

    @property
    def event_names(self) -> tuple[str, str]:
        """(watched, clicked) as this dataset names them."""
        if self.domain == DOMAIN_VIDEO_ON_DEMAND:
            return VOD_EVENT_WATCH, VOD_EVENT_CLICK
        return EVENT_WATCHED, EVENT_CLICKED


@dataclass
class PrepareResult:
    """Counts of one run; `rows_read == written + rejected + duplicates` always."""

    rows_read: int = 0
    written: int = 0
    rejected: int = 0
    duplicates: int = 0
    watched: int = 0
    rewatched: int = 0
    capped: int = 0
    users: int = 0
    items: int = 0
    repeat_users: int = 0  # users with 2 or more interactions
    unknown_item_rows: int = 0  # interactions whose item is not in the catalog
    catalog_rows: int = 0
    catalog_items: int = 0
    catalog_rejected: int = 0
    rejects: RejectLog | None = None
    catalog_rejects: RejectLog | None = None
    warnings: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    event_names: tuple[str, str] = (EVENT_WATCHED, EVENT_CLICKED)

    def summary(self) -> str:
        """The one closing line."""
        watched, clicked = self.event_names
        text = (
            f"read {self.rows_read:,} = written {self.written:,} + rejected "
            f"{self.rejected:,} + duplicates {self.duplicates:,}; "
            f"{self.watched:,} {watched}, {self.written - self.watched:,} {clicked}; "
            f"{self.users:,} users, {self.items:,} items"
        )
        if self.catalog_rows:
            text += (
                f"; catalog: read {self.catalog_rows:,} = written {self.catalog_items:,} "
                f"+ rejected {self.catalog_rejected:,}"
            )
        return text


class _Tally:
    """Distinct users and items, and users seen at least twice, in bounded memory."""

    def __init__(self) -> None:
        self.users = CountedSet(cap=2)
        self.items = CountedSet(cap=1)

    def add(self, user_hashes: np.ndarray, item_hashes: np.ndarray) -> None:
        """Count one block of written rows."""
        self.users.add(user_hashes)
        self.items.add(item_hashes)


def prepare(options: PrepareOptions, progress: ProgressCallback | None = None) -> PrepareResult:
    """Run the whole preparation; raises PrepareError (or WatchLogError) when it cannot."""
    if options.domain is not None and options.domain not in DOMAINS:
        raise PrepareError(
            f"unknown domain {options.domain!r}: expected one of {', '.join(DOMAINS)}"
        )
    out = options.out_dir
    out.mkdir(parents=True, exist_ok=True)
    result = PrepareResult(event_names=options.event_names)

    catalog_ids: HashSet | None = None
    if options.items is not None:
        catalog_ids = _prepare_catalog(options, result)

    reader = WatchLogReader(options.watch_log, options.log_format, options.rejects_file)
    result.rejects = reader.rejects
    _prepare_interactions(options, reader, result, catalog_ids, progress)
    vod = options.domain == DOMAIN_VIDEO_ON_DEMAND
    schema = vod_interactions_schema() if vod else interactions_schema()
    write_schema(schema, out / INTERACTIONS_SCHEMA_FILE)
    result.files += [out / INTERACTIONS_FILE, out / INTERACTIONS_SCHEMA_FILE]
    meta_file = out / DATASET_META_FILE
    if options.domain is not None:
        _write_json({"domain": options.domain}, meta_file)
        result.files.append(meta_file)
    elif meta_file.is_file():  # left by a domain run: these files are custom now
        meta_file.unlink()
    result.warnings += _minimum_data_warnings(result)
    for warning in result.warnings:
        log.warning(warning)
    return result


def _prepare_catalog(options: PrepareOptions, result: PrepareResult) -> HashSet:
    assert options.items is not None
    vod = options.domain == DOMAIN_VIDEO_ON_DEMAND
    catalog = read_catalog(
        options.items,
        options.catalog_format,
        options.item_rejects_file,
        require_categories=vod,
    )
    result.catalog_rejects = catalog.rejects
    result.catalog_rows = catalog.rows_read
    result.catalog_rejected = catalog.rejects.total
    result.catalog_items = catalog.items.num_rows
    if catalog.items.num_rows == 0:
        raise PrepareError(f"{options.items}: no valid catalog row")
    if vod:
        write_items(catalog.items.rename_columns(VOD_ITEM_COLUMNS), options.out_dir / ITEMS_FILE)
        write_schema(vod_items_schema(), options.out_dir / ITEMS_SCHEMA_FILE)
    else:
        write_items(catalog.items, options.out_dir / ITEMS_FILE)
        write_schema(items_schema(), options.out_dir / ITEMS_SCHEMA_FILE)
    result.files += [options.out_dir / ITEMS_FILE, options.out_dir / ITEMS_SCHEMA_FILE]
    ids = HashSet()
    ids.add_sorted_unique(
        distinct_counts(hash_strings(catalog.items.column("ITEM_ID").combine_chunks()))[0]
    )
    return ids


def _prepare_interactions(
    options: PrepareOptions,
    reader: WatchLogReader,
    result: PrepareResult,
    catalog_ids: HashSet | None,
    progress: ProgressCallback | None,
) -> None:
    seen_rows = HashSet(filter_bits=ROW_FILTER_BITS)
    tally = _Tally()
    writer = BackgroundWriter(
        CsvFileWriter(options.out_dir / INTERACTIONS_FILE, INTERACTIONS_ARROW_SCHEMA)
    )
    try:
        for rows in reader:
            if len(rows):
                _write_block(rows, options, writer, seen_rows, tally, catalog_ids, result)
            if progress is not None:
                progress(reader.bytes_read, reader.total_bytes, reader.rows_read)
        result.rows_read = reader.rows_read
        result.rejected = reader.rejects.total
        if result.written == 0:
            raise PrepareError(
                f"{options.watch_log}: no row survived ({result.rows_read:,} read, "
                f"{result.rejected:,} rejected, {result.duplicates:,} duplicates)"
            )
    except BaseException:
        writer.discard()
        raise
    writer.commit()
    user_counts = tally.users.counts()
    result.users = len(user_counts)
    result.repeat_users = int(np.count_nonzero(user_counts >= 2))
    result.items = len(tally.items.counts())


def _write_block(
    rows: ValidRows,
    options: PrepareOptions,
    writer: BackgroundWriter,
    seen_rows: HashSet,
    tally: _Tally,
    catalog_ids: HashSet | None,
    result: PrepareResult,
) -> None:
    user_hash = hash_strings(rows.user)
    item_hash = hash_strings(rows.item)
    row_hash = combine([user_hash, item_hash, rows.timestamp, rows.watch, rows.duration])
    keep = first_occurrences(row_hash, seen_rows)
    if keep is not None:  # some duplicates: keep only the first of each
        result.duplicates += len(rows) - int(np.count_nonzero(keep))
        mask = pa.array(keep)
        rows = ValidRows(
            user=rows.user.filter(mask),
            item=rows.item.filter(mask),
            timestamp=rows.timestamp[keep],
            watch=rows.watch[keep],
            duration=rows.duration[keep],
        )
        user_hash, item_hash = user_hash[keep], item_hash[keep]
        if not len(rows):
            return

    labels = label(
        rows.watch / rows.duration,
        options.threshold,
        options.max_event_value,
        options.event_names if options.domain is not None else None,
    )
    writer.write(
        pa.record_batch(
            [
                rows.user,
                rows.item,
                pa.array(rows.timestamp, pa.int64()),
                labels.event_type,
                pa.array(labels.event_value, pa.float64()),
            ],
            schema=INTERACTIONS_ARROW_SCHEMA,
        )
    )
    result.written += len(rows)
    result.watched += labels.watched
    result.rewatched += labels.rewatched
    result.capped += labels.capped
    tally.add(user_hash, item_hash)
    if catalog_ids is not None:
        result.unknown_item_rows += int(np.count_nonzero(~catalog_ids.contains(item_hash)))


def _write_json(data: dict[str, object], path: Path) -> None:
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _minimum_data_warnings(result: PrepareResult) -> list[str]:
    warnings = []
    if result.written < MIN_INTERACTIONS:
        warnings.append(
            f"only {result.written:,} interactions: Personalize needs at least "
            f"{MIN_INTERACTIONS:,} to train"
        )
    if result.repeat_users < MIN_REPEAT_USERS:
        warnings.append(
            f"only {result.repeat_users:,} users have 2 or more interactions: Personalize "
            f"needs at least {MIN_REPEAT_USERS}"
        )
    elif result.users and result.repeat_users < MIN_REPEAT_USER_SHARE * result.users:
        warnings.append(
            f"only {result.repeat_users:,} of {result.users:,} users have 2 or more "
            "interactions: Personalize needs at least 1% of users to"
        )
    if result.unknown_item_rows:
        warnings.append(
            f"{result.unknown_item_rows:,} interactions refer to items missing from the "
            "catalog (their recommendations will have no title or URL)"
        )
    return warnings
