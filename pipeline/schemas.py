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

VIDEO_ON_DEMAND domain (`recs prepare --domain video-on-demand`; Personalize developer
guide, "VIDEO_ON_DEMAND datasets and schemas"): the same record names and namespace, so
provisioning reads them the same way, and:
- Interactions: the same fields. USER_ID, ITEM_ID, TIMESTAMP and EVENT_TYPE are required
  (the event types being `Watch` and `Click`), EVENT_VALUE is a reserved `["float", "null"]`.
- Items: ITEM_ID, GENRES (categorical string) and CREATION_TIMESTAMP are required. GENRES
  takes the categories (same `|`-separated values) and, being required, is not nullable:
  `prepare` rejects a catalog row without categories. DURATION is a reserved float
  (nullable, as the domain allows). TITLE (textual, the one text field) and URL (plain
  string) are free fields, kept as in the custom schema. CATEGORIES is gone: it would
  only repeat GENRES.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from recs.pipeline.dataset import INTERACTION_COLUMNS, ITEM_COLUMNS, VOD_ITEM_COLUMNS

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

VOD_INTERACTIONS_FIELDS: list[dict[str, Any]] = INTERACTIONS_FIELDS

VOD_ITEMS_FIELDS: list[dict[str, Any]] = [
    {"name": "ITEM_ID", "type": "string"},
    {"name": "TITLE", "type": ["string", "null"], "textual": True},
    {"name": "URL", "type": ["string", "null"]},
    {"name": "GENRES", "type": "string", "categorical": True},
    {"name": "DURATION", "type": ["float", "null"]},
    {"name": "CREATION_TIMESTAMP", "type": "long"},
]

# Fields each VIDEO_ON_DEMAND dataset must have (the schema tests check them).
VOD_REQUIRED_FIELDS: dict[str, list[str]] = {
    "Interactions": ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE"],
    "Items": ["ITEM_ID", "GENRES", "CREATION_TIMESTAMP"],
}


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


def vod_interactions_schema() -> dict[str, Any]:
    """The VIDEO_ON_DEMAND Interactions schema matching `interactions.csv` (`Watch`/`Click`)."""
    return _record("Interactions", VOD_INTERACTIONS_FIELDS, INTERACTION_COLUMNS)


def vod_items_schema() -> dict[str, Any]:
    """The VIDEO_ON_DEMAND Items schema matching `items.csv` written with GENRES."""
    return _record("Items", VOD_ITEMS_FIELDS, VOD_ITEM_COLUMNS)


def write_schema(schema: dict[str, Any], path: str | Path) -> None:
    """Write a schema as the JSON text CreateSchema takes (`schema=` argument), atomically."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
