"""The prepared dataset: Amazon Personalize's bulk-import CSV format, our one interchange format.

`recs prepare` writes it, Personalize imports it, the local engine trains on it. A
prepared dataset directory holds:

- `interactions.csv`  USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE
- `interactions.schema.json`  its Avro schema, as CreateSchema accepts it
- `items.csv` (optional)  ITEM_ID,TITLE,URL,CATEGORIES,DURATION,CREATION_TIMESTAMP
- `items.schema.json` (optional)
- `dataset.json` (only for a domain dataset group, `recs prepare --domain`):
  `{"domain": "VIDEO_ON_DEMAND"}`, the domain the files and schemas are for. Without it
  the files are for a custom dataset group.

In the VIDEO_ON_DEMAND domain (`--domain video-on-demand`) the event types are `Watch` and
`Click` and items.csv has GENRES where the custom files have CATEGORIES
(`ITEM_ID,TITLE,URL,GENRES,DURATION,CREATION_TIMESTAMP`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

INTERACTIONS_FILE = "interactions.csv"
INTERACTIONS_SCHEMA_FILE = "interactions.schema.json"
ITEMS_FILE = "items.csv"
ITEMS_SCHEMA_FILE = "items.schema.json"

DATASET_META_FILE = "dataset.json"

EVENT_WATCHED = "watched"
EVENT_CLICKED = "clicked"

# Personalize's VIDEO_ON_DEMAND domain: its name as CreateDatasetGroup and CreateSchema take
# it, and its event types (a view above the threshold is `Watch`, any other `Click`).
DOMAIN_VIDEO_ON_DEMAND = "VIDEO_ON_DEMAND"
VOD_EVENT_WATCH = "Watch"
VOD_EVENT_CLICK = "Click"

INTERACTION_TYPES: dict[str, pa.DataType] = {
    "USER_ID": pa.string(),
    "ITEM_ID": pa.string(),
    "TIMESTAMP": pa.int64(),
    "EVENT_TYPE": pa.string(),
    "EVENT_VALUE": pa.float64(),
}
INTERACTION_COLUMNS = list(INTERACTION_TYPES)

ITEM_TYPES: dict[str, pa.DataType] = {
    "ITEM_ID": pa.string(),
    "TITLE": pa.string(),
    "URL": pa.string(),
    "CATEGORIES": pa.string(),
    "DURATION": pa.float64(),
    "CREATION_TIMESTAMP": pa.int64(),
}
ITEM_COLUMNS = list(ITEM_TYPES)

# VIDEO_ON_DEMAND items: the same columns, with the categories under the required GENRES.
VOD_ITEM_TYPES: dict[str, pa.DataType] = {
    ("GENRES" if name == "CATEGORIES" else name): kind for name, kind in ITEM_TYPES.items()
}
VOD_ITEM_COLUMNS = list(VOD_ITEM_TYPES)
_READ_ITEM_TYPES = {**ITEM_TYPES, **VOD_ITEM_TYPES}


class DatasetError(ValueError):
    """A prepared dataset is missing or malformed; the message names the file and column."""


def read_interactions(data_dir_or_file: str | Path) -> pa.Table:
    """Read `interactions.csv` (a dataset dir or a file in its format, such as exported
    events) with its declared column types."""
    path = Path(data_dir_or_file)
    if not path.is_file() and path.suffix.lower() != ".csv":  # a dataset dir, maybe missing
        path = path / INTERACTIONS_FILE
    return _read_typed_csv(path, INTERACTION_TYPES, required=["USER_ID", "ITEM_ID", "TIMESTAMP"])


def read_items(data_dir_or_file: str | Path) -> pa.Table | None:
    """Read `items.csv` (a dataset dir or the file itself); None when a dataset has no items."""
    path = Path(data_dir_or_file)
    if path.is_dir():
        path = path / ITEMS_FILE
        if not path.exists():
            return None
    return _read_typed_csv(path, _READ_ITEM_TYPES, required=["ITEM_ID"])


def read_domain(data_dir: str | Path) -> str | None:
    """The Personalize domain a prepared dataset is for (`DOMAIN_VIDEO_ON_DEMAND`), from its
    `dataset.json`; None for a custom dataset group (no such file, or no domain in it)."""
    path = Path(data_dir) / DATASET_META_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read ({exc.__class__.__name__})") from exc
    domain = meta.get("domain") if isinstance(meta, dict) else None
    if domain is not None and not isinstance(domain, str):
        raise DatasetError(f"{path}: domain must be a string, not {domain!r}")
    return domain


def encode_ids(table: pa.Table, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Dense int32 codes for an id column and the ids themselves, sorted ascending.

    Sorted ids make a model or a split independent of row order and give a deterministic
    tie-break (by id) wherever scores are equal. An empty id is a DatasetError naming the
    column.
    """
    # One chunk, encoded once: unifying the dictionaries of a CSV read in hundreds of chunks
    # costs several times the encoding itself.
    encoded = pc.dictionary_encode(table.column(column).combine_chunks())
    dictionary = encoded.dictionary
    if pc.any(pc.equal(pc.utf8_length(dictionary), 0)).as_py():
        raise DatasetError(f"interactions: column {column} holds empty ids")
    order = pc.sort_indices(dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    codes = encoded.indices.to_numpy()
    ids = np.asarray(dictionary.take(pa.array(order)).to_pylist(), dtype=np.str_)
    return rank[codes], ids


def _read_typed_csv(path: Path, types: dict[str, pa.DataType], required: list[str]) -> pa.Table:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        with path.open(encoding="utf-8", newline="") as file:
            header = next(csv.reader(file), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read ({exc.__class__.__name__})") from exc
    missing = [c for c in required if c not in header]
    if missing:
        raise DatasetError(f"{path}: header lacks required column(s) {', '.join(missing)}")
    try:
        return pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types={c: t for c, t in types.items() if c in header},
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DatasetError(f"{path}: malformed ({exc})") from exc
