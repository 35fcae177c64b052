"""Replay held-out events one at a time: does learning from PutEvents improve the next answer?

For each test user of a split (`recs evaluate split`), their held-out events are walked in
time order. Before each event the system is asked for the top K (default filter: nothing the
subject interacted with) and the step scores whether that event's item is in it: HR@K (1 if
it is) and NDCG@K (1/log2(1 + rank) of the hit; one relevant item, so the ideal is 1). Two
passes over the same steps:

- **static**: no event is sent; the answer is the model's as trained;
- **real-time**: after each step, the event goes to the system with PutEvents (its user id,
  session id = user id), and the next question waits until the system has applied it.

**Systems.** `LocalReplaySystem` serves a local model in-process with a fresh event store and
knows when an event is applied. `GrpcReplaySystem` asks a running service over gRPC, whichever
engine is behind it; no call tells when an event is applied, so it waits `settle` seconds after
each PutEvents. Such a service keeps what earlier replays sent: it needs a fresh event store.

**Cold users.** A share of the test users (`cold_fraction`, seeded) is removed from training
entirely: a second model, with the parameters of the one evaluated, is trained on the split's
training data without them. All of a cold user's events (training and held-out, in time order,
at most `cold_steps`) are replayed as an anonymous session (no user id, session id = their
id). Beside static (the untrained subject's popular fallback) and real-time, they are scored
against **popularity excluding what they have seen so far**; the headline is HR@K over the
steps after at least `min_events` (5) events were sent.

Figures are averaged over steps (every step weighs the same) and over users (each user's mean
first, so heavy users weigh no more than light ones). They count only the steps whose item is
new to the subject: the default filter never recommends what the subject already interacted
with, so a repeat (common in the synthetic watch logs) is a miss for any filtered answer and
would only reward the static answer for not learning the earlier event. The `*_with_repeats`
figures count every step.

Against a running service, cold users cannot be removed from its model's training: each one's
history is replayed under a fresh session id (`cold_session`, unknown to the model), so static
is that id's fallback (popularity), but the item factors were trained with their events.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recs.backends.base import MAX_NUM_RESULTS, Event
from recs.backends.local.artifacts import load_model, save_model
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model

if TYPE_CHECKING:
    from recs.client import RecsClient

logger = logging.getLogger(__name__)

DEFAULT_K = 10
DEFAULT_COLD_FRACTION = 0.3
DEFAULT_COLD_STEPS = 50
MIN_EVENTS = 5
APPLY_TIMEOUT = 10.0
# Seconds a running service is given to apply an event: the local engine makes one visible on
# every worker within ~0.11 s (p99); Personalize needs more (e.g. 2 s).
DEFAULT_SETTLE = 0.2

# Called after each replayed user: (label of the group, users done, users in the group).
ReplayProgress = Callable[[str, int, int], None]


class ReplaySystem(Protocol):
    """What a replay asks of a system."""

    name: str

    def recommend(self, subject: str, num_results: int) -> list[str]:
        """The subject's top items (default filter), best first."""
        ...

    def popular(self, num_results: int) -> list[str]:
        """The most popular items, unfiltered."""
        ...

    def put_event(self, user_id: str | None, session_id: str, event: Event) -> None:
        """Send one event; return once recommendations reflect it (as far as the system
        can tell)."""
        ...

    def close(self) -> None: ...


class LocalReplaySystem:
    """A local model served in-process, its events stored under a fresh state directory;
    after each event it waits until the backend has applied it (`events_applied`)."""

    def __init__(self, model_dir: Path, state_dir: Path, name: str = "local") -> None:
        self.name = name
        self.backend = LocalBackend(
            LocalBackendConfig(model_dir=model_dir, state_dir=state_dir, mmap=False)
        )
        self.backend.start()
        self._sent: dict[str, int] = {}

    def recommend(self, subject: str, num_results: int) -> list[str]:
        return [item.item_id for item in self.backend.recommend(subject, num_results).items]

    def popular(self, num_results: int) -> list[str]:
        return [item.item_id for item in self.backend.popular_items(num_results).items]

    def put_event(self, user_id: str | None, session_id: str, event: Event) -> None:
        subject = user_id if user_id is not None else session_id
        self.backend.put_events(user_id, session_id, [event])
        expected = self._sent[subject] = self._sent.get(subject, 0) + 1
        deadline = time.monotonic() + APPLY_TIMEOUT
        while True:
            if self.backend.events_applied(subject) >= expected:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"event {expected} of {subject!r} not applied in time")
            time.sleep(0.0005)

    def close(self) -> None:
        self.backend.close()


