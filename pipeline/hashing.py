"""64-bit row fingerprints and a memory-bounded set of them, for streaming de-duplication.

A log of ten million rows cannot be kept in memory to find exact duplicates, but one
64-bit fingerprint per distinct row can (80 MB for 10M rows). Strings are hashed with
tabulation hashing over (byte position, byte value), which is fast to vectorise with
numpy and has no weak inputs; row fingerprints mix the column hashes with splitmix64.
With 10M distinct rows the chance of any false duplicate is about 3e-6.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_MAX_POSITION = 1024  # byte positions hashed individually; later bytes wrap around
_TABLE = np.random.default_rng(0x5EED_CAFE).integers(
    0, np.iinfo(np.uint64).max, size=(_MAX_POSITION, 256), dtype=np.uint64, endpoint=True
)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_ROUND_MULTIPLIER = np.uint64(0xD6E8FEB86659FD93)


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


_PADDED_MAX_BYTES = 64


def hash_strings(array: pa.Array) -> np.ndarray:
    """One uint64 hash per string of a (non-chunked) string array; nulls hash like ""."""
    if len(array) == 0:
        return np.zeros(0, dtype=np.uint64)
    lengths = pc.binary_length(array)
    longest = pc.max(lengths).as_py() or 0
    if longest <= _PADDED_MAX_BYTES:
        return _hash_short_strings(array, longest)
    return _hash_strings_tabulated(array)


def _hash_short_strings(array: pa.Array, longest: int) -> np.ndarray:
    """Ids are short: pad each to a whole number of 8-byte words and mix the words.

    Padding bytes are zeros; mixing in the length keeps "a" and "a\0" apart.
    """
    width = max(8, -(-longest // 8) * 8)
    text = pc.fill_null(array, "")
    lengths = pc.binary_length(text).to_numpy().astype(np.uint64)
    padded = pc.ascii_rpad(text, width=width, padding="\x00")  # pads bytes, not characters
    if isinstance(padded, pa.ChunkedArray):
        padded = padded.combine_chunks()
    offsets = np.frombuffer(padded.buffers()[1], dtype=np.int32, count=padded.offset + 2)
    first = int(offsets[padded.offset])
    data = np.frombuffer(padded.buffers()[2], dtype=np.uint8, count=first + len(padded) * width)
    words = data[first:].view(np.uint64).reshape(len(padded), width // 8)
    return combine([lengths, *(words[:, i] for i in range(words.shape[1]))])


def _hash_strings_tabulated(array: pa.Array) -> np.ndarray:
    """Any strings: tabulation hashing over (position, byte)."""
    if array.type == pa.large_string():
        offset_type = np.int64
    else:
        array = array.cast(pa.string())
        offset_type = np.int32
    n = len(array)
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offset_type, count=array.offset + n + 1)
    offsets = offsets[array.offset :].astype(np.int64)
    if array.null_count:
        valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        lengths = np.where(valid, np.diff(offsets), 0)
    else:
        lengths = np.diff(offsets)
    starts = offsets[:-1]
    total = int(lengths.sum())
    if total:
        data = np.frombuffer(buffers[2], dtype=np.uint8)
        # Byte indices of every string, and each byte's position inside its string.
        row_of_byte = np.repeat(np.arange(n), lengths)
        first_byte = np.cumsum(lengths) - lengths
        position = np.arange(total, dtype=np.int64) - first_byte[row_of_byte]
        tokens = _TABLE[position % _MAX_POSITION, data[starts[row_of_byte] + position]]
        sums = np.zeros(total + 1, dtype=np.uint64)
        np.cumsum(tokens, out=sums[1:])
        ends = first_byte + lengths
        hashes = sums[ends] - sums[first_byte]
    else:
        hashes = np.zeros(n, dtype=np.uint64)
    return splitmix64(hashes ^ (lengths.astype(np.uint64) * _GOLDEN))


def combine(columns: list[np.ndarray]) -> np.ndarray:
    """Mix several equally long uint64/int64/float64 columns into one uint64 row hash.

    Each column enters through a cheap bijective multiply-xorshift round (so rows that
    differ in one column never collide), and splitmix64 finishes the mix.
    """
    result = np.full(len(columns[0]), _GOLDEN, dtype=np.uint64)
    for column in columns:
        if column.dtype.kind == "f":
            column = (column + 0.0).view(np.uint64)  # -0.0 and 0.0 hash alike
        result ^= column.astype(np.uint64, copy=False)
        result *= _ROUND_MULTIPLIER
        result ^= result >> np.uint64(32)
    return splitmix64(result)


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
    """

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def contains(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask: which of `values` are members."""
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
        self._runs.append(values)
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            newer = self._runs.pop()
            older = self._runs.pop()
            self._runs.append(np.sort(np.concatenate([older, newer])))


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
