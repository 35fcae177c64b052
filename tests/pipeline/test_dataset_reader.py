"""Reading a prepared dataset: typed columns, quoted headers, clear errors."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from recs.pipeline.dataset import DatasetError, read_interactions, read_items


def test_quoted_header_and_types(tmp_path: Path) -> None:
    (tmp_path / "interactions.csv").write_text(
        '"USER_ID","ITEM_ID","TIMESTAMP","EVENT_TYPE","EVENT_VALUE"\n"007","42",1700000000,watched,0.75\n'
    )
    table = read_interactions(tmp_path)
    assert table.schema.field("USER_ID").type == pa.string()
    assert table.column("USER_ID").to_pylist() == ["007"], "ids stay strings, leading zeros kept"
    assert table.column("TIMESTAMP").type == pa.int64()


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    (tmp_path / "interactions.csv").write_text("USER_ID,TIMESTAMP\nu,1\n")
    with pytest.raises(DatasetError, match="ITEM_ID"):
        read_interactions(tmp_path)


def test_missing_file_and_optional_items(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        read_interactions(tmp_path)
    assert read_items(tmp_path) is None
