"""Amazon Personalize's request limits, checked in one place.

The server checks every request with these before calling any backend, and the
Personalize backend checks again before calling AWS, because botocore enforces no maxima
and the backend may be used without the server (evaluation, scripts).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

from recs.backends.base import (
    MAX_EVENTS,
    MAX_ID_LENGTH,
    MAX_ITEMS_PER_CALL,
    MAX_NUM_RESULTS,
    MAX_RERANK_ITEMS,
    CatalogItem,
    Event,
)
from recs.backends.errors import InvalidRequestError

# personalize-events (../shared/reference/personalize.md section 1.3).
MAX_RECOMMENDATION_ID_LENGTH = 40
MAX_IMPRESSION = 25
MAX_ITEM_PROPERTIES_LENGTH = 32000  # PutItems: `properties`, as JSON
_PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_id(field: str, value: str) -> str:
    """A non-empty id of at most 256 characters; `field` names it in the error."""
    if not value:
        raise InvalidRequestError(field, "is required")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidRequestError(field, f"is longer than {MAX_ID_LENGTH} characters")
    return value


def check_num_results(value: int) -> int:
    """1 to 500 results."""
    if not 1 <= value <= MAX_NUM_RESULTS:
        raise InvalidRequestError("num_results", f"must be between 1 and {MAX_NUM_RESULTS}")
    return value


def check_item_ids(values: Sequence[str]) -> list[str]:
    """1 to 500 ids to re-rank, each a valid id; returned as given (duplicates kept)."""
    if not values:
        raise InvalidRequestError("item_ids", "must hold at least one id")
    if len(values) > MAX_RERANK_ITEMS:
        raise InvalidRequestError("item_ids", f"holds more than {MAX_RERANK_ITEMS} ids")
    ids = list(values)
    # C-level loops: up to 500 ids on every call
    if "" in ids or max(map(len, ids)) > MAX_ID_LENGTH:  # name the first bad one
        for position, value in enumerate(ids):
            check_id(f"item_ids[{position}]", value)
    return ids


def check_events(user_id: str | None, session_id: str, events: Sequence[Event]) -> None:
    """PutEvents' limits: a session id, 1 to 10 events, each with a type, an item and a time."""
    if user_id is not None:
        check_id("user_id", user_id)
    check_id("session_id", session_id)
    if not 1 <= len(events) <= MAX_EVENTS:
        raise InvalidRequestError("events", f"must hold 1 to {MAX_EVENTS} events")
    for k, event in enumerate(events):
        field = f"events[{k}]"
        check_id(f"{field}.event_type", event.event_type)
        check_id(f"{field}.item_id", event.item_id)
        if len(event.event_id) > MAX_ID_LENGTH:
            raise InvalidRequestError(
                f"{field}.event_id", f"is longer than {MAX_ID_LENGTH} characters"
            )
        if not event.sent_at > 0 or not math.isfinite(event.sent_at):
            raise InvalidRequestError(f"{field}.sent_at", "is required")
        if event.event_value is not None and not math.isfinite(event.event_value):
            raise InvalidRequestError(f"{field}.event_value", "must be a finite number")
        if len(event.recommendation_id) > MAX_RECOMMENDATION_ID_LENGTH:
            raise InvalidRequestError(
                f"{field}.recommendation_id",
                f"is longer than {MAX_RECOMMENDATION_ID_LENGTH} characters",
            )
        if len(event.impression) > MAX_IMPRESSION:
            raise InvalidRequestError(
                f"{field}.impression", f"holds more than {MAX_IMPRESSION} ids"
            )
        for position, item in enumerate(event.impression):
            check_id(f"{field}.impression[{position}]", item)


def check_catalog_items(items: Sequence[CatalogItem]) -> None:
    """PutItems' limits: 1 to 10 items, each an id and properties of at most 32,000
    characters as JSON, named like catalog columns (ITEM_ID, TITLE and URL have own fields)."""
    if not 1 <= len(items) <= MAX_ITEMS_PER_CALL:
        raise InvalidRequestError("items", f"must hold 1 to {MAX_ITEMS_PER_CALL} items")
    for k, item in enumerate(items):
        field = f"items[{k}]"
        check_id(f"{field}.item_id", item.item_id)
        for name in item.properties:
            if not _PROPERTY_NAME.fullmatch(name) or name.upper() in ("ITEM_ID", "TITLE", "URL"):
                raise InvalidRequestError(
                    f"{field}.properties.{name}",
                    "must be a catalog column name (letters, digits, _), not ITEM_ID, TITLE or URL",
                )
        size = len(json.dumps({"title": item.title, "url": item.url, **item.properties}))
        if size > MAX_ITEM_PROPERTIES_LENGTH:
            raise InvalidRequestError(
                f"{field}.properties",
                f"take {size} characters as JSON, at most {MAX_ITEM_PROPERTIES_LENGTH}",
            )
