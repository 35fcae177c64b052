"""Request validation with Personalize's limits; each failure names the request field."""

from __future__ import annotations

from collections.abc import Sequence

from backends.base import DEFAULT_NUM_RESULTS, MAX_ID_LENGTH, MAX_NUM_RESULTS, MAX_RERANK_ITEMS
from backends.errors import InvalidRequestError


def num_results(value: int) -> int:
    """0 means the default (25); 1..500 pass; anything else is rejected."""
    if value == 0:
        return DEFAULT_NUM_RESULTS
    if not 1 <= value <= MAX_NUM_RESULTS:
        raise InvalidRequestError(
            "num_results", f"must be between 1 and {MAX_NUM_RESULTS} (or 0 for the default)"
        )
    return value


def required_id(field: str, value: str) -> str:
    """A non-empty id of at most 256 characters."""
    if not value:
        raise InvalidRequestError(field, "is required")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidRequestError(field, f"is longer than {MAX_ID_LENGTH} characters")
    return value


def optional_id(field: str, value: str) -> str | None:
    """An id that may be empty (meaning absent); otherwise as `required_id`."""
    return required_id(field, value) if value else None


def item_ids(values: Sequence[str]) -> list[str]:
    """1 to 500 ids to re-rank, each valid; duplicates kept for the backend to collapse."""
    if not values:
        raise InvalidRequestError("item_ids", "must hold at least one id")
    if len(values) > MAX_RERANK_ITEMS:
        raise InvalidRequestError("item_ids", f"holds more than {MAX_RERANK_ITEMS} ids")
    for position, value in enumerate(values):
        required_id(f"item_ids[{position}]", value)
    return list(values)
