"""The backend interface every recommendation engine implements, and its domain types.

Nothing here knows about protobuf or gRPC: the server translates requests into these
calls and these results into responses. Methods are synchronous on purpose: the local
engine computes in memory (its heavy parts release the GIL) and Personalize is blocking
boto3 I/O; the server decides where each runs (`server.dispatch`), and offline evaluation
can call a backend directly without an event loop.

Limits are Amazon Personalize's; the server validates them before calling a backend.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from recs.backends.errors import BackendMisconfiguredError
from recs.backends.filtering import FilterCall, FilterSet

# observer(operation, seconds, code) of a call a backend made to a remote service
CallObserver = Callable[[str, float, str], None]

DEFAULT_NUM_RESULTS = 25
MAX_NUM_RESULTS = 500
MAX_ID_LENGTH = 256
MAX_RERANK_ITEMS = 500
MAX_EVENTS = 10  # per PutEvents call
MAX_ITEMS_PER_CALL = 10  # per PutItems call


@dataclass(frozen=True, slots=True)
class ScoredItem:
    """One recommended item id with its relevance score (0.0 where the recipe has none)."""

    item_id: str
    score: float


@dataclass(slots=True)
class Recommendations:
    """An ordered answer, best first: item ids and their scores, and the answer's id.

    Held as two parallel lists rather than ScoredItem objects: the server answers
    thousands of these per second and turns them straight into wire bytes, so the
    answer should cost one list per column, not one object per item. Not frozen for the
    same reason (a frozen dataclass sets each field through `object.__setattr__`); treat
    it as read-only.
    """

    item_ids: list[str]
    scores: list[float]
    recommendation_id: str = ""
    served_by: str = ""  # set when a fallback engine answered instead of the configured one
    # Why an item is there, by its position, where a recipe says (Personalize's `reason`,
    # e.g. "Exploration"); most answers have none.
    reasons: Mapping[int, tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        if len(self.item_ids) != len(self.scores):
            raise ValueError(
                f"{len(self.item_ids)} item ids but {len(self.scores)} scores in an answer"
            )

    @classmethod
    def of(cls, items: Iterable[ScoredItem], recommendation_id: str = "") -> Recommendations:
        """An answer from (item id, score) pairs."""
        pairs = list(items)
        return cls(
            [item.item_id for item in pairs], [item.score for item in pairs], recommendation_id
        )

    @property
    def items(self) -> list[ScoredItem]:
        """The answer as ScoredItem pairs, best first."""
        return [ScoredItem(i, s) for i, s in zip(self.item_ids, self.scores, strict=True)]


@dataclass(frozen=True, slots=True)
class Event:
    """One interaction sent in real time (Personalize's PutEvents `Event`).

    `sent_at` is in seconds since the epoch; `event_value` None when not given.
    """

    event_type: str
    item_id: str
    sent_at: float
    event_id: str = ""
    event_value: float | None = None
    recommendation_id: str = ""
    impression: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """A video added or replaced in real time (Personalize's PutItems), with its catalog
    columns besides id, title and url in `properties` (e.g. CATEGORIES, DURATION)."""

    item_id: str
    title: str = ""
    url: str = ""
    properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What an operator or dashboard needs to know about the model being served."""

    backend: str
    details: Mapping[str, str] = field(default_factory=dict)


class Backend(abc.ABC):
    """One recommendation engine emulating Personalize's four recipes.

    Subclasses declare `name` (the config key that selects them) and `config_model`
    (the pydantic model of their config section) and take that config in `__init__`.
    `__init__` must be cheap; `start()` does the loading and raises
    `backends.errors.ModelLoadError` when the backend cannot serve.
    """

    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]
    # False when every call only computes briefly in memory (no I/O, no lock held long):
    # the server may then call it on its event loop instead of hopping to a thread pool.
    blocking: ClassVar[bool] = True
    # The filters requests may name, and GetRecommendations' default one (`use_filters`).
    filters: FilterSet = FilterSet.from_expressions({})

    def use_filters(self, filters: FilterSet) -> None:
        """Serve these filters (call before `start()`); by default only the built-in default
        filter, `exclude_interacted`, which GetRecommendations applies when given none."""
        self.filters = filters

    def start(self) -> None:  # noqa: B027 - optional hook
        """Load models or open clients; after it returns the backend can serve."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources. Safe to call more than once."""

    def observe_calls(self, observer: CallObserver) -> None:  # noqa: B027 - optional hook
        """Report each call to a remote service: `observer(operation, seconds, code)`.

        `code` is "OK" or the service's error code. Only backends that call out (Personalize)
        have anything to report; the server passes its metrics here.
        """

    def watched_files(self) -> list[Path]:
        """Files whose change means a new model to load (the server then swaps it in).

        None by default; the local engine names its model's files when asked to watch them.
        """
        return []

    @abc.abstractmethod
    def info(self) -> ModelInfo:
        """Describe the backend and the model it serves."""

    @abc.abstractmethod
    def recommend(
        self, user_id: str, num_results: int, filter: FilterCall | None = None
    ) -> Recommendations:
        """What `user_id` should watch next, through `filter`.

        Without a filter the default one applies (`self.filters.default`: by default
        everything the user interacted with is excluded). Unknown users get popular items
        (cold start), through the same filter. A filter that leaves fewer than
        `num_results` items gives a shorter answer; scores are shares of the softmax over
        every item, whatever the filter leaves out.
        """

    def recommend_many(
        self,
        requests: Sequence[tuple[str, int]],
        filters: Sequence[FilterCall | None] | None = None,
    ) -> list[Recommendations]:
        """`recommend(user_id, num_results, filter)` for each pair (and `filters[k]`), in order.

        Backends that answer several users faster together (one pass over the items) override
        this; the server batches concurrent GetRecommendations calls through it.
        """
        calls = filters if filters is not None else [None] * len(requests)
        return [
            self.recommend(user_id, n, call)
            for (user_id, n), call in zip(requests, calls, strict=True)
        ]

    def recommend_without_scoring(
        self, user_id: str, num_results: int, filter: FilterCall | None = None
    ) -> Recommendations | None:
        """`recommend`'s answer when it is at hand without computing (precomputed, or a
        cold user's popular items), else None. Must cost microseconds: the server calls
        it on its event loop before queueing the call for scoring."""
        return None

    @abc.abstractmethod
    def similar_items(
        self,
        item_id: str,
        num_results: int,
        filter: FilterCall | None = None,
        user_id: str | None = None,
    ) -> Recommendations:
        """Items like `item_id`, never the item itself; unknown items get popular items.

        `filter` (none by default) may compare with the item's own fields (`CurrentItem`).
        `user_id`, when given, leaves out what that user watched (Personalize's
        video-on-demand "Because you watched X" and "More like X") and feeds filters on
        interactions.
        """

    @abc.abstractmethod
    def popular_items(
        self, num_results: int, user_id: str | None = None, filter: FilterCall | None = None
    ) -> Recommendations:
        """Most popular items by distinct users, ties broken deterministically.

        `user_id` matters only to a filter on the user's interactions.
        """

    def trending_items(
        self, num_results: int, user_id: str | None = None, filter: FilterCall | None = None
    ) -> Recommendations:
        """The items rising fastest now (Personalize Trending-Now): most new interactions in
        the latest trend interval against the one before. `user_id` matters only to a filter
        on the user's interactions."""
        raise BackendMisconfiguredError(f"the {self.name} backend has no trending recipe")

    def put_events(self, user_id: str | None, session_id: str, events: Sequence[Event]) -> None:
        """Record what `user_id` (or, when None, the anonymous `session_id`) did.

        Returns once the events are stored durably (local engine) or accepted by the service
        (Personalize); recommendations reflect them shortly after. Blocks on I/O: the server
        calls it off its event loop. Limits are checked before (`backends.limits`).
        """
        raise BackendMisconfiguredError(f"the {self.name} backend does not take events")

    def submit_events(
        self, user_id: str | None, session_id: str, events: Sequence[Event]
    ) -> Future | None:
        """`put_events` without blocking, for backends that can: a future done once the
        events are stored; None (the default) when the backend only offers `put_events`,
        which the server then runs in its thread pool. Must cost microseconds."""
        return None

    def put_items(self, items: Sequence[CatalogItem]) -> None:
        """Add or replace catalog items (new videos join filters and enrichment at once)."""
        raise BackendMisconfiguredError(f"the {self.name} backend does not take items")

    def observe_items(  # noqa: B027 - optional hook
        self, observer: Callable[[Sequence[CatalogItem]], None]
    ) -> None:
        """Report catalog items the backend learns after start (PutItems through any server
        process), so the server enriches answers with them; called at once with those
        already known. Only engines that keep the catalog themselves (local) report any;
        the observer may be called from another thread."""

    @abc.abstractmethod
    def rerank(
        self, user_id: str, item_ids: Sequence[str], filter: FilterCall | None = None
    ) -> Recommendations:
        """The distinct `item_ids`, best first for `user_id`, without those `filter` drops.

        Ids the model does not know come last, in input order, with score 0.
        """
