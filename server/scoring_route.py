"""Where a GetRecommendations call that needs scoring runs: on the event loop or on the
scoring thread, chosen from what such calls have been measured to cost.

A hop to the scoring thread and back is not free: queueing the call, waking the thread,
handing the GIL over and waking the event loop with the answer cost 35-55 µs of CPU per
call on the benchmark machine, 10-15 µs of it on the event loop (bench/README.md, issue
18's section). The local engine scores one user of a 20,000-item model in 25-30 µs of CPU
in the server (its kernel reads only the items whose norm can still reach the user's n
best), less than the hop adds, so such calls are scored on the loop. A call costing milliseconds
(a model whose norms are too even for that shortcut, a filter allowing few items of a
large catalog) must not hold the event loop that long: it goes to the thread, which
scores the calls that arrive meanwhile as one batch (one matrix product for all of them).

The limit is set by latency, not by CPU: scoring on the loop always spends less CPU (no
hop), but it delays the calls behind it. Up to `INLINE_BELOW` (100 µs) that delay is small
against a call's latency (milliseconds at p99); beyond it the thread's batched matrix
product is worth its hop.

The route does not guess, it measures. Each kind of call (calls with the same filter;
unfiltered calls are one kind) keeps a moving average of its scoring time: on the loop,
each call's own; on the thread, its batch's time divided by the batch's size. Time is the
CPU time of the thread that scores (`time.thread_time`): what scoring costs, without the
waits for the GIL that gRPC's own threads cause while the compiled kernel runs without it. A kind
moves to the loop when its average falls under `INLINE_BELOW` and back to the thread when
it rises over `LEAVE_ABOVE`; the gap keeps a kind near the limit from switching back and
forth. A kind not measured yet goes to the thread, so a call of unknown cost never holds
the loop; after a switch to the loop, one slow call is enough to switch back (a call of
5 ms lifts an average of 100 µs over `LEAVE_ABOVE`). Reading a thread's CPU time is a
system call, two per measurement (~3 % of a scored call's throughput in the benchmark), so
one call in `MEASURE_EVERY` of each kind on the loop is measured: a kind that turns slow
is caught within that many of its calls, however the kinds interleave.

Used on the event loop only (the scoring thread's measurements arrive with its answers).
"""

from __future__ import annotations

import logging

from recs.backends.filtering import FilterCall

log = logging.getLogger("recs.server")

INLINE_BELOW = 100e-6  # seconds of CPU per call
LEAVE_ABOVE = 200e-6
_WEIGHT = 1 / 16  # of each new measurement in the moving average
MEASURE_EVERY = 8  # calls scored on the loop per measured one


class ScoringRoute:
    """Per kind of call: its measured scoring time, and whether it is scored on the loop."""

    def __init__(self) -> None:
        self._costs: dict[str | None, float] = {}
        self._inline: set[str | None] = set()
        self._loop_calls: dict[str | None, int] = {}

    def measure_now(self, filter: FilterCall | None) -> bool:
        """Whether to measure this call scored on the loop: one in `MEASURE_EVERY` of its
        kind, the first included."""
        kind = _kind(filter)
        calls = self._loop_calls.get(kind, 0)
        self._loop_calls[kind] = calls + 1
        return calls % MEASURE_EVERY == 0

    def inline(self, filter: FilterCall | None) -> bool:
        """True if calls like this one are scored on the event loop."""
        return _kind(filter) in self._inline

    def measured(self, filter: FilterCall | None, seconds: float) -> None:
        """Record what scoring one call like this cost, and move its kind if it should."""
        kind = _kind(filter)
        previous = self._costs.get(kind)
        cost = seconds if previous is None else previous + (seconds - previous) * _WEIGHT
        self._costs[kind] = cost
        if kind in self._inline:
            if cost > LEAVE_ABOVE:
                self._inline.discard(kind)
                log.info(
                    "scoring %s on the scoring thread: %.0f µs per call on average",
                    _describe(kind),
                    cost * 1e6,
                )
        elif cost < INLINE_BELOW:
            self._inline.add(kind)
            log.info(
                "scoring %s on the event loop: %.0f µs per call on average",
                _describe(kind),
                cost * 1e6,
            )

    def details(self) -> dict[str, str]:
        """For GetModelInfo: `scoring.unfiltered` and `scoring.filter.<name>`, each kind's
        route and average scoring time (kinds not scored yet are absent)."""
        described = {}
        for kind, cost in sorted(self._costs.items(), key=lambda pair: pair[0] or ""):
            where = "event loop" if kind in self._inline else "scoring thread"
            key = "scoring.unfiltered" if kind is None else f"scoring.filter.{kind}"
            described[key] = f"{where}, {cost * 1e6:.0f} us per call"
        return described


def _kind(filter: FilterCall | None) -> str | None:
    """A call's kind: its filter's name, None for unfiltered calls."""
    return filter.filter.name if filter is not None else None


def _describe(kind: str | None) -> str:
    return "unfiltered calls" if kind is None else f"calls with filter {kind!r}"
