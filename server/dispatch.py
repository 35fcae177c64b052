"""How the servicer calls the backend: on the event loop, batched, or through a thread pool.

A backend that may block on I/O (`Backend.blocking`, e.g. Personalize's HTTP calls) runs
in a bounded thread pool, within the caller's remaining deadline, so the event loop keeps
serving other calls meanwhile.

A backend that only computes briefly in memory (`blocking = False`, the local engine)
is called on the event loop: for sub-millisecond work the hop to a pool thread and back
costs more than the work, and a call delays others by no more than its own compute,
just as it would while holding the GIL in a thread. Concurrent GetRecommendations calls
are batched: calls that arrive while a batch is being scored queue up and are scored
together by one `Backend.recommend_many` (one matrix product) as soon as the loop is
free. A lone call is a batch of one, so nothing waits for company.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

from grpc import aio

from backends.base import Backend, Recommendations
from backends.errors import BackendTimeoutError, BackendUnavailableError

T = TypeVar("T")

# Upper bound on one batch: larger batches add latency for their first caller and gain
# little once the item factors are read once per batch.
MAX_BATCH = 64


class BackendDispatcher:
    """Runs backend calls for the servicer; see the module docstring for the policy."""

    def __init__(self, executor: Executor, max_batch: int = MAX_BATCH) -> None:
        self._executor = executor
        self._backend: Backend | None = None
        self._batcher = RecommendBatcher(max_batch)

    def install_backend(self, backend: Backend) -> None:
        """Start answering from `backend` (which must be fully started)."""
        self._backend = backend

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise BackendUnavailableError("the model is still loading; retry shortly")
        return self._backend

    async def call(self, context: aio.ServicerContext, work: Callable[[Backend], T]) -> T:
        """`work(backend)`: inline for in-memory backends, else in the pool within the deadline."""
        backend = self.backend
        if not backend.blocking:
            _check_deadline(context)
            return work(backend)
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(work, backend)
        )
        try:
            return await asyncio.wait_for(future, timeout=context.time_remaining())
        except TimeoutError:
            raise BackendTimeoutError(
                "the deadline expired while the backend was working"
            ) from None

    async def recommend(
        self, context: aio.ServicerContext, user_id: str, num_results: int
    ) -> Recommendations:
        """`backend.recommend`, batched with concurrent calls when the backend is in memory."""
        backend = self.backend
        if backend.blocking:
            return await self.call(context, lambda b: b.recommend(user_id, num_results))
        _check_deadline(context)
        return await self._batcher.submit(backend, user_id, num_results)


class RecommendBatcher:
    """Collects recommend calls made while the loop is busy and answers them in one batch.

    `submit` queues a call and, if no flush is scheduled, schedules one with `call_soon`:
    it runs after the callbacks already ready (the other calls that arrived meanwhile),
    so every call queued by then joins the batch. If the batch fails, each call is
    retried alone so the error reaches only the caller whose request caused it.
    """

    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        self.max_batch = max_batch
        self._pending: list[tuple[Backend, tuple[str, int], asyncio.Future]] = []
        self._scheduled = False
        self.batch_sizes: list[int] = []  # recent batch sizes, for tests and diagnostics

    def submit(self, backend: Backend, user_id: str, num_results: int) -> asyncio.Future:
        """Queue one call; the returned future resolves to its Recommendations."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((backend, (user_id, num_results), future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        batch = [entry for entry in batch if not entry[2].done()]  # skip cancelled callers
        if batch:
            self._score(batch)
        if self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        else:
            self._scheduled = False

    def _score(self, batch: list[tuple[Backend, tuple[str, int], asyncio.Future]]) -> None:
        backend = batch[0][0]
        if any(entry[0] is not backend for entry in batch):  # a backend swap mid-flight
            for entry in batch:
                self._score([entry])
            return
        self.batch_sizes = [*self.batch_sizes[-99:], len(batch)]
        try:
            answers = backend.recommend_many([request for _, request, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][2].done():
                    batch[0][2].set_exception(exc)
            else:
                for entry in batch:
                    self._score([entry])
            return
        for (_, _, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)


def _check_deadline(context: aio.ServicerContext) -> None:
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise BackendTimeoutError("the deadline expired before the backend was called")