class GrpcReplaySystem:
    """A running service asked over gRPC through `client`, whichever engine is behind it.

    No call tells when the service has applied an event, so after each PutEvents it sleeps
    `settle` seconds. The service keeps the events, so it needs a fresh event store: what an
    earlier replay sent is part of a later one's "static" answers.
    """

    def __init__(
        self, client: RecsClient, settle: float = DEFAULT_SETTLE, name: str | None = None
    ) -> None:
        if not settle >= 0:
            raise ValueError(f"settle: must not be negative, got {settle}")
        self.client = client
        self.settle = settle
        self.name = name or client.target

    def recommend(self, subject: str, num_results: int) -> list[str]:
        return self.client.recommend(subject, num_results).item_ids

    def popular(self, num_results: int) -> list[str]:
        return self.client.popular(min(num_results, MAX_NUM_RESULTS)).item_ids

    def put_event(self, user_id: str | None, session_id: str, event: Event) -> None:
        from recs.client import Event as ServiceEvent

        sent = ServiceEvent(
            event_type=event.event_type,
            item_id=event.item_id,
            sent_at=event.sent_at,
            event_id=event.event_id,
            event_value=event.event_value,
        )
        self.client.put_events(session_id, [sent], user_id=user_id or "")
        time.sleep(self.settle)

    def close(self) -> None:
        self.client.close()


def cold_session_id(seed: int) -> Callable[[str], str]:
    """The fresh session id a cold user's history is replayed under against a running
    service: `replay-cold-<seed>-<user>`, unknown to its model."""
    return lambda user: f"replay-cold-{seed}-{user}"


@dataclass
class ReplayEvent:
    """One event of a subject's replay."""

    item_id: str
    event_type: str
    timestamp: int
    event_value: float | None


@dataclass
class Scores:
    """HR@K and NDCG@K of every step of one pass, with how many events preceded each."""

    hits: list[float] = field(default_factory=list)
    gains: list[float] = field(default_factory=list)
    seen: list[int] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    repeats: list[bool] = field(default_factory=list)

    def add(
        self, user: str, seen: int, ranked: Sequence[str], item: str, k: int, repeat: bool
    ) -> None:
        top = list(ranked[:k])
        rank = top.index(item) + 1 if item in top else 0
        self.hits.append(1.0 if rank else 0.0)
        self.gains.append(1.0 / math.log2(1 + rank) if rank else 0.0)
        self.seen.append(seen)
        self.users.append(user)
        self.repeats.append(repeat)

    def summary(self, min_seen: int = 0, repeats: bool = False) -> dict[str, float]:
        """Means over the steps preceded by at least `min_seen` events, and over users;
        without `repeats`, only the steps whose item is new to the subject."""
        keep = np.asarray(self.seen, dtype=np.int64) >= min_seen
        if not repeats:
            keep &= ~np.asarray(self.repeats, dtype=bool)
        hits = np.asarray(self.hits)[keep]
        gains = np.asarray(self.gains)[keep]
        users = np.asarray(self.users, dtype=object)[keep]
        if not len(hits):
            nan = float("nan")
            return {
                "hr": nan,
                "ndcg": nan,
                "hr_user": nan,
                "ndcg_user": nan,
                "steps": 0,
                "users": 0,
            }
        per_user_hr, per_user_ndcg = [], []
        for user in dict.fromkeys(users.tolist()):
            mine = users == user
            per_user_hr.append(hits[mine].mean())
            per_user_ndcg.append(gains[mine].mean())
        return {
            "hr": float(hits.mean()),
            "ndcg": float(gains.mean()),
            "hr_user": float(np.mean(per_user_hr)),
            "ndcg_user": float(np.mean(per_user_ndcg)),
            "steps": len(hits),
            "users": len(per_user_hr),
        }


