"""Vectorised parsing of raw CSV text columns into numbers and epoch seconds.

Raw logs are read as text so that one bad value cannot abort a whole block: each parser
returns the parsed values plus masks saying which rows were missing or unparseable, and
the caller turns those masks into rejection reasons. Nothing is coerced or guessed: a
value either parses by the rules below or is reported.

Rules
- Numbers: decimal or scientific notation, surrounding blanks allowed. `nan` and
  `inf` are not numbers here.
- Timestamps: epoch seconds (digits, an optional fraction is truncated), or ISO-8601
  `YYYY-MM-DD[T| ]hh:mm:ss[.fff][Z|±hh:mm]` or a bare date `YYYY-MM-DD`. A time
  without a zone is read as UTC. Fractions of a second are truncated (Personalize
  stores whole seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_NUMBER_RE = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
_EPOCH_RE = r"^\s*[+-]?\d+(\.\d*)?\s*$"
# Captures date and time, drops the fraction, normalises the separator to "T".
_ISO_FRACTION_RE = r"^\s*(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?"
_ISO_FORMATS = ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")

# Seconds per unit of a timestamp column given as a number.
TIMESTAMP_UNITS = {"s": 1, "ms": 1000}


@dataclass(frozen=True)
class Parsed:
    """Values parsed from one text column; `values` is meaningless where a mask is set."""

    values: np.ndarray
    missing: np.ndarray
    invalid: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        """Rows whose value parsed."""
        return ~(self.missing | self.invalid)


def _missing_mask(column: pa.Array, blanks_possible: bool = True) -> np.ndarray:
    """Null (empty in the CSV) or blank-only values."""
    missing = pc.is_null(column)
    if blanks_possible and column.null_count < len(column):
        blank = pc.match_substring_regex(column, r"^\s*$")
        missing = pc.or_kleene(missing, pc.fill_null(blank, False))
    return np.asarray(missing.to_numpy(zero_copy_only=False), dtype=bool)


def parse_float(column: pa.Array) -> Parsed:
    """Parse a text column into float64."""
    column = _as_array(column)
    try:
        numbers = pc.cast(column, pa.float64())
        missing = _missing_mask(column, blanks_possible=False)  # a blank would not cast
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        missing = _missing_mask(column)
        # Slow path: only some values are numbers; keep those, report the rest.
        good = pc.fill_null(pc.match_substring_regex(column, _NUMBER_RE), False)
        kept = pc.if_else(good, pc.utf8_trim_whitespace(column), pa.scalar(None, pa.string()))
        numbers = pc.cast(kept, pa.float64())
    values = numbers.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    invalid = ~missing & ~np.isfinite(values)
    return Parsed(values, missing, invalid)


def parse_epoch_seconds(column: pa.Array, unit: str = "s") -> Parsed:
    """Parse epoch numbers (in `unit`) or ISO-8601 text into int64 epoch seconds."""
    column = _as_array(column)
    per_second = TIMESTAMP_UNITS[unit]
    try:
        # Fast path: every present value is an integer epoch.
        epoch = pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False)
        missing = _missing_mask(column, blanks_possible=False)
        values = np.nan_to_num(epoch.astype(np.float64, copy=False), nan=-1).astype(np.int64)
        if per_second != 1:
            values = values // per_second
        return Parsed(values, missing, np.zeros(len(column), dtype=bool))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        missing = _missing_mask(column)
    values = np.zeros(len(column), dtype=np.int64)
    found = np.zeros(len(column), dtype=bool)

    numeric = pc.fill_null(pc.match_substring_regex(column, _EPOCH_RE), False)
    numeric_np = np.asarray(numeric.to_numpy(zero_copy_only=False), dtype=bool)
    if numeric_np.any():
        kept = pc.if_else(numeric, pc.utf8_trim_whitespace(column), pa.scalar(None, pa.string()))
        as_float = pc.cast(kept, pa.float64()).to_numpy(zero_copy_only=False)
        values[numeric_np] = np.floor(as_float[numeric_np] / per_second).astype(np.int64)
        found |= numeric_np

    rest = ~found & ~missing
    if rest.any():
        text = pc.replace_substring_regex(column, _ISO_FRACTION_RE, r"\1T\2")
        text = pc.utf8_trim_whitespace(text)
        for fmt in _ISO_FORMATS:
            parsed = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
            seconds = pc.cast(pc.cast(parsed, pa.timestamp("s")), pa.int64())
            hit = rest & ~np.asarray(pc.is_null(seconds).to_numpy(zero_copy_only=False), bool)
            if hit.any():
                values[hit] = seconds.to_numpy(zero_copy_only=False)[hit].astype(np.int64)
                found |= hit
                rest &= ~hit
    return Parsed(values, missing, ~found & ~missing)


def _as_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks()
    return column
