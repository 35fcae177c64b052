"""Request validation: the service's defaults on top of Personalize's limits (backends.limits)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from recs.backends.base import DEFAULT_NUM_RESULTS, CatalogItem, Event
from recs.backends.limits import (
    MAX_NUM_RESULTS,
    check_catalog_items,
    check_events,
    check_id,
    check_item_ids,
    check_num_results,
)


def num_results(value: int) -> int:
    """0 means the default (25); 1..500 pass; anything else is rejected."""
    if value == 0:
        return DEFAULT_NUM_RESULTS
    if 1 <= value <= MAX_NUM_RESULTS:  # the common case without a call (the request path)
        return value
    return check_num_results(value)  # raises, naming the field


# A non-empty id of at most 256 characters, under the name the servicer reads best (an
# alias, not a wrapper: one call less on every request).
required_id = check_id


def optional_id(field: str, value: str) -> str | None:
    """An id that may be empty (meaning absent); otherwise as `required_id`."""
    return check_id(field, value) if value else None


# 1 to 500 ids to re-rank, each valid; duplicates kept for the backend to collapse.
item_ids = check_item_ids


def events(user_id: str | None, session_id: str, values: Sequence[Event]) -> None:
    """PutEvents' limits (Personalize's): a session, 1 to 10 events with type, item, time."""
    check_events(user_id, session_id, values)


def catalog_items(values: Sequence[CatalogItem]) -> None:
    """PutItems' limits (Personalize's): 1 to 10 items with ids and bounded properties."""
    check_catalog_items(values)


class FilteredRequest(Protocol):
    """A request message that names a filter (the four recommendation requests)."""

    filter_name: str
    filter_values: Mapping[str, str]
