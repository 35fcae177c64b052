"""Writing prepared datasets (the `pipeline.dataset` format) from in-memory tables.

Split outputs and converted public datasets are written exactly like `recs prepare`
output, so they can be trained with `recs train --data DIR` or uploaded to Personalize.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from recs.pipeline.dataset import (
    INTERACTION_COLUMNS,
    INTERACTION_TYPES,
    INTERACTIONS_FILE,
    INTERACTIONS_SCHEMA_FILE,
    ITEM_COLUMNS,
    ITEMS_FILE,
    ITEMS_SCHEMA_FILE,
)
from recs.pipeline.schemas import interactions_schema, items_schema, write_schema


def write_interactions(table: pa.Table, out_dir: str | Path) -> Path:
    """Write `interactions.csv` (columns in the declared order) and its Avro schema.

    Columns the table lacks (EVENT_TYPE, EVENT_VALUE) are written empty, as the schema
    declares; returns the directory.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = []
    for name in INTERACTION_COLUMNS:
        if name in table.column_names:
            columns.append(table.column(name).cast(INTERACTION_TYPES[name]))
        else:
            columns.append(pa.nulls(table.num_rows, INTERACTION_TYPES[name]))
    ordered = pa.table(columns, names=INTERACTION_COLUMNS)
    write_csv(ordered, out_dir / INTERACTIONS_FILE)
    write_schema(interactions_schema(), out_dir / INTERACTIONS_SCHEMA_FILE)
    return out_dir


def write_items(table: pa.Table, out_dir: str | Path) -> Path:
    """Write `items.csv` (a table with exactly the declared item columns) and its schema."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if table.column_names != ITEM_COLUMNS:
        raise ValueError(f"items: columns {table.column_names} differ from {ITEM_COLUMNS}")
    write_csv(table, out_dir / ITEMS_FILE)
    write_schema(items_schema(), out_dir / ITEMS_SCHEMA_FILE)
    return out_dir


def copy_items(source_dir: str | Path, out_dir: str | Path) -> bool:
    """Copy `items.csv` (and its schema) from a prepared dataset; False when it has none."""
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    if not (source_dir / ITEMS_FILE).is_file():
        return False
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source_dir / ITEMS_FILE, out_dir / ITEMS_FILE)
    if (source_dir / ITEMS_SCHEMA_FILE).is_file():
        shutil.copyfile(source_dir / ITEMS_SCHEMA_FILE, out_dir / ITEMS_SCHEMA_FILE)
    return True


def write_csv(table: pa.Table, path: Path) -> None:
    """Write a table as CSV the way prepared datasets are written."""
    # The header unquoted: `pipeline.dataset` reads header names by splitting on commas.
    options = pacsv.WriteOptions(quoting_style="needed", quoting_header="none")
    pacsv.write_csv(table, path, write_options=options)
