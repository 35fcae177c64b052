"""Row fingerprints and the streaming duplicate set."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from recs.pipeline.hashing import (
    CountedSet,
    HashSet,
    combine,
    distinct_counts,
    first_occurrences,
    hash_strings,
)


def test_string_hash_does_not_depend_on_its_neighbours():
    words = ["a", "a\x00", "", "é", "x" * 65, "y" * 300, "abcdefgh", "abcdefghi"]
    together = hash_strings(pa.array(words))
    alone = np.concatenate([hash_strings(pa.array([w])) for w in words])
    assert together.tolist() == alone.tolist()
    assert len(set(together.tolist())) == len(words)
    assert (
        hash_strings(pa.array([None], pa.string())).tolist()
        == hash_strings(pa.array([""])).tolist()
    )


def test_combine_separates_rows_differing_in_one_column():
    a = combine([np.array([1, 1, 2], np.uint64), np.array([0.5, -0.0, 0.5])])
    b = combine([np.array([1, 1, 2], np.uint64), np.array([0.25, 0.0, 0.5])])
    assert (a != b).tolist() == [True, False, False]


def test_first_occurrences_within_and_across_blocks():
    seen = HashSet()
    assert first_occurrences(np.array([5, 9, 7], np.uint64), seen) is None  # all new
    keep = first_occurrences(np.array([9, 1, 1, 4, 5, 4], np.uint64), seen)
    assert keep.tolist() == [False, True, False, True, False, False]
    assert len(seen) == 5


@pytest.mark.parametrize("filter_bits", [None, 4])
def test_hash_set_membership_survives_merges(filter_bits):
    seen = HashSet(filter_bits=filter_bits)
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2**63, size=5000).astype(np.uint64)
    for chunk in np.array_split(values, 13):
        fresh, _ = distinct_counts(chunk)
        seen.add_sorted_unique(fresh[~seen.contains(fresh)])
    assert seen.contains(values).all()
    assert not seen.contains(values + np.uint64(1)).any()
    assert len(seen) == len(np.unique(values))


def test_distinct_counts():
    values, counts = distinct_counts(np.array([3, 1, 3, 3, 2], np.uint64))
    assert values.tolist() == [1, 2, 3]
    assert counts.tolist() == [1, 1, 3]


def test_counted_set_counts_across_blocks_with_a_cap():
    counted = CountedSet(cap=2)
    for block in ([5, 1, 5], [2], [1], [7, 7, 7, 7], [9]):
        counted.add(np.array(block, np.uint64))
    assert counted.counts().tolist() == [2, 1, 2, 2, 1]  # values 1, 2, 5, 7, 9
