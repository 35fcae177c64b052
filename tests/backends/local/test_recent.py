"""What filters see of each user's interactions (`backends.local.recent`): the `window` most
recent events per event type, as distinct (item, event type) pairs, and the history as the
distinct items of that window."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest

from recs.backends.local.artifacts import LocalModel
from recs.backends.local.recent import INTERACTIONS_PER_EVENT_TYPE, recent_interactions

# One event: (user code, item code, timestamp, event type).
Event = tuple[int, int, int, str]


def events_table(events: list[Event], event_type: bool = True) -> pa.Table:
    """The interactions table of `events`, in this row order (ids derived from the codes)."""
    columns = {
        "USER_ID": pa.array([f"u{user}" for user, _, _, _ in events], pa.string()),
        "ITEM_ID": pa.array([f"i{item}" for _, item, _, _ in events], pa.string()),
        "TIMESTAMP": pa.array([time for _, _, time, _ in events], pa.int64()),
    }
    if event_type:
        columns["EVENT_TYPE"] = pa.array([kind for _, _, _, kind in events], pa.string())
    return pa.table(columns)


def recent_of(events: list[Event], num_users: int, window: int, event_type: bool = True):
    return recent_interactions(
        events_table(events, event_type),
        np.array([user for user, _, _, _ in events], dtype=np.int32),
        np.array([item for _, item, _, _ in events], dtype=np.int32),
        num_users=num_users,
        window=window,
    )


def pairs_of(recent, user: int) -> list[tuple[int, str]]:
    """User's window as (item, event type name) pairs, in stored order."""
    start, stop = recent.recent_indptr[user], recent.recent_indptr[user + 1]
    names = recent.event_types[recent.recent_types[start:stop]].tolist()
    return list(zip(recent.recent_items[start:stop].tolist(), names, strict=True))


def history_of(recent, user: int) -> list[int]:
    start, stop = recent.history_indptr[user], recent.history_indptr[user + 1]
    return recent.history_indices[start:stop].tolist()


def reference(events: list[Event], num_users: int, window: int):
    """The definition, one (user, type) at a time: newest first, a later row before an
    earlier one of the same timestamp, the first `window` events kept."""
    groups: dict[tuple[int, str], list[tuple[int, int, int]]] = defaultdict(list)
    for row, (user, item, time, kind) in enumerate(events):
        groups[user, kind.lower()].append((time, row, item))
    pairs: list[set[tuple[int, str]]] = [set() for _ in range(num_users)]
    for (user, kind), group in groups.items():
        for _, _, item in sorted(group, reverse=True)[:window]:
            pairs[user].add((item, kind))
    return pairs


def test_window_keeps_the_most_recent_events_per_user_and_event_type() -> None:
    events = [
        (0, 0, 10, "watch"),
        (0, 1, 30, "watch"),
        (0, 2, 20, "watch"),
        (0, 3, 5, "click"),  # older than every watch, but the only click: kept
        (1, 4, 1, "watch"),
        (1, 5, 2, "watch"),
        (1, 6, 3, "watch"),
        (1, 7, 4, "click"),
        (1, 8, 5, "click"),
        (1, 9, 6, "click"),
    ]
    recent = recent_of(events, num_users=2, window=2)
    assert sorted(pairs_of(recent, 0)) == [(1, "watch"), (2, "watch"), (3, "click")]
    assert sorted(pairs_of(recent, 1)) == [(5, "watch"), (6, "watch"), (8, "click"), (9, "click")]
    assert history_of(recent, 0) == [1, 2, 3]  # item 0, the oldest watch, fell out
    assert history_of(recent, 1) == [5, 6, 8, 9]


def test_event_types_are_lower_cased_and_matched_per_type() -> None:
    # "Watch", "WATCH" and "watch" are one type: the window of 2 spans all three spellings.
    events = [
        (0, 0, 1, "Watch"),
        (0, 1, 2, "WATCH"),
        (0, 2, 3, "watch"),
        (0, 3, 4, "Click"),
    ]
    recent = recent_of(events, num_users=1, window=2)
    assert sorted(recent.event_types.tolist()) == ["click", "watch"]
    assert sorted(pairs_of(recent, 0)) == [(1, "watch"), (2, "watch"), (3, "click")]
    assert history_of(recent, 0) == [1, 2, 3]


def test_pairs_are_distinct_and_the_window_counts_events() -> None:
    events = [
        (0, 6, 1, "watch"),
        (0, 5, 2, "watch"),
        (0, 5, 3, "watch"),  # the two newest watches are both item 5: item 6 falls out
        (0, 5, 4, "click"),  # the same item under another type: its own pair
        (0, 6, 5, "click"),
    ]
    recent = recent_of(events, num_users=1, window=2)
    assert sorted(pairs_of(recent, 0)) == [(5, "click"), (5, "watch"), (6, "click")]
    assert len(set(pairs_of(recent, 0))) == len(pairs_of(recent, 0))
    assert history_of(recent, 0) == [5, 6]  # distinct items, in order


