"""What filters see of each user's interactions: the 100 most recent per event type.

Personalize's filters consider "up to 100 interactions per user per event type"
(../shared/reference/personalize.md section 3, "Rules and limits";
https://docs.aws.amazon.com/personalize/latest/dg/filter-expression-guidelines-requirements.html).
Training keeps exactly that window for every user, as (item, event type) pairs, and the
model stores it:

- `recent_indptr` / `recent_items` / `recent_types`: a CSR over users of the distinct
  (item, event type) pairs among each event type's 100 most recent events of the user
  (`recent_types` indexes `event_types`);
- `event_types`: the event type names, lower-cased (filters match them case-insensitively);
- `history_indptr` / `history_indices`: the distinct items of that window, which is what
  the default filter (`EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")`) excludes.

Everything is vectorised (one sort of the events), so it costs a fraction of ALS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Personalize's default window (adjustable there through a quota increase).
INTERACTIONS_PER_EVENT_TYPE = 100


@dataclass(frozen=True)
class RecentInteractions:
    """The window filters see, as CSRs over users (see the module docstring)."""

    event_types: np.ndarray  # unicode, lower-cased
    recent_indptr: np.ndarray  # int64, users + 1
    recent_items: np.ndarray  # int32
    recent_types: np.ndarray  # int16, index into event_types
    history_indptr: np.ndarray  # int64, users + 1
    history_indices: np.ndarray  # int32


def recent_interactions(
    interactions: pa.Table,
    user_codes: np.ndarray,
    item_codes: np.ndarray,
    num_users: int,
    window: int = INTERACTIONS_PER_EVENT_TYPE,
) -> RecentInteractions:
    """Each user's `window` most recent events per event type, as distinct (item, type) pairs.

    `user_codes` / `item_codes` are the rows' dense user and item indices. Events with equal
    timestamps keep their file order (the later row counts as more recent).
    """
    type_codes, event_types = _event_type_codes(interactions)
    times = interactions.column("TIMESTAMP").to_numpy()
    rows = np.arange(len(times))
    # Grouped by (user, type), newest first; ties: the later row first.
    order = np.lexsort((-rows, -times, type_codes, user_codes))
    users, types = user_codes[order], type_codes[order]
    starts = np.r_[True, (users[1:] != users[:-1]) | (types[1:] != types[:-1])]
    index = np.arange(len(order))
    rank = index - np.maximum.accumulate(np.where(starts, index, 0))
    kept = order[rank < window]

    num_types = max(len(event_types), 1)
    num_items = int(item_codes.max(initial=-1)) + 1
    keys = np.unique(
        (user_codes[kept].astype(np.int64) * num_items + item_codes[kept]) * num_types
        + type_codes[kept]
    )  # sorted by user, then item, then type
    pair_users = keys // (num_items * num_types)
    recent_items = ((keys // num_types) % num_items).astype(np.int32)
    recent_types = (keys % num_types).astype(np.int16)
    recent_indptr = _indptr(pair_users, num_users)

    item_keys = np.unique(keys // num_types)
    history_users = item_keys // num_items
    return RecentInteractions(
        event_types=event_types,
        recent_indptr=recent_indptr,
        recent_items=recent_items,
        recent_types=recent_types,
        history_indptr=_indptr(history_users, num_users),
        history_indices=(item_keys % num_items).astype(np.int32),
    )


def _event_type_codes(interactions: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Each row's event type code, and the lower-cased names the codes index."""
    if "EVENT_TYPE" not in interactions.column_names:
        return np.zeros(interactions.num_rows, dtype=np.int64), np.array([""], dtype=str)
    lowered = pc.utf8_lower(pc.fill_null(interactions.column("EVENT_TYPE"), ""))
    encoded = pc.dictionary_encode(lowered.combine_chunks())
    names = np.array(encoded.dictionary.to_pylist() or [""], dtype=str)
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), names


def _indptr(sorted_rows: np.ndarray, num_rows: int) -> np.ndarray:
    counts = np.bincount(sorted_rows, minlength=num_rows)
    return np.r_[0, np.cumsum(counts)].astype(np.int64)
