"""How the servicer calls the backend: on the event loop, batched, or through a thread pool.

A backend that may block on I/O (`Backend.blocking`, e.g. Personalize's HTTP calls) runs
in a bounded thread pool, within the caller's remaining deadline, so the event loop keeps
serving other calls meanwhile.

A backend that only computes in memory (`blocking = False`, the local engine) is called
on the event loop for everything but GetRecommendations: those calls take well under a
millisecond, less than a hop to a pool thread and back costs.

GetRecommendations is answered on the event loop too when the backend has the answer at
hand (`Backend.recommend_without_scoring`: precomputed, or a cold user's popular items).
Otherwise it must be scored: on the event loop as well if calls like it have been measured
to cost less than a hop to a thread would (`server.scoring_route`), else on one scoring
thread that batches: calls that arrive while a batch is being scored queue up and are
scored together by one `Backend.recommend_many` as soon as the thread is free. The local
engine scores a batch in one compiled call that releases the GIL, so the event loop keeps
accepting and answering calls meanwhile, and a lone call is a batch of one: nothing waits
for company. A call waits at most for the batch before it, never behind a backlog.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from recs.backends.base import Backend, Event, Recommendations
from recs.backends.errors import BackendTimeoutError, BackendUnavailableError
from recs.backends.filtering import FilterCall
from recs.server.scoring_route import ScoringRoute

T = TypeVar("T")


class Deadline(Protocol):
    """What a call's deadline looks like to the dispatcher: a gRPC `ServicerContext`, or the
    AWS-protocol endpoint's stand-in (`server.aws_endpoint`)."""

    def time_remaining(self) -> float | None:
        """Seconds left, or None for no deadline."""
        ...


# Upper bound on one batch: past ~32 users the logits matrix (users x items floats) outgrows
# the CPU caches and the time per user rises again.
MAX_BATCH = 32


class BackendDispatcher:
    """Runs backend calls for the servicer; see the module docstring for the policy."""

    def __init__(self, executor: Executor, max_batch: int = MAX_BATCH) -> None:
        self._executor = executor
        self._backend: Backend | None = None
        self.route = ScoringRoute()
        self._batcher = RecommendBatcher(max_batch, self._measured)

    def install_backend(self, backend: Backend) -> None:
        """Start answering from `backend` (which must be fully started); its calls' costs
        are measured afresh."""
        self._backend = backend
        self.route = ScoringRoute()

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise BackendUnavailableError("the model is still loading; retry shortly")
        return self._backend

    async def call(self, context: Deadline, work: Callable[[Backend], T]) -> T:
        """`work(backend)`: inline for in-memory backends, else in the pool within the deadline."""
        backend = self.backend
        if not backend.blocking:
            _check_deadline(context)
            return work(backend)
        return await self.call_off_loop(context, work)

    async def call_off_loop(self, context: Deadline, work: Callable[[Backend], T]) -> T:
        """`work(backend)` in the thread pool within the deadline, whatever the backend: for
        calls that wait on I/O in every backend (PutEvents commits to disk)."""
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(work, self.backend)
        )
        try:
            return await asyncio.wait_for(future, timeout=context.time_remaining())
        except TimeoutError:
            raise BackendTimeoutError(
                "the deadline expired while the backend was working"
            ) from None

    async def put_events(
        self,
        context: Deadline,
        user_id: str | None,
        session_id: str,
        events: Sequence[Event],
    ) -> None:
        """`backend.put_events`: queued from the event loop where the backend can
        (`submit_events`, the local engine's group commit) and awaited without a thread,
        else in the thread pool; within the deadline either way."""
        backend = self.backend
        submitted = backend.submit_events(user_id, session_id, events)
        if submitted is None:
            await self.call_off_loop(context, lambda b: b.put_events(user_id, session_id, events))
            return
        try:
            await asyncio.wait_for(asyncio.wrap_future(submitted), context.time_remaining())
        except TimeoutError:
            raise BackendTimeoutError(
                "the deadline expired before the events were stored (they may still be)"
            ) from None

    async def recommend(
        self,
        context: Deadline,
        user_id: str,
        num_results: int,
        filter: FilterCall | None = None,
    ) -> Recommendations:
        """`backend.recommend`, batched with concurrent calls when the backend is in memory."""
        backend = self.backend
        if backend.blocking:
            return await self.call(context, lambda b: b.recommend(user_id, num_results, filter))
        _check_deadline(context)
        ready = backend.recommend_without_scoring(user_id, num_results, filter)
        if ready is not None:
            return ready
        route = self.route
        if not route.inline(filter):
            return await self._batcher.submit(backend, user_id, num_results, filter)
        if not route.measure_now(filter):
            return backend.recommend(user_id, num_results, filter)
        started = time.thread_time()
        answer = backend.recommend(user_id, num_results, filter)
        route.measured(filter, time.thread_time() - started)
        return answer

    def _measured(self, filter: FilterCall | None, seconds: float) -> None:
        self.route.measured(filter, seconds)  # the route of the moment (install_backend)

    def close(self) -> None:
        """Stop the scoring thread (after the calls already queued)."""
        self._batcher.close()


