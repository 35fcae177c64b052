"""Writing prepared datasets the way Personalize imports them, atomically.

Personalize wants an unquoted header row; Arrow's writer would quote it, so the header
is written by hand and Arrow writes the rows (strings quoted, which CSV readers and
Personalize accept). Files are written under a temporary name and renamed when
complete, because other processes (the server, training) may read the dataset
directory at any time and must never see half a file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

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


class CsvFileWriter:
    """Streams record batches into a CSV file that appears only when `commit()` is called."""

    def __init__(self, path: str | Path, schema: pa.Schema) -> None:
        self.path = Path(path)
        self._temporary = self.path.with_name(f".{self.path.name}.partial")
        self._sink = pa.OSFile(str(self._temporary), "wb")
        self._sink.write((",".join(schema.names) + "\n").encode("utf-8"))
        self._writer = pacsv.CSVWriter(
            self._sink, schema, write_options=pacsv.WriteOptions(include_header=False)
        )
        self.rows = 0

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Append rows."""
        if isinstance(batch, pa.Table):
            self._writer.write_table(batch)
        else:
            self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def commit(self) -> None:
        """Finish the file and move it into place."""
        self._close()
        os.replace(self._temporary, self.path)

    def discard(self) -> None:
        """Abandon the file; an existing file at `path` is left untouched."""
        self._close()
        self._temporary.unlink(missing_ok=True)

    def _close(self) -> None:
        if not self._sink.closed:
            self._writer.close()
            self._sink.close()

    def __enter__(self) -> CsvFileWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


class BackgroundWriter:
    """Hands batches to a `CsvFileWriter` in another thread, so formatting CSV text
    overlaps with preparing the next batch (Arrow releases the GIL while writing).

    At most `depth` batches wait, which bounds memory; errors surface on the next call.
    """

    def __init__(self, writer: CsvFileWriter, depth: int = 2) -> None:
        self.writer = writer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="csv-writer")
        self._pending: deque[Future[None]] = deque()
        self._depth = depth

    def write(self, batch: pa.RecordBatch) -> None:
        """Queue rows for writing; blocks while `depth` batches are already waiting."""
        while len(self._pending) >= self._depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self.writer.write, batch))

    def _drain(self) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def commit(self) -> None:
        """Wait for queued rows, then finish the file."""
        self._drain()
        self.writer.commit()

    def discard(self) -> None:
        """Abandon the file."""
        # The file is being thrown away: an error writing it no longer matters.
        with contextlib.suppress(Exception):
            self._drain()
        self.writer.discard()


def write_csv(table: pa.Table, path: str | Path) -> None:
    """Write a whole table as a CSV file, atomically."""
    with CsvFileWriter(path, table.schema) as writer:
        writer.write(table)


def write_interactions(table: pa.Table, out_dir: str | Path) -> Path:
    """Write `interactions.csv` (columns in the declared order) and its Avro schema.

    Split outputs and converted public datasets are written exactly like `recs prepare`
    output, so they can be trained with `recs train --data DIR` or uploaded to Personalize.
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
    write_csv(pa.table(columns, names=INTERACTION_COLUMNS), out_dir / INTERACTIONS_FILE)
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
    for name in (ITEMS_FILE, ITEMS_SCHEMA_FILE):
        if (source_dir / name).is_file():
            temporary = out_dir / f".{name}.partial"
            shutil.copyfile(source_dir / name, temporary)
            os.replace(temporary, out_dir / name)
    return True
