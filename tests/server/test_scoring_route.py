"""Where scored GetRecommendations calls run: measured cost decides, per kind of call."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

from recs.backends.base import Recommendations
from recs.backends.filtering import FilterCall
from recs.pipeline.filters import parse_filter
from recs.server.dispatch import BackendDispatcher
from recs.server.scoring_route import INLINE_BELOW, LEAVE_ABOVE, MEASURE_EVERY, ScoringRoute
from tests.server.fakes import FakeBackend, NoDeadline

CHEAP, SLOW = INLINE_BELOW / 2, LEAVE_ABOVE * 20  # one SLOW call lifts any cheap average
CATEGORY = FilterCall(parse_filter("kids", 'INCLUDE ItemID WHERE Items.GENRES IN ("kids")'))


def test_a_kind_not_measured_yet_goes_to_the_thread() -> None:
    route = ScoringRoute()
    assert not route.inline(None)
    assert not route.inline(CATEGORY)
    assert route.details() == {}


def test_a_cheap_kind_moves_to_the_loop_and_back_after_a_slow_call() -> None:
    route = ScoringRoute()
    route.measured(None, CHEAP)
    assert route.inline(None)
    route.measured(None, SLOW)  # one slow call lifts the average over the limit
    assert not route.inline(None)


def test_between_the_limits_a_kind_keeps_its_route() -> None:
    between = (INLINE_BELOW + LEAVE_ABOVE) / 2
    on_thread, on_loop = ScoringRoute(), ScoringRoute()
    on_thread.measured(None, between)
    on_loop.measured(None, CHEAP)
    for _ in range(200):  # the averages converge on `between`
        on_thread.measured(None, between)
        on_loop.measured(None, between)
    assert not on_thread.inline(None)
    assert on_loop.inline(None)


def test_each_filter_is_its_own_kind() -> None:
    route = ScoringRoute()
    route.measured(None, CHEAP)
    route.measured(CATEGORY, SLOW)
    assert route.inline(None)
    assert not route.inline(CATEGORY)
    assert route.details() == {
        "scoring.unfiltered": f"event loop, {CHEAP * 1e6:.0f} us per call",
        "scoring.filter.kids": f"scoring thread, {SLOW * 1e6:.0f} us per call",
    }


def burn(seconds: float) -> None:
    """Spend `seconds` of this thread's CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


class CostlyBackend(FakeBackend):
    """An in-memory fake whose scoring costs `cost` seconds of CPU; it records the
    thread each call was scored on."""

    blocking = False

    def __init__(self, cost: float = 0.0) -> None:
        super().__init__()
        self.cost = cost
        self.threads: list[str] = []

    def recommend(
        self, user_id: str, num_results: int, filter: FilterCall | None = None
    ) -> Recommendations:
        return self.recommend_many([(user_id, num_results)], [filter])[0]

    def recommend_many(
        self, requests: Sequence[tuple[str, int]], filters: Sequence | None = None
    ) -> list[Recommendations]:
        self.threads.append(threading.current_thread().name)
        burn(self.cost * len(requests))
        return [Recommendations([f"{user}-0"], [1.0], f"rid-{user}") for user, _ in requests]


async def ask(dispatcher: BackendDispatcher, calls: int, filter: FilterCall | None = None) -> None:
    for k in range(calls):
        answer = await dispatcher.recommend(NoDeadline(), f"u{k}", 1, filter)  # type: ignore[arg-type]
        assert answer.item_ids == [f"u{k}-0"]


async def test_cheap_calls_are_scored_on_the_event_loop_after_the_first(
    dispatcher: BackendDispatcher,
) -> None:
    backend = CostlyBackend()
    dispatcher.install_backend(backend)
    await ask(dispatcher, 4)
    loop_thread = threading.current_thread().name
    assert backend.threads == ["recommend-batcher"] + [loop_thread] * 3
    assert dispatcher.route.details()["scoring.unfiltered"].startswith("event loop")


async def test_costly_calls_stay_on_the_scoring_thread(dispatcher: BackendDispatcher) -> None:
    backend = CostlyBackend(cost=LEAVE_ABOVE * 2)
    dispatcher.install_backend(backend)
    await ask(dispatcher, 3)
    assert backend.threads == ["recommend-batcher"] * 3


async def test_calls_that_turn_costly_go_back_to_the_thread(
    dispatcher: BackendDispatcher,
) -> None:
    backend = CostlyBackend()
    dispatcher.install_backend(backend)
    await ask(dispatcher, 2)  # the second on the loop, measured
    backend.cost = SLOW  # one such call lifts the average over the limit
    await ask(dispatcher, MEASURE_EVERY + 1)  # the last measured call on the loop: slow
    loop_thread = threading.current_thread().name
    assert backend.threads == [
        "recommend-batcher",
        *[loop_thread] * (MEASURE_EVERY + 1),
        "recommend-batcher",
    ]


def test_one_call_in_measure_every_of_each_kind_is_measured() -> None:
    route = ScoringRoute()
    every = ([True] + [False] * (MEASURE_EVERY - 1)) * 2
    assert [route.measure_now(None) for _ in range(2 * MEASURE_EVERY)] == every
    alternating = ScoringRoute()  # two kinds taking turns: each still measured on its own count
    turns = [(alternating.measure_now(None), alternating.measure_now(CATEGORY)) for _ in every]
    assert [unfiltered for unfiltered, _ in turns] == every
    assert [filtered for _, filtered in turns] == every


async def test_a_new_backend_is_measured_afresh(dispatcher: BackendDispatcher) -> None:
    dispatcher.install_backend(CostlyBackend())
    await ask(dispatcher, 2)
    backend = CostlyBackend()
    dispatcher.install_backend(backend)
    await ask(dispatcher, 1)
    assert backend.threads == ["recommend-batcher"]


async def test_a_filter_is_measured_apart_from_unfiltered_calls(
    dispatcher: BackendDispatcher,
) -> None:
    backend = CostlyBackend()
    dispatcher.install_backend(backend)
    await ask(dispatcher, 2)
    await ask(dispatcher, 2, CATEGORY)
    loop_thread = threading.current_thread().name
    assert backend.threads == ["recommend-batcher", loop_thread, "recommend-batcher", loop_thread]


def test_concurrent_calls_of_unknown_cost_are_batched(dispatcher: BackendDispatcher) -> None:
    async def run() -> None:
        backend = CostlyBackend()
        dispatcher.install_backend(backend)
        await asyncio.gather(*(ask(dispatcher, 1) for _ in range(3)))
        assert set(backend.threads) == {"recommend-batcher"}

    asyncio.run(run())
