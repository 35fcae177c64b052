"""Recommendation ids of the local engine: valid, distinct UUID version 4 strings."""

from __future__ import annotations

import uuid

from recs.backends.local.ids import RecommendationIds


def test_ids_are_canonical_version_4_uuids() -> None:
    ids = RecommendationIds()
    for _ in range(100):
        text = ids.next()
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # lower-case, hyphenated, 36 characters


def test_consecutive_ids_are_distinct() -> None:
    ids = RecommendationIds()
    drawn = [ids.next() for _ in range(10_000)]
    assert len(set(drawn)) == len(drawn)
    assert all(uuid.UUID(text).version == 4 for text in drawn[::997])


def test_instances_draw_different_prefixes() -> None:
    first, second = RecommendationIds().next(), RecommendationIds().next()
    assert first[:24] != second[:24]
    assert first != second


def test_the_counter_wraps_within_the_last_group() -> None:
    # Counting past 12 hex digits wraps to zero instead of growing the id.
    ids = RecommendationIds()
    ids._counter = iter([(1 << 48) - 1, 1 << 48])  # the counter's last value, then one more
    last, wrapped = ids.next(), ids.next()
    assert last.endswith("ffffffffffff") and wrapped.endswith("000000000000")
    assert len(wrapped) == 36 and uuid.UUID(wrapped).version == 4
