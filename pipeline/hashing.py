"""64-bit row fingerprints and a memory-bounded set of them, for streaming de-duplication.

A log of ten million rows cannot be kept in memory to find exact duplicates, but one
64-bit fingerprint per distinct row can (80 MB for 10M rows). Strings are padded to
whole 8-byte words by Arrow and mixed word by word with numpy, which is fast for the
short ids of a watch log; row fingerprints mix the column hashes; splitmix64 finishes
each. With 10M distinct rows the chance of any false duplicate is about 3e-6.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_ROUND_MULTIPLIER = np.uint64(0xD6E8FEB86659FD93)
_SHORT_BYTES = 64  # strings up to this long are hashed together; longer ones apart


def splitmix64(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijective avalanche mix of uint64 values."""
    z = values.astype(np.uint64, copy=True)
    z += _GOLDEN
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def _mix_in(state: np.ndarray, column: np.ndarray) -> np.ndarray:
    """One cheap round: bijective in the state for a fixed column value, and vice versa."""
    state = state ^ column
    state *= _ROUND_MULTIPLIER
    state ^= state >> np.uint64(32)
    return state


def hash_strings(array: pa.Array) -> np.ndarray:
    """One uint64 hash per string of a (non-chunked) string array; nulls hash like "".

    A string's bytes are read as little-endian 8-byte words (the last one zero-padded)
    and mixed in after its length, so the hash of a string never depends on the other
    strings in the array.
    """
    n = len(array)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    text = pc.fill_null(array, "")
    lengths = pc.binary_length(text).to_numpy().astype(np.int64)
    short = lengths <= _SHORT_BYTES
    if short.all():
        return _hash_padded(text, lengths)
    # Pad the few long strings on their own, not every string to the longest one.
    hashes = np.empty(n, dtype=np.uint64)
    for subset in (np.flatnonzero(short), np.flatnonzero(~short)):
        if len(subset):
            hashes[subset] = _hash_padded(text.take(pa.array(subset)), lengths[subset])
    return hashes


