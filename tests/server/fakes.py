"""An in-memory Backend for server tests: fixed answers, optional delay or failure."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from pydantic import BaseModel

from recs.backends.base import Backend, ModelInfo, Recommendations, ScoredItem

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

    def recommend(self, user_id: str, num_results: int) -> Recommendations:
        return self._answer(("recommend", user_id, num_results), CATALOG_ITEMS[:num_results])

    def similar_items(self, item_id: str, num_results: int) -> Recommendations:
        others = [i for i in CATALOG_ITEMS if i != item_id]
        return self._answer(("similar", item_id, num_results), others[:num_results])

    def popular_items(self, num_results: int, user_id: str | None = None) -> Recommendations:
        return self._answer(("popular", num_results, user_id), CATALOG_ITEMS[:num_results])

    def rerank(self, user_id: str, item_ids: Sequence[str]) -> Recommendations:
        distinct = list(dict.fromkeys(item_ids))
        return self._answer(("rerank", user_id, tuple(item_ids)), distinct[::-1])