def test_equal_timestamps_count_the_later_row_as_more_recent() -> None:
    events = [
        (0, 7, 100, "watch"),
        (0, 8, 100, "watch"),
        (0, 9, 100, "watch"),
        (1, 9, 100, "watch"),
        (1, 8, 100, "watch"),
        (1, 7, 100, "watch"),
    ]
    recent = recent_of(events, num_users=2, window=2)
    assert history_of(recent, 0) == [8, 9]  # rows 1 and 2 are the newest
    assert history_of(recent, 1) == [7, 8]  # here rows 4 and 5 hold items 8 and 7


def test_a_table_without_event_type_has_one_type() -> None:
    events = [
        (0, 0, 1, "watch"),
        (0, 1, 2, "click"),  # the types are not in the table: one window for all
        (0, 2, 3, "watch"),
        (1, 3, 1, "watch"),
    ]
    recent = recent_of(events, num_users=2, window=2, event_type=False)
    assert recent.event_types.tolist() == [""]
    assert sorted(pairs_of(recent, 0)) == [(1, ""), (2, "")]
    assert pairs_of(recent, 1) == [(3, "")]
    assert history_of(recent, 0) == [1, 2]


def test_users_without_events_get_empty_rows_and_the_arrays_have_their_dtypes() -> None:
    events = [(1, 0, 1, "watch"), (1, 2, 2, "click"), (3, 1, 1, "watch")]
    recent = recent_of(events, num_users=5, window=2)
    assert recent.recent_indptr.tolist() == [0, 0, 2, 2, 3, 3]
    assert recent.history_indptr.tolist() == [0, 0, 2, 2, 3, 3]
    assert recent.history_indices.tolist() == [0, 2, 1]
    assert recent.recent_indptr.dtype == recent.history_indptr.dtype == np.int64
    assert recent.recent_items.dtype == recent.history_indices.dtype == np.int32
    assert recent.recent_types.dtype == np.int16


def test_a_missing_event_type_is_the_empty_type() -> None:
    table = pa.table(
        {
            "USER_ID": ["u0", "u0", "u0"],
            "ITEM_ID": ["i0", "i1", "i2"],
            "TIMESTAMP": pa.array([1, 2, 3], pa.int64()),
            "EVENT_TYPE": pa.array([None, "watch", None], pa.string()),
        }
    )
    recent = recent_interactions(
        table, np.zeros(3, np.int32), np.arange(3, dtype=np.int32), num_users=1, window=1
    )
    assert sorted(pairs_of(recent, 0)) == [(1, "watch"), (2, "")]


def test_the_default_window_is_personalizes_100() -> None:
    assert INTERACTIONS_PER_EVENT_TYPE == 100
    events = [(0, k, k, "watch") for k in range(INTERACTIONS_PER_EVENT_TYPE + 5)]
    events.append((0, 0, 0, "click"))
    recent = recent_interactions(
        events_table(events),
        np.zeros(len(events), np.int32),
        np.array([item for _, item, _, _ in events], np.int32),
        num_users=1,
    )
    watched = [item for item, kind in pairs_of(recent, 0) if kind == "watch"]
    assert sorted(watched) == list(range(5, INTERACTIONS_PER_EVENT_TYPE + 5))
    # Items 1-4 fell out of the watches; item 0 too, but its click keeps it in the history.
    assert history_of(recent, 0) == [0, *range(5, INTERACTIONS_PER_EVENT_TYPE + 5)]


@pytest.mark.parametrize("window", [1, 2, 3])
def test_random_events_follow_the_definition(window: int) -> None:
    rng = np.random.default_rng(window)
    num_users, num_items, kinds = 6, 9, ["watch", "Watch", "click", "share"]
    events = [
        (
            int(rng.integers(num_users - 1)),  # the last user has no events
            int(rng.integers(num_items)),
            int(rng.integers(8)),  # few timestamps: many ties
            kinds[int(rng.integers(len(kinds)))],
        )
        for _ in range(120)
    ]
    recent = recent_of(events, num_users, window)
    expected = reference(events, num_users, window)
    for user in range(num_users):
        pairs = pairs_of(recent, user)
        assert len(pairs) == len(set(pairs))
        assert set(pairs) == expected[user]
        assert history_of(recent, user) == sorted({item for item, _ in expected[user]})


def test_training_stores_the_window(tiny_model: LocalModel, tiny_interactions: pa.Table) -> None:
    users = {user: k for k, user in enumerate(tiny_model.user_ids.tolist())}
    items = {item: k for k, item in enumerate(tiny_model.item_ids.tolist())}
    recent = recent_interactions(
        tiny_interactions,
        np.array([users[u] for u in tiny_interactions.column("USER_ID").to_pylist()], np.int32),
        np.array([items[i] for i in tiny_interactions.column("ITEM_ID").to_pylist()], np.int32),
        num_users=tiny_model.num_users,
    )
    for name in ("event_types", "recent_indptr", "recent_items", "recent_types"):
        np.testing.assert_array_equal(getattr(tiny_model, name), getattr(recent, name))
    np.testing.assert_array_equal(tiny_model.history_indptr, recent.history_indptr)
    np.testing.assert_array_equal(tiny_model.history_indices, recent.history_indices)
