"""The Avro schemas: valid Avro, Personalize's rules, and agreement with the CSV we write."""

from __future__ import annotations

import json
from pathlib import Path

import fastavro
import pytest
from fastavro.validation import validate

from recs.pipeline.dataset import INTERACTION_COLUMNS, ITEM_COLUMNS, read_interactions, read_items
from recs.pipeline.prepare import PrepareOptions, prepare
from recs.pipeline.schemas import NAMESPACE, interactions_schema, items_schema


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A prepared dataset with items."""
    tmp = tmp_path_factory.mktemp("schemas")
    log = tmp / "log.csv"
    log.write_text(
        "user_id,item_id,timestamp,watch_duration,video_duration\n"
        "u1,v1,1700000000,20,30\nu1,v2,1700000001,3,30\n"
    )
    catalog = tmp / "catalog.csv"
    catalog.write_text(
        "item_id,title,duration,categories,url,creation_time\n"
        "v1,A cat,30,pets|comedy,https://b.s3.amazonaws.com/shortVideos/v1.mp4,1699000000\n"
        "v2,,,,,1699000000\n"
    )
    out = tmp / "out"
    prepare(PrepareOptions(watch_log=log, out_dir=out, items=catalog))
    return out


@pytest.mark.parametrize(
    ("file", "name", "columns"),
    [
        ("interactions.schema.json", "Interactions", INTERACTION_COLUMNS),
        ("items.schema.json", "Items", ITEM_COLUMNS),
    ],
)
def test_written_schema_is_avro_in_csv_column_order(dataset, file, name, columns):
    schema = json.loads((dataset / file).read_text())
    fastavro.parse_schema(schema)  # raises on invalid Avro
    assert (schema["type"], schema["name"], schema["namespace"], schema["version"]) == (
        "record", name, NAMESPACE, "1.0",
    )  # fmt: skip
    assert [field["name"] for field in schema["fields"]] == columns
    header = (dataset / file.replace(".schema.json", ".csv")).read_text().splitlines()[0]
    assert header.split(",") == columns


def test_interaction_fields_follow_personalize_rules():
    fields = {f["name"]: f for f in interactions_schema()["fields"]}
    assert fields["USER_ID"]["type"] == fields["ITEM_ID"]["type"] == "string"
    assert fields["TIMESTAMP"]["type"] == "long"
    assert fields["EVENT_TYPE"] == {"name": "EVENT_TYPE", "type": "string"}  # not categorical
    assert fields["EVENT_VALUE"]["type"] == ["float", "null"]


def test_item_fields_follow_personalize_rules():
    fields = {f["name"]: f for f in items_schema()["fields"]}
    assert fields["ITEM_ID"]["type"] == "string"
    assert fields["CATEGORIES"]["categorical"] is True
    assert fields["TITLE"]["textual"] is True
    assert "categorical" not in fields["URL"] and "textual" not in fields["URL"]
    assert fields["CREATION_TIMESTAMP"]["type"] == "long"
    assert sum(1 for f in fields.values() if f.get("textual")) == 1  # Personalize allows one


def test_every_written_row_validates_against_its_schema(dataset):
    for rows, schema in (
        (read_interactions(dataset).to_pylist(), interactions_schema()),
        (read_items(dataset).to_pylist(), items_schema()),
    ):
        parsed = fastavro.parse_schema(schema)
        for row in rows:
            record = {k: (None if v == "" else v) for k, v in row.items()}
            assert validate(record, parsed, raise_errors=True)