@dataclass
class ReplayResult:
    """The figures of one replay (the `--json` document)."""

    k: int
    warm: dict[str, dict[str, float]]
    cold: dict[str, dict[str, float]]
    details: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"k": self.k, "warm": self.warm, "cold": self.cold, **self.details}


def events_by_user(table: pa.Table, users: Sequence[str]) -> dict[str, list[ReplayEvent]]:
    """Each user's events, oldest first (ties in file order)."""
    wanted = set(users)
    columns = {name: table.column(name).to_pylist() for name in ("USER_ID", "ITEM_ID")}
    times = table.column("TIMESTAMP").to_pylist()
    types = table.column("EVENT_TYPE").to_pylist()
    values = (
        table.column("EVENT_VALUE").to_pylist()
        if "EVENT_VALUE" in table.column_names
        else [None] * table.num_rows
    )
    rows: dict[str, list[tuple[int, int, ReplayEvent]]] = {user: [] for user in users}
    for position, user in enumerate(columns["USER_ID"]):
        if user in wanted:
            event = ReplayEvent(
                columns["ITEM_ID"][position], types[position], times[position], values[position]
            )
            rows[user].append((times[position], position, event))
    return {user: [event for *_, event in sorted(found)] for user, found in rows.items()}


def _items_by_user(table: pa.Table, users: Sequence[str]) -> dict[str, set[str]]:
    wanted = set(users)
    items: dict[str, set[str]] = {}
    for user, item in zip(
        table.column("USER_ID").to_pylist(), table.column("ITEM_ID").to_pylist(), strict=True
    ):
        if user in wanted:
            items.setdefault(user, set()).add(item)
    return items