def _hash_padded(text: pa.Array, lengths: np.ndarray) -> np.ndarray:
    width = max(8, -(-int(lengths.max()) // 8) * 8)
    padded = pc.ascii_rpad(text, width=width, padding="\x00")  # pads bytes, not characters
    offsets = np.frombuffer(padded.buffers()[1], dtype=np.int32, count=padded.offset + 1)
    first = int(offsets[padded.offset])
    data = np.frombuffer(padded.buffers()[2], dtype=np.uint8, count=first + len(padded) * width)
    words = data[first:].view(np.uint64).reshape(len(padded), width // 8)
    word_count = -(-lengths // 8)
    state = _mix_in(np.full(len(lengths), _GOLDEN, dtype=np.uint64), lengths.astype(np.uint64))
    for index in range(words.shape[1]):
        mixed = _mix_in(state, words[:, index])
        used = word_count > index
        state = mixed if used.all() else np.where(used, mixed, state)
    return splitmix64(state)


def combine(columns: list[np.ndarray]) -> np.ndarray:
    """Mix several equally long uint64/int64/float64 columns into one uint64 row hash.

    Each column enters through a cheap bijective round (so rows that differ in one
    column never collide), and splitmix64 finishes the mix.
    """
    state = np.full(len(columns[0]), _GOLDEN, dtype=np.uint64)
    for column in columns:
        if column.dtype.kind == "f":
            column = (column + 0.0).view(np.uint64)  # -0.0 and 0.0 hash alike
        state = _mix_in(state, column.astype(np.uint64, copy=False))
    return splitmix64(state)


def distinct_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and how often each occurs (np.unique, but sort-based and fast)."""
    ordered = np.sort(values)
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    counts = np.diff(np.append(starts, len(ordered)))
    return ordered[starts], counts


class HashSet:
    """A growing set of uint64 kept as a few sorted runs (a log-structured merge).

    Membership tests are binary searches in each run; adding a run merges runs of
    similar size, so total work is O(n log n) and memory is 8 bytes per member.

    With `filter_bits`, a one-byte-per-slot presence filter indexed by the top bits of
    the hash answers "certainly absent" for most new values without any search (values
    are hashes, so their top bits are uniform); only the few whose slot is taken are
    looked up. 2**27 slots cost 128 MiB and pass about 7% of new values at 10M members.
    """

    def __init__(self, filter_bits: int | None = None) -> None:
        self._runs: list[np.ndarray] = []
        self._filter: np.ndarray | None = None
        self._shift = np.uint64(0)
        if filter_bits is not None:
            self._filter = np.zeros(1 << filter_bits, dtype=np.bool_)
            self._shift = np.uint64(64 - filter_bits)

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def contains(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask: which of `values` are members."""
        if self._filter is None:
            return self._search(values)
        found = np.zeros(len(values), dtype=bool)
        maybe = np.flatnonzero(self._filter[values >> self._shift])
        if len(maybe):
            found[maybe] = self._search(values[maybe])
        return found

    def _search(self, values: np.ndarray) -> np.ndarray:
        found = np.zeros(len(values), dtype=bool)
        for run in self._runs:
            index = np.searchsorted(run, values)
            index[index == len(run)] = 0
            found |= run[index] == values
        return found

    def add_sorted_unique(self, values: np.ndarray) -> None:
        """Add sorted, distinct values that are not members yet."""
        if not len(values):
            return
        if self._filter is not None:
            self._filter[values >> self._shift] = True
        self._runs.append(values)
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            newer = self._runs.pop()
            older = self._runs.pop()
            # Timsort ("stable") sees two sorted runs and merges them in linear time.
            self._runs.append(np.sort(np.concatenate([older, newer]), kind="stable"))


class CountedSet:
    """Distinct uint64 values with how often each was added (capped), in sorted runs.

    For statistics that never need a membership test (how many distinct users, how many
    with two or more rows): blocks are merged by sorting, never searched, and each
    distinct value costs 9 bytes.
    """

    def __init__(self, cap: int = 255) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []
        self._cap = cap

    def add(self, values: np.ndarray) -> None:
        """Count every value of `values` (in any order, repeats allowed)."""
        if not len(values):
            return
        distinct, counts = distinct_counts(values)
        self._runs.append((distinct, np.minimum(counts, self._cap).astype(np.uint8)))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            newer = self._runs.pop()
            self._runs.append(self._merge(self._runs.pop(), newer))

    def _merge(
        self, older: tuple[np.ndarray, np.ndarray], newer: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        values = np.concatenate([older[0], newer[0]])
        counts = np.concatenate([older[1], newer[1]]).astype(np.int64)
        order = np.argsort(values, kind="stable")  # two sorted runs: a linear merge
        values, counts = values[order], counts[order]
        starts = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
        summed = np.add.reduceat(counts, starts)
        return values[starts], np.minimum(summed, self._cap).astype(np.uint8)

    def counts(self) -> np.ndarray:
        """How often each distinct value was added (capped), merging all runs."""
        while len(self._runs) > 1:
            newer = self._runs.pop()
            self._runs.append(self._merge(self._runs.pop(), newer))
        return self._runs[0][1] if self._runs else np.zeros(0, dtype=np.uint8)


def first_occurrences(hashes: np.ndarray, seen: HashSet) -> np.ndarray | None:
    """Mask of rows whose hash is neither earlier in `hashes` nor in `seen`; adds them.

    Returns None when every row is new (the common case, found with one fast sort).
    """
    ordered = np.sort(hashes)
    repeats = ordered[1:] == ordered[:-1]
    if not repeats.any():
        known = seen.contains(ordered)
        if not known.any():
            seen.add_sorted_unique(ordered)
            return None
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    first_in_block = np.ones(len(ordered), dtype=bool)
    first_in_block[1:] = ordered[1:] != ordered[:-1]
    candidates = ordered[first_in_block]
    new = ~seen.contains(candidates)
    seen.add_sorted_unique(candidates[new])
    keep_sorted = np.zeros(len(ordered), dtype=bool)
    keep_sorted[np.flatnonzero(first_in_block)[new]] = True
    keep = np.zeros(len(hashes), dtype=bool)
    keep[order] = keep_sorted
    return keep
