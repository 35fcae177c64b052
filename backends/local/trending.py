"""Trending now, as Personalize's Trending-Now recipe finds it: the items whose interactions
rise fastest over the latest trend interval.

Personalize "calculates the increase in interactions that each item has over configurable
intervals of time; the items with highest rate of increase are considered trending", with a
trend discovery frequency of 30 minutes, 1 hour, 3 hours or 1 day, and recommends popular
items when the last two intervals hold no interactions
(https://docs.aws.amazon.com/personalize/latest/dg/native-recipe-trending-now.html;
../shared/reference/personalize.md, section 2). Here, exactly:

- **now** is the newest interaction time known: the training data's newest, moved on by every
  event received since (its `sent_at`);
- with the interval I, an item's **current** count is its interactions in (now - I, now], its
  **previous** count those in (now - 2I, now - I]; every event counts once, whatever its type;
- **increase** = current - previous; items rank by increase (largest first), then current
  count, then the model's popularity order (distinct users, then item id); the score is the
  item's share of the positive increases (0 for the rest). Every item the model knows takes
  part (no interaction in the intervals: increase 0, so popular items follow the rising ones
  and precede the falling ones); items only the catalog knows take part once they have
  interactions in the intervals. With none in either interval the answer is the popular items.

Training stores the events of its last two days (`trend_items`, `trend_times`: two of the
longest interval), so any interval can be chosen at serve time; events received since are
added as they are applied. Items the model does not know (catalog videos, PutItems) trend as
soon as they gather events: a video uploaded an hour ago can lead the list. The ranking is
computed again at most once a second (`REFRESH_SECONDS`) while events arrive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

TREND_INTERVALS = {"30m": 1800, "1h": 3600, "3h": 3 * 3600, "1d": 86400}
DEFAULT_TREND_INTERVAL = "3h"
TAIL_SECONDS = 2 * max(TREND_INTERVALS.values())  # what training keeps: two of the longest
REFRESH_SECONDS = 1.0


def training_tail(item_codes: np.ndarray, times: Any) -> tuple[np.ndarray, np.ndarray]:
    """The events of the last `TAIL_SECONDS` of the training data, oldest first: (model item
    indices as int32, times as int64 seconds); `times` is one timestamp per row (an array or
    an Arrow column)."""
    times = np.asarray(times, dtype=np.int64)
    if not len(times):
        return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64)
    recent = np.flatnonzero(times > times.max() - TAIL_SECONDS)
    order = recent[np.argsort(times[recent], kind="stable")]
    return np.asarray(item_codes[order], dtype=np.int32), times[order]


class Trending:
    """The trending ranking over the item universe (model items first, then items only the
    catalog or PutItems know), from the training tail plus the events added since."""

    def __init__(
        self,
        interval: str,
        tail_items: np.ndarray | None,
        tail_times: np.ndarray | None,
        popular_order: np.ndarray,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = TREND_INTERVALS[interval]
        empty = tail_items is None or tail_times is None
        self._items = np.empty(0, np.int64) if empty else np.asarray(tail_items, np.int64)
        self._times = np.empty(0, np.int64) if empty else np.asarray(tail_times, np.int64)
        self._popular_order = np.asarray(popular_order, dtype=np.int64)
        self._popular_rank = np.empty(len(popular_order), dtype=np.int64)
        self._popular_rank[self._popular_order] = np.arange(len(popular_order))
        self._clock = clock
        self._lock = threading.Lock()
        self._pending_items: list[int] = []
        self._pending_times: list[int] = []
        self._ranked: tuple[np.ndarray, np.ndarray] | None = None
        self._computed_at = -np.inf

    def add(self, items: list[int], times: list[int]) -> None:
        """Events received since training: universe item indices and their times (seconds)."""
        with self._lock:
            self._pending_items.extend(items)
            self._pending_times.extend(times)

    def latest_time(self) -> float | None:
        """The newest interaction time known (None without any)."""
        with self._lock:
            times = [int(self._times.max())] if len(self._times) else []
            times += [max(self._pending_times)] if self._pending_times else []
        return float(max(times)) if times else None

    def ranking(self) -> tuple[np.ndarray, np.ndarray]:
        """(universe indices best first, scores), as the module describes."""
        ranked = self._ranked
        if ranked is not None and (
            not self._pending_items or self._clock() - self._computed_at < REFRESH_SECONDS
        ):
            return ranked
        with self._lock:
            if self._pending_items:
                self._items = np.concatenate([self._items, np.array(self._pending_items)])
                self._times = np.concatenate([self._times, np.array(self._pending_times)])
                self._pending_items, self._pending_times = [], []
            self._ranked = self._rank()
            self._computed_at = self._clock()
            return self._ranked

    def _rank(self) -> tuple[np.ndarray, np.ndarray]:
        times, items = self._times, self._items
        if len(times):  # keep only the two intervals that count
            keep = times > times.max() - 2 * self.interval
            times, items = times[keep], items[keep]
            self._times, self._items = times, items
        popular = self._popular_order
        if not len(times):
            return popular, np.zeros(len(popular))
        now = times.max()
        size = max(int(items.max()) + 1, len(popular))
        current = np.bincount(items[times > now - self.interval], minlength=size)
        previous = np.bincount(items[times <= now - self.interval], minlength=size)
        increase = current - previous
        # Every model item, and the other items only with interactions in the intervals.
        candidates = np.flatnonzero(
            (np.arange(size) < len(popular)) | (current > 0) | (previous > 0)
        )
        rank = np.full(size, len(popular), dtype=np.int64)
        rank[: len(popular)] = self._popular_rank
        order = candidates[
            np.lexsort((candidates, rank[candidates], -current[candidates], -increase[candidates]))
        ]
        rising = np.clip(increase, 0, None)
        total = rising.sum()
        return order, (rising[order] / total if total > 0 else np.zeros(len(order)))