class RecommendBatcher:
    """A scoring thread answering queued recommend calls in batches of up to `max_batch`.

    If a batch fails, each of its calls is retried alone so that the error reaches only
    the caller whose request caused it. With `observe`, each answered call's share of its
    batch's scoring time (seconds) is reported on the caller's event loop with its answer.
    """

    def __init__(
        self,
        max_batch: int = MAX_BATCH,
        observe: Callable[[FilterCall | None, float], None] | None = None,
    ) -> None:
        self.max_batch = max_batch
        self._observe = observe
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batch_sizes: collections.deque[int] = collections.deque(maxlen=1000)

    def submit(
        self,
        backend: Backend,
        user_id: str,
        num_results: int,
        filter: FilterCall | None = None,
    ) -> asyncio.Future:
        """Queue one call; the returned future resolves to its Recommendations."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._ensure_thread()
        self._queue.put(_Call(backend, (user_id, num_results), filter, future, loop))
        return future

    def close(self) -> None:
        """Let the scoring thread finish the queued calls and stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="recommend-batcher", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = [first], False
            while len(batch) < self.max_batch:
                try:
                    call = self._queue.get_nowait()
                except queue.Empty:
                    break
                if call is None:
                    stop = True
                    break
                batch.append(call)
            self.batch_sizes.append(len(batch))
            self._answer(batch)
            if stop:
                return

    def _answer(self, batch: list[_Call]) -> None:
        by_backend: dict[int, list[_Call]] = {}
        for call in batch:  # normally one backend; two only across a model swap
            by_backend.setdefault(id(call.backend), []).append(call)
        by_loop: dict[int, tuple[asyncio.AbstractEventLoop, list[_Outcome]]] = {}
        for calls in by_backend.values():
            for outcome in _score(calls):
                loop = outcome[0].loop
                by_loop.setdefault(id(loop), (loop, []))[1].append(outcome)
        for loop, outcomes in by_loop.values():
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(_settle, outcomes, self._observe)


@dataclass(slots=True)
class _Call:
    backend: Backend
    request: tuple[str, int]
    filter: FilterCall | None
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


# A call, its answer or error, and its share of its batch's scoring time in seconds.
_Outcome = tuple[_Call, Any, BaseException | None, float]


def _score(calls: list[_Call]) -> list[_Outcome]:
    started = time.thread_time()
    try:
        answers = calls[0].backend.recommend_many(
            [call.request for call in calls], [call.filter for call in calls]
        )
    except Exception as exc:
        if len(calls) == 1:
            return [(calls[0], None, exc, 0.0)]
        return [outcome for call in calls for outcome in _score([call])]
    share = (time.thread_time() - started) / len(calls)
    return [(call, answer, None, share) for call, answer in zip(calls, answers, strict=True)]


def _settle(
    outcomes: list[_Outcome], observe: Callable[[FilterCall | None, float], None] | None
) -> None:
    for call, answer, error, seconds in outcomes:
        if error is None and observe is not None:
            observe(call.filter, seconds)
        if call.future.done():  # the caller went away (cancelled, deadline)
            continue
        if error is not None:
            call.future.set_exception(error)
        else:
            call.future.set_result(answer)


def _check_deadline(context: Deadline) -> None:
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise BackendTimeoutError("the deadline expired before the backend was called")
