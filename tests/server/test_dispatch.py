"""How backend calls run: batched recommend calls, inline in-memory calls, error isolation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from recs.backends.base import Recommendations, ScoredItem
from recs.backends.errors import BackendTimeoutError, InvalidRequestError
from recs.backends.local.backend import LocalBackend
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model
from recs.client import AsyncRecsClient
from recs.pipeline.dataset import read_interactions
from recs.server.app import build_server
from recs.server.dispatch import BackendDispatcher, RecommendBatcher
from tests.backends.contract import TINY_DATASET
from tests.server.conftest import CATALOG, make_config
from tests.server.fakes import FakeBackend, NoDeadline


class InMemoryBackend(FakeBackend):
    """A fake declaring itself in-memory; its first batch waits until `release` is set."""

    blocking = False

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[tuple[str, int]]] = []
        self.release = threading.Event()
        self.first_batch_started = threading.Event()

    def recommend_many(
        self, requests: Sequence[tuple[str, int]], filters: Sequence | None = None
    ) -> list[Recommendations]:
        self.batches.append(list(requests))
        if len(self.batches) == 1:
            self.first_batch_started.set()
            assert self.release.wait(10)
        if any(user == "bad" for user, _ in requests):
            raise InvalidRequestError("user_id", "is bad")
        return [
            Recommendations.of([ScoredItem(f"{user}-{k}", 1.0) for k in range(n)], f"rid-{user}")
            for user, n in requests
        ]


async def wait_for(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, 10)


async def test_calls_arriving_while_a_batch_scores_form_the_next_batch() -> None:
    backend, batcher = InMemoryBackend(), RecommendBatcher(max_batch=4)
    first = batcher.submit(backend, "u0", 0)
    await wait_for(backend.first_batch_started)
    later = [batcher.submit(backend, f"u{k}", k) for k in range(1, 7)]
    backend.release.set()
    answers = await asyncio.gather(first, *later)
    batcher.close()
    assert [len(batch) for batch in backend.batches] == [1, 4, 2]
    for k, answer in enumerate(answers):
        assert answer.recommendation_id == f"rid-u{k}"
        assert [i.item_id for i in answer.items] == [f"u{k}-{j}" for j in range(k)]


async def test_a_failing_request_fails_alone() -> None:
    backend, batcher = InMemoryBackend(), RecommendBatcher()
    backend.release.set()
    first = batcher.submit(backend, "u0", 1)
    await first
    results = await asyncio.gather(
        batcher.submit(backend, "u1", 2),
        batcher.submit(backend, "bad", 2),
        batcher.submit(backend, "u2", 2),
        return_exceptions=True,
    )
    batcher.close()
    assert isinstance(results[1], InvalidRequestError)
    assert [r.recommendation_id for r in (results[0], results[2])] == ["rid-u1", "rid-u2"]


async def test_other_calls_flow_while_a_batch_is_scoring() -> None:
    backend = InMemoryBackend()
    running = await build_server(make_config(), CATALOG)
    await running.mark_ready(backend)
    try:
        async with AsyncRecsClient(f"127.0.0.1:{running.port}") as client:
            slow = asyncio.ensure_future(client.recommend("u1", 2))
            await wait_for(backend.first_batch_started)
            popular = await client.popular(2)  # answered while the batch is held
            assert popular.item_ids == ["v1", "v2"]
            assert not slow.done()
            backend.release.set()
            assert (await slow).item_ids == ["u1-0", "u1-1"]
    finally:
        backend.release.set()
        await running.stop(0)


@pytest.fixture(scope="module")
def local_backend() -> LocalBackend:
    model = fit_model(read_interactions(TINY_DATASET), TrainParams(factors=8, random_state=0))
    return LocalBackend.from_model(model)


async def test_concurrent_calls_get_the_answers_of_the_backend_alone(
    local_backend: LocalBackend,
) -> None:
    running = await build_server(make_config(), CATALOG)
    await running.mark_ready(local_backend)
    users = [*local_backend.model.user_ids.tolist(), "a-new-user"] * 3
    try:
        async with AsyncRecsClient(f"127.0.0.1:{running.port}") as client:
            answers = await asyncio.gather(*(client.recommend(u, 5) for u in users))
    finally:
        await running.stop(0)
    for user, answer in zip(users, answers, strict=True):
        alone = local_backend.recommend(user, 5)
        assert answer.item_ids == [i.item_id for i in alone.items]
        assert [i.score for i in answer.items] == pytest.approx(
            [i.score for i in alone.items], rel=1e-5
        )


class PrecomputedBackend(InMemoryBackend):
    """An in-memory fake with answers at hand for users named "ready-*" only."""

    def __init__(self) -> None:
        super().__init__()
        self.release.set()  # no batch is held
        self.asked: list[tuple[str, int]] = []

    def recommend_without_scoring(
        self, user_id: str, num_results: int, filter: object = None
    ) -> Recommendations | None:
        self.asked.append((user_id, num_results))
        if not user_id.startswith("ready-"):
            return None
        return Recommendations(
            [f"{user_id}-table-{k}" for k in range(num_results)], [0.5] * num_results, "rid-table"
        )


def test_backends_have_no_answers_without_scoring_by_default() -> None:
    # FakeBackend does not override Backend.recommend_without_scoring.
    assert FakeBackend().recommend_without_scoring("u1", 3) is None


async def test_answers_at_hand_skip_the_scoring_thread(dispatcher: BackendDispatcher) -> None:
    backend = PrecomputedBackend()
    dispatcher.install_backend(backend)
    users = ["ready-1", "u1", "ready-2", "u2", "ready-3"]
    answers = await asyncio.gather(
        *(dispatcher.recommend(NoDeadline(), user, 2) for user in users)  # type: ignore[arg-type]
    )
    assert backend.asked == [(user, 2) for user in users]
    assert [answer.item_ids for answer in answers] == [
        ["ready-1-table-0", "ready-1-table-1"],
        ["u1-0", "u1-1"],
        ["ready-2-table-0", "ready-2-table-1"],
        ["u2-0", "u2-1"],
        ["ready-3-table-0", "ready-3-table-1"],
    ]
    assert [answer.recommendation_id for answer in answers] == [
        "rid-table", "rid-u1", "rid-table", "rid-u2", "rid-table",
    ]  # fmt: skip
    scored = [request for batch in backend.batches for request in batch]
    assert sorted(scored) == [("u1", 2), ("u2", 2)]
    assert sum(dispatcher._batcher.batch_sizes) == 2


async def test_no_scoring_thread_when_every_answer_is_at_hand(
    dispatcher: BackendDispatcher,
) -> None:
    backend = PrecomputedBackend()
    dispatcher.install_backend(backend)
    for k in range(3):
        answer = await dispatcher.recommend(NoDeadline(), f"ready-{k}", 1)  # type: ignore[arg-type]
        assert answer.item_ids == [f"ready-{k}-table-0"]
    assert backend.batches == []
    assert list(dispatcher._batcher.batch_sizes) == []
    assert dispatcher._batcher._thread is None  # never started


async def test_an_expired_deadline_fails_before_the_table_is_read(
    dispatcher: BackendDispatcher,
) -> None:
    backend = PrecomputedBackend()
    dispatcher.install_backend(backend)
    with pytest.raises(BackendTimeoutError):
        await dispatcher.recommend(NoDeadline(remaining=0.0), "ready-1", 1)  # type: ignore[arg-type]
    assert backend.asked == []
