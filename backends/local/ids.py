"""Recommendation ids for the local engine: unique, UUID-shaped, cheap.

Every answer carries an id (Personalize's recommendationId) that callers log and send back
with their events. `uuid.uuid4()` per answer (16 random bytes from the OS, a UUID object,
its formatting) is a noticeable share of a cheap call's time. These ids draw 74 random bits
once per backend and count in the last 48: unique across processes and restarts for all
practical purposes, and valid version-4 UUIDs.
"""

from __future__ import annotations

import itertools
import uuid

_COUNTER_BITS = 48  # the last group of a UUID: 12 hex digits
_COUNTER_MASK = (1 << _COUNTER_BITS) - 1


class RecommendationIds:
    """`next()` gives a new id: a random per-instance prefix and a counter."""

    def __init__(self) -> None:
        random_uuid = str(uuid.uuid4())  # version and variant bits already set
        self._prefix = random_uuid[:24]  # "xxxxxxxx-xxxx-4xxx-yxxx-"
        start = int(random_uuid[24:], 16)  # a random start: ids differ from the first one
        self._counter = itertools.count(start)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & _COUNTER_MASK:012x}"
