"""Amazon Personalize's request limits, checked in one place.

The server checks every request with these before calling any backend, and the
Personalize backend checks again before calling AWS, because botocore enforces no maxima
and the backend may be used without the server (evaluation, scripts).
"""

from __future__ import annotations

from collections.abc import Sequence

from recs.backends.base import MAX_ID_LENGTH, MAX_NUM_RESULTS, MAX_RERANK_ITEMS
from recs.backends.errors import InvalidRequestError


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
    if not all(0 < len(value) <= MAX_ID_LENGTH for value in ids):  # name the first bad one
        for position, value in enumerate(ids):
            check_id(f"item_ids[{position}]", value)
    return ids