def choose_cold_users(test_users: Sequence[str], fraction: float, seed: int) -> list[str]:
    """A seeded share of the test users (none for fraction 0; at least one otherwise)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"cold_fraction: must be in [0, 1), got {fraction}")
    if fraction == 0 or not test_users:
        return []
    count = max(1, round(fraction * len(test_users)))
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(sorted(test_users), size=count, replace=False).tolist())


def train_without(
    train: pa.Table, users: Sequence[str], params: TrainParams, out_dir: Path
) -> Path:
    """A model trained on `train` minus every row of `users` (they become unknown to it)."""
    kept = train.filter(pc.invert(pc.is_in(train.column("USER_ID"), pa.array(list(users)))))
    save_model(fit_model(kept, params, similar=False), out_dir)
    return out_dir


def model_params(model_dir: Path) -> TrainParams:
    """The parameters a model was trained with."""
    meta = load_model(model_dir, mmap=True).meta
    return TrainParams.model_validate(meta.get("params") or {})


def replay_subject(
    system: ReplaySystem,
    subject: str,
    events: Sequence[ReplayEvent],
    k: int,
    anonymous: bool,
    static: Scores,
    realtime: Scores,
    popularity: Scores | None = None,
    history: Collection[str] = (),
) -> None:
    """Score every step of one subject: static first (nothing sent), then real-time.

    A step whose item the subject already interacted with (in `history`, their training
    items, or earlier in `events`) is marked a repeat: the default filter never recommends
    it, so the summaries leave such steps out unless asked."""
    prior = set(history)
    repeat = []
    for event in events:
        repeat.append(event.item_id in prior)
        prior.add(event.item_id)
    fixed = system.recommend(subject, k)
    for step, event in enumerate(events):
        static.add(subject, step, fixed, event.item_id, k, repeat[step])
    if popularity is not None:
        seen: set[str] = set(history)
        ranked_popular = system.popular(k + len(seen) + len(events))
        for step, event in enumerate(events):
            top = [item for item in ranked_popular if item not in seen][:k]
            popularity.add(subject, step, top, event.item_id, k, repeat[step])
            seen.add(event.item_id)
    for step, event in enumerate(events):
        answer = system.recommend(subject, k)
        realtime.add(subject, step, answer, event.item_id, k, repeat[step])
        if step + 1 < len(events):  # the last event would change no scored answer
            system.put_event(
                None if anonymous else subject,
                subject,
                Event(
                    event_type=event.event_type,
                    item_id=event.item_id,
                    sent_at=float(event.timestamp),
                    event_id=f"replay-{subject}-{step}",
                    event_value=event.event_value,
                ),
            )


def replay(
    warm_system: ReplaySystem,
    cold_system: ReplaySystem | None,
    train: pa.Table,
    holdout: pa.Table,
    warm_users: Sequence[str],
    cold_users: Sequence[str],
    k: int = DEFAULT_K,
    cold_steps: int = DEFAULT_COLD_STEPS,
    min_events: int = MIN_EVENTS,
    on_user: ReplayProgress | None = None,
    cold_session: Callable[[str], str] | None = None,
) -> ReplayResult:
    """Replay the warm users' held-out events on `warm_system` and the cold users' whole
    histories (first `cold_steps`) as sessions on `cold_system` (a model that never saw them).

    A cold user's session id is their id, or `cold_session(user)`: a fresh id where the system
    knows the user (a running service whose model was trained with them)."""
    started = time.perf_counter()
    warm_events = events_by_user(holdout, warm_users)
    trained = _items_by_user(train, warm_users)
    static, realtime = Scores(), Scores()
    for done, user in enumerate(warm_users, start=1):
        replay_subject(
            warm_system,
            user,
            warm_events[user],
            k,
            False,
            static,
            realtime,
            history=trained.get(user, set()),
        )
        if on_user:
            on_user("warm", done, len(warm_users))
    warm = {
        "static": static.summary(),
        "realtime": realtime.summary(),
        "static_with_repeats": static.summary(repeats=True),
        "realtime_with_repeats": realtime.summary(repeats=True),
    }

    cold: dict[str, dict[str, float]] = {}
    if cold_users:
        if cold_system is None:
            raise ValueError("cold users need a system that never saw them")
        both = pa.concat_tables([train, holdout.select(train.column_names)])
        cold_events = events_by_user(both, cold_users)
        c_static, c_realtime, c_popular = Scores(), Scores(), Scores()
        for done, user in enumerate(cold_users, start=1):
            events = cold_events[user][:cold_steps]
            subject = cold_session(user) if cold_session else user
            replay_subject(cold_system, subject, events, k, True, c_static, c_realtime, c_popular)
            if on_user:
                on_user("cold", done, len(cold_users))
        for name, scores in (
            ("static", c_static),
            ("realtime", c_realtime),
            ("popularity", c_popular),
        ):
            cold[name] = scores.summary(min_events)
            cold[f"{name}_all_steps"] = scores.summary()
            cold[f"{name}_with_repeats"] = scores.summary(min_events, repeats=True)
    return ReplayResult(
        k=k,
        warm=warm,
        cold=cold,
        details={
            "warm_users": len(warm_users),
            "cold_users": len(cold_users),
            "cold_steps": cold_steps,
            "min_events": min_events,
            "seconds": round(time.perf_counter() - started, 1),
        },
    )


def local_systems(
    model_dir: Path,
    train: pa.Table,
    cold_users: Sequence[str],
    work_dir: Path | None = None,
) -> tuple[LocalReplaySystem, LocalReplaySystem | None, Callable[[], None]]:
    """The evaluated model, and (with cold users) one trained without them, each with a fresh
    event store; and a function releasing both (and the temporary directory)."""
    temp = tempfile.TemporaryDirectory(prefix="recs-replay-", dir=work_dir)
    root = Path(temp.name)
    systems: list[LocalReplaySystem] = []

    def close() -> None:
        for system in systems:
            system.close()
        temp.cleanup()

    try:
        warm = LocalReplaySystem(model_dir, root / "warm-state", name="local")
        systems.append(warm)
        cold = None
        if cold_users:
            logger.info("training a model without the %d cold users", len(cold_users))
            cold_dir = train_without(train, cold_users, model_params(model_dir), root / "cold")
            cold = LocalReplaySystem(cold_dir, root / "cold-state", name="local (cold users)")
            systems.append(cold)
    except BaseException:
        close()
        raise
    return warm, cold, close
