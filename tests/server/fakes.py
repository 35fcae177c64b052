"""An in-memory Backend for server tests: fixed answers, optional delay or failure."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from pydantic import BaseModel

from recs.backends.base import Backend, ModelInfo, Recommendations, ScoredItem
from recs.backends.filtering import FilterCall

CATALOG_ITEMS = ["v1", "v2", "v3", "v4"]


class FakeConfig(BaseModel):
    pass


class FakeBackend(Backend):
    """Answers from a fixed list.

    `delay` slows every call and `slow_users` only calls for those users;
    `error` makes every call fail.
    """

    name = "fake"
    config_model = FakeConfig

    def __init__(
        self,
        config: FakeConfig | None = None,
        delay: float = 0.0,
        error: Exception | None = None,
    ) -> None:
        self.delay = delay
        self.slow_users: set[str] = set()
        self.error = error
        self.calls: list[tuple] = []
        self.started = threading.Event()

    def _answer(self, call: tuple, item_ids: Sequence[str]) -> Recommendations:
        self.calls.append(call)
        self.started.set()
        if self.delay or (len(call) > 1 and call[1] in self.slow_users):
            time.sleep(self.delay or 1.0)
        if self.error is not None:
            raise self.error
        n = len(item_ids)
        return Recommendations.of(
            [ScoredItem(i, (n - k) / (n * (n + 1) / 2)) for k, i in enumerate(item_ids)],
            recommendation_id="rid-1",
        )

    def info(self) -> ModelInfo:
        return ModelInfo("fake", {"trained_at": "never"})

    def recommend(
        self, user_id: str, num_results: int, filter: FilterCall | None = None
    ) -> Recommendations:
        key = ("recommend", user_id, num_results, *_filtered(filter))
        return self._answer(key, CATALOG_ITEMS[:num_results])

    def similar_items(
        self,
        item_id: str,
        num_results: int,
        filter: FilterCall | None = None,
        user_id: str | None = None,
    ) -> Recommendations:
        others = [i for i in CATALOG_ITEMS if i != item_id]
        key = ("similar", item_id, num_results, *_filtered(filter), *([user_id] if user_id else []))
        return self._answer(key, others[:num_results])

    def popular_items(
        self, num_results: int, user_id: str | None = None, filter: FilterCall | None = None
    ) -> Recommendations:
        key = ("popular", num_results, user_id, *_filtered(filter))
        return self._answer(key, CATALOG_ITEMS[:num_results])

    def trending_items(
        self, num_results: int, user_id: str | None = None, filter: FilterCall | None = None
    ) -> Recommendations:
        key = ("trending", num_results, user_id, *_filtered(filter))
        return self._answer(key, CATALOG_ITEMS[::-1][:num_results])

    def rerank(
        self, user_id: str, item_ids: Sequence[str], filter: FilterCall | None = None
    ) -> Recommendations:
        distinct = list(dict.fromkeys(item_ids))
        key = ("rerank", user_id, tuple(item_ids), *_filtered(filter))
        return self._answer(key, distinct[::-1])


def _filtered(filter: FilterCall | None) -> tuple:
    """What a call records of its filter: nothing without one, else (name, values)."""
    if filter is None:
        return ()
    return ((filter.name, dict(filter.values)),)


class NoDeadline:
    """The part of a ServicerContext the dispatcher reads."""

    def __init__(self, remaining: float | None = None) -> None:
        self.remaining = remaining

    def time_remaining(self) -> float | None:
        return self.remaining
