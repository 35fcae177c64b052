"""Avro schemas of the prepared datasets, exactly as Personalize's CreateSchema accepts them.

Rules followed (Personalize developer guide, "Schemas"; see the project's reference 5.1):
a flat record named after the dataset type, namespace `com.amazonaws.personalize.schema`,
`"version": "1.0"`, fields in the same order as the CSV header.

Interactions: USER_ID and ITEM_ID strings, TIMESTAMP long epoch seconds (all three
required), EVENT_TYPE a plain string (a reserved field, which must not be categorical),
EVENT_VALUE `["float", "null"]` as reserved.

Items:
- ITEM_ID string.
- TITLE `textual`: Personalize extracts features from free text (one textual field).
- URL a plain string, neither `categorical` nor `textual`. Personalize accepts such a
  string field and stores it (so it can come back with recommendations when metadata is
  enabled on a campaign) but does not train on it. That is what a URL deserves: every
  value is unique, so as a category it would only add one useless one-hot feature per
  item, it may exceed the 1,000-character limit on categorical values, and the single
  textual field is better spent on the title.
- CATEGORIES `categorical`, pipe-separated multi-values (e.g. `comedy|pets`).
- DURATION float seconds: numeric fields are used in training as they are.
- CREATION_TIMESTAMP long epoch seconds: reserved; drives item age and exploration.
Metadata fields are nullable (a union with "null") so an item with no categories or no
known duration can still be imported.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from recs.pipeline.dataset import INTERACTION_COLUMNS, ITEM_COLUMNS

NAMESPACE = "com.amazonaws.personalize.schema"

INTERACTIONS_FIELDS: list[dict[str, Any]] = [
    {"name": "USER_ID", "type": "string"},
    {"name": "ITEM_ID", "type": "string"},
    {"name": "TIMESTAMP", "type": "long"},
    {"name": "EVENT_TYPE", "type": "string"},
    {"name": "EVENT_VALUE", "type": ["float", "null"]},
]

ITEMS_FIELDS: list[dict[str, Any]] = [
    {"name": "ITEM_ID", "type": "string"},
    {"name": "TITLE", "type": ["string", "null"], "textual": True},
    {"name": "URL", "type": ["string", "null"]},
    {"name": "CATEGORIES", "type": ["string", "null"], "categorical": True},
    {"name": "DURATION", "type": ["float", "null"]},
    {"name": "CREATION_TIMESTAMP", "type": "long"},
]


def _record(name: str, fields: list[dict[str, Any]], columns: list[str]) -> dict[str, Any]:
    names = [field["name"] for field in fields]
    if names != columns:  # the CSV header and the schema must never drift apart
        raise AssertionError(f"{name} schema fields {names} differ from CSV columns {columns}")
    return {
        "type": "record",
        "name": name,
        "namespace": NAMESPACE,
        "fields": [dict(field) for field in fields],
        "version": "1.0",
    }


def interactions_schema() -> dict[str, Any]:
    """The Interactions schema matching `interactions.csv`."""
    return _record("Interactions", INTERACTIONS_FIELDS, INTERACTION_COLUMNS)


def items_schema() -> dict[str, Any]:
    """The Items schema matching `items.csv`."""
    return _record("Items", ITEMS_FIELDS, ITEM_COLUMNS)


def write_schema(schema: dict[str, Any], path: str | Path) -> None:
    """Write a schema as the JSON text CreateSchema takes (`schema=` argument), atomically."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
