"""The local backend: serves a trained LocalModel through the Backend interface.

Emulates Amazon Personalize's four recipes:

- recommend (user-personalization): the best items by ALS dot product among those the
  request's filter lets through (by default the `exclude_interacted` filter: nothing the
  user interacted with), scored by their share of the softmax over every item, as
  Personalize scores; unknown users get `popular_items` through the same filter;
- similar_items (SIMS): precomputed neighbours, then popular items to fill the list;
  unknown items get `popular_items`;
- popular_items (popularity-count): distinct users per item, ties by item id ascending,
  score = the item's share of all distinct-user counts;
- rerank (personalized-ranking): softmax over the known input ids; unknown ids follow
  with score 0 in input order. For an unknown user the known ids are ordered by
  popularity and scored by their share of the known ids' popularity. A filter drops ids
  from the ranking without changing the others' scores.

Filters (`backends.filtering`) are compiled against the model and the catalog at start
(`backends.local.filter_masks`); a filtered call costs a few mask operations over the
items. Calls whose filter is the history exclusion take the faster paths built for it: the
precomputed table (`recs precompute`), the approximate index, the kernel's history mask.

Everything that does not depend on the request (id maps, the popularity order) is built
once in `start()`, which then answers one request of every kind (`_warm_up`), so that
whatever runs on a first call (numba specialisations, BLAS and faiss first use, first
touch of the memory-mapped pages) runs before the server reports SERVING.
`recommend_many` scores a batch of users in one compiled call (`backends.local.kernels`;
the server batches concurrent GetRecommendations calls); a single `recommend` is a batch
of one.
Every call computes in memory without I/O, so the backend declares `blocking = False` and
the server calls it on its event loop rather than through a thread pool.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import logging
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from recs.backends.base import (
    DEFAULT_NUM_RESULTS,
    MAX_NUM_RESULTS,
    MAX_RERANK_ITEMS,
    Backend,
    CatalogItem,
    Event,
    ModelInfo,
    Recommendations,
)
from recs.backends.errors import BackendError, BackendUnavailableError, ModelLoadError
from recs.backends.filtering import FilterCall, FilterSet
from recs.backends.local.answers import META_FILE as ANSWERS_META_FILE
from recs.backends.local.answers import AnswerTable, load_answers, model_fingerprint
from recs.backends.local.artifacts import META_FILE as MODEL_META_FILE
from recs.backends.local.artifacts import LocalModel, load_model, padded_row_head
from recs.backends.local.event_store import EventStore
from recs.backends.local.exploration import (
    DEFAULT_AGE_CUTOFF_DAYS,
    EXPLORATION_REASON,
    NewItems,
    explore,
    find_new_items,
)
from recs.backends.local.exploration import (
    DEFAULT_WEIGHT as DEFAULT_EXPLORATION_WEIGHT,
)
from recs.backends.local.filter_masks import CompiledFilters, Window
from recs.backends.local.ids import RecommendationIds
from recs.backends.local.kernels import GEMM_FROM_ROWS, readonly
from recs.backends.local.live import LiveState, LiveSubject
from recs.backends.local.trending import DEFAULT_TREND_INTERVAL, Trending

if TYPE_CHECKING:
    from recs.backends.local.ann import HnswIndex, InnerProductIndex
from recs.backends.local.scoring import (
    NORM_ORDER_MAX_SHARE,
    CandidateFactors,
    NormOrdered,
    candidate_scores,
    norm_order_share,
    rank_distinct_scores,
    rank_scores,
    recommend_by_norm,
    recommend_candidates,
    recommend_filtered,
    recommend_rows,
    rows_of,
)
from recs.pipeline.dataset import DatasetError, read_items

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Shortest time between two looks at the event store (see `_poll_events`).
MIN_POLL_GAP = 0.01

# Hex digits of the model fingerprint that make its version in GetModelInfo.
VERSION_DIGITS = 12


class LocalBackendConfig(BaseModel):
    """The `[local]` config section."""

    model_config = ConfigDict(extra="forbid")

    model_dir: Path
    # The catalog (items.csv, or the dataset directory holding it) that Items filters read;
    # defaults to the serve config's top-level `catalog`.
    catalog: Path | None = None
    # Where PutEvents and PutItems are stored (SQLite, backends.local.event_store); default
    # beside the model directory (`<model_dir>-state`), so retraining keeps it.
    state_dir: Path | None = None
    # Seconds between looks for events other server processes stored (workers share them).
    event_poll_interval: float = Field(0.1, gt=0, le=10)
    mmap: bool = True  # memory-map the arrays: pages shared between server processes
    # Load a new model written to model_dir (by `recs train`, then `recs precompute`) without
    # a restart, as SIGHUP does: the server watches the files `watched_files` names.
    watch_model: bool = False
    # Catalogs of at least this many items take their top n from an approximate
    # inner-product index (backends.local.ann) when the model stores user_log_normalizer;
    # smaller ones, or None (the default), score every item exactly. Off by default: for
    # recall@10 0.95 an IVF index has to scan so many cells that it serves no faster than
    # exact scoring (bench/README.md, "Catalog size").
    ann_min_items: int | None = Field(None, ge=0)
    # Which index: "ivf" (built at load; scans cells) or "hnsw" (a graph `recs index`
    # builds once into the model directory; the server only loads it).
    ann_index: Literal["ivf", "hnsw"] = "ivf"
    # IVF: share of the index cells scanned per call: recall against speed; 0.45 reaches
    # recall@10 0.95 on factors without cluster structure. ann_nprobe sets a cell count.
    ann_probe_fraction: float = Field(0.45, gt=0.0, le=1.0)
    ann_nprobe: int | None = Field(None, ge=1)
    ann_nlist: int | None = Field(None, ge=1)  # index cells; default sqrt(items)
    # HNSW: candidates kept while walking the graph (at least the k asked for): recall
    # against speed (the trade-off at 1M items: bench/README.md, "Catalog size").
    ann_ef_search: int = Field(1024, ge=1)
    # Answer GetRecommendations from the top-K table `recs precompute` stores with the
    # model (backends.local.answers) when num_results <= K; off: score every call.
    precomputed_answers: bool = True
    # GetTrendingItems: the trend interval, one of Personalize's trend discovery frequencies
    # (backends.local.trending).
    trend_interval: Literal["30m", "1h", "3h", "1d"] = DEFAULT_TREND_INTERVAL
    # Item exploration (backends.local.exploration), as a Personalize campaign's
    # itemExplorationConfig: how much of a user's recommendations new videos get (0: none),
    # and how recent (days before the latest interaction) a video must be to count as new.
    exploration_weight: float = Field(DEFAULT_EXPLORATION_WEIGHT, ge=0.0, le=1.0)
    exploration_item_age_cutoff: float = Field(DEFAULT_AGE_CUTOFF_DAYS, gt=0)


def _domain_errors(method: Callable[..., T]) -> Callable[..., T]:
    """Let only backends.errors types escape: anything else is logged and wrapped."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return method(*args, **kwargs)
        except BackendError:
            raise
        except Exception as exc:
            logger.exception("local backend failed in %s", method.__name__)
            raise BackendError(f"local backend failed in {method.__name__}") from exc

    return wrapper


class LocalBackend(Backend):
    """Serves a LocalModel trained by `recs train`."""

    name: ClassVar[str] = "local"
    config_model: ClassVar[type[BaseModel]] = LocalBackendConfig
    blocking: ClassVar[bool] = False

    def __init__(self, config: LocalBackendConfig) -> None:
        self.config = config
        self._model: LocalModel | None = None
        self._ids = RecommendationIds()
        self._store: EventStore | None = None
        self._item_observers: list[Callable[[Sequence[CatalogItem]], None]] = []
        self._live: LiveState | None = None
        self._poller: threading.Thread | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()

    @classmethod
    def from_model(
        cls,
        model: LocalModel,
        model_dir: str | Path = "<in memory>",
        config: LocalBackendConfig | None = None,
        filters: FilterSet | None = None,
    ) -> LocalBackend:
        """A started backend serving an in-memory model (evaluation, tuning, tests)."""
        backend = cls(config or LocalBackendConfig(model_dir=Path(model_dir), mmap=False))
        if filters is not None:
            backend.use_filters(filters)
        backend._install(model)
        return backend

    def start(self) -> None:
        """Load and validate the model and compile the filters against it and the catalog;
        ModelLoadError when the model is missing or corrupt or a filter cannot be served."""
        model = load_model(self.config.model_dir, mmap=self.config.mmap)
        self._install(model)
        self._open_events(self.config.state_dir or _default_state_dir(self.config.model_dir))
        logger.info(
            "local model %s loaded from %s: %d users, %d items (every kind of request "
            "answered once: warm)",
            self._version,
            self.config.model_dir,
            model.num_users,
            model.num_items,
        )

    def _install(self, model: LocalModel) -> None:
        """Build the per-model lookups, publish the model (never half-built), then answer
        a request of every kind (`_warm_up`); a failure there unpublishes it."""
        # Plain ndarray views of memory maps (no copy, pages still shared): np.memmap's
        # subclass hooks would otherwise run on every slice and product result. Read-only
        # whether memory-mapped or not: nothing may change a model being served, and the
        # kernels take read-only inputs (kernels.readonly), which then costs no view per call.
        model = dataclasses.replace(
            model,
            **{name: readonly(np.asarray(array)) for name, array in model.arrays().items()},
        )
        user_index = {user: i for i, user in enumerate(model.user_ids.tolist())}
        item_index = {item: i for i, item in enumerate(model.item_ids.tolist())}
        if len(user_index) != model.num_users or len(item_index) != model.num_items:
            raise ModelLoadError(f"{self.config.model_dir}: duplicate ids in user_ids or item_ids")
        popularity = np.asarray(model.popularity, dtype=np.float64)
        total = popularity.sum()
        # Most distinct users first, ties by item id ascending.
        self._popular_order = np.lexsort((model.item_ids, -popularity))
        self._popular_share = popularity / total if total > 0 else popularity
        self._user_index, self._item_index = user_index, item_index
        self._item_id_list: list[str] = list(item_index)
        head = self._popular_order[:MAX_NUM_RESULTS]
        self._popular_head = (
            [self._item_id_list[i] for i in head.tolist()],
            self._popular_share[head].tolist(),
        )
        self._ann = self._inner_product_index(model)
        stored = self._stored_answers(model)
        self._answers = stored if self.config.precomputed_answers else None
        self._catalog_table = self._catalog()
        self._added_items: dict[str, CatalogItem] = {}  # PutItems, the latest of each id
        self._items_seq = 0
        self._compiled = CompiledFilters(self.filters, model, self._catalog_table)
        self._trending = Trending(
            self.config.trend_interval, model.trend_items, model.trend_times, self._popular_order
        )
        self._refresh_new_items(model)
        self._all_items = readonly(np.ones((1, model.num_items), dtype=np.bool_))
        self._every_item = readonly(np.arange(model.num_items, dtype=np.int64))
        # Every user's row index: a lone call's rows are a read-only view of it, with no
        # array to build and freeze per call (8 bytes per user).
        self._user_rows = readonly(np.arange(model.num_users, dtype=np.int64))
        # The item factors as (factors, items), C-contiguous: the batch product against it
        # is several times faster than against item_factors.T (a private copy, 4 bytes per
        # item and factor).
        self._item_factors_t = readonly(
            np.ascontiguousarray(model.item_factors.T, dtype=np.float32)
        )
        self._no_history_indptr = readonly(np.zeros_like(model.history_indptr))  # UNFILTERED
        # Each user's softmax normaliser, stored by training or by `recs precompute` (used
        # with the table off too): spares a scored call the normaliser's pass over every
        # item, and lets a filtered call score only the items its filter allows.
        self._normalizers = model.user_log_normalizer
        if self._normalizers is None and stored is not None:
            self._normalizers = stored.normalizers
        # With them, a scored call reads the items largest norm first and stops once no
        # other can enter its top n (`recommend_by_norm`), where that stops early.
        self._norm_ordered = self._norm_order(model)
        self._candidate_factors = CandidateFactors(  # filtered calls
            model.item_factors, by_norm=self._norm_ordered is not None
        )
        self._version = model_fingerprint(model)[:VERSION_DIGITS]
        self._model = model
        try:
            self._warm_up()
        except BaseException:
            self._model = None
            raise

    def _catalog(self) -> pa.Table | None:
        """The catalog Items filters read, when configured."""
        if self.config.catalog is None:
            return None
        try:
            return read_items(self.config.catalog)
        except DatasetError as exc:
            raise ModelLoadError(f"catalog for filters: {exc}") from exc

    def _warm_up(self) -> None:
        """Answer one request of every kind, so that no request after start() pays a
        first-call cost.

        Every kernel is compiled, or loaded from numba's cache, for the types this model's
        arrays really have (memory-mapped or not), and every branch a request can take runs
        once: GetRecommendations within the precomputed top K and beyond it (one user, and
        batches on either side of the matrix-product threshold, through the approximate
        index when there is one), cold users; re-ranking of known and unknown ids for a
        known and a cold user; similar items with and without popular fill; popular and
        trending items. Costs a few milliseconds on a small model, a few dozen users' scoring
        on a big one.
        """
        model = self.model
        users = model.user_ids[:GEMM_FROM_ROWS].tolist()
        items = model.item_ids[:MAX_RERANK_ITEMS].tolist()
        cold_user = _absent_id(self._user_index, "warm-up user")
        unknown_item = _absent_id(self._item_index, "warm-up item")
        top = self._answers.top if self._answers is not None else DEFAULT_NUM_RESULTS
        counts = sorted({1, top, min(top + 1, MAX_NUM_RESULTS), MAX_NUM_RESULTS})
        for user in [*users[:1], cold_user]:
            for n in counts:
                self.recommend_without_scoring(user, n)
            self.recommend(user, counts[-1])
        if users:
            for size in sorted({1, 2, GEMM_FROM_ROWS}):
                batch = [(users[k % len(users)], counts[k % len(counts)]) for k in range(size)]
                self.recommend_many([*batch, (cold_user, top)])
        if users:  # the filtered path: one row of allowed items
            self._recommend_filtered(self.model.user_factors[:1], [top], self._all_items)
            recommend_candidates(  # the candidate paths, when normalisers are stored:
                self.model.user_factors[[0, 0]],
                self._candidate_factors,
                [self._every_item, self._every_item.copy()],  # a shared list, a per-user one
                [top, top],
                [0.0, 0.0],
            )
        for user in [*users[:1], cold_user]:
            for item_ids in (items[:1], items, [*items[:2], unknown_item], [unknown_item]):
                self.rerank(user, item_ids)
        for item in [*items[:1], unknown_item]:
            self.similar_items(item, 1)
            self.similar_items(item, MAX_NUM_RESULTS)
        self.popular_items(1)
        self.popular_items(MAX_NUM_RESULTS, cold_user)
        self.trending_items(MAX_NUM_RESULTS)
        self.info()

    def _norm_order(self, model: LocalModel) -> NormOrdered | None:
        """The items by norm, when normalisers are stored and a top n settles early in
        that order (ALS models); None: every item is scored."""
        if self._normalizers is None:
            return None
        ordered = NormOrdered.of(model.item_factors)
        share = norm_order_share(model.user_factors, ordered)
        if share > NORM_ORDER_MAX_SHARE:
            logger.info(
                "scoring every item: read by norm, a top 25 would take %.0f%% of them "
                "(factors of even norms)",
                100 * share,
            )
            return None
        logger.info("scoring by norm: a top 25 reads ~%.1f%% of the items", 100 * share)
        return ordered

    def _stored_answers(self, model: LocalModel) -> AnswerTable | None:
        """The top-K table `recs precompute` stored with the model, when computed from it.

        With `precomputed_answers` off, only its normalisers are used (the same numbers
        scoring would compute, so answers do not change).
        """
        model_dir = self.config.model_dir
        if not model_dir.is_dir():
            return None
        table = load_answers(model_dir, model)
        if table is None:
            return None
        if not self.config.precomputed_answers:
            logger.info(
                "precomputed answers off ([local] precomputed_answers = false): every call "
                "is scored%s",
                "" if table.normalizers is None else ", with the normalisers they stored",
            )
        else:
            logger.info(
                "precomputed answers loaded: top %d for %d users (num_results above %d "
                "is scored per request)",
                table.top,
                model.num_users,
                table.top,
            )
        return table

    def _inner_product_index(self, model: LocalModel) -> InnerProductIndex | HnswIndex | None:
        """The approximate top-n index, for large catalogs with stored normalisers only."""
        threshold = self.config.ann_min_items
        if threshold is None or model.num_items < threshold:
            return None
        if model.user_log_normalizer is None:
            logger.warning(
                "%d items but no user_log_normalizer.npy: scoring exactly (retrain to enable "
                "the approximate index)",
                model.num_items,
            )
            return None
        if self.config.ann_index == "hnsw":
            return self._stored_hnsw_index(model)
        from recs.backends.local.ann import InnerProductIndex

        return InnerProductIndex(
            model.item_factors,
            nlist=self.config.ann_nlist,
            nprobe=self.config.ann_nprobe,
            probe_fraction=self.config.ann_probe_fraction,
        )

    def _stored_hnsw_index(self, model: LocalModel) -> HnswIndex | None:
        """The HNSW index `recs index` stored with the model, if it fits this model."""
        from recs.backends.local.ann import HNSW_FILE, HnswIndex

        path = self.config.model_dir / HNSW_FILE
        if not path.is_file():
            logger.warning(
                "no %s: scoring exactly (build it with `recs index --model %s`)",
                path,
                self.config.model_dir,
            )
            return None
        index = HnswIndex.load(path, ef_search=self.config.ann_ef_search)
        if (index.num_items, index.dim) != model.item_factors.shape:
            logger.warning(
                "%s holds %d items x %d factors, the model %d x %d: scoring exactly "
                "(rebuild it with `recs index`)",
                path,
                index.num_items,
                index.dim,
                *model.item_factors.shape,
            )
            return None
        logger.info("HNSW index loaded from %s (ef_search %d)", path, index.ef_search)
        return index

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._poller is not None:
            self._poller.join(timeout=10)
            self._poller = None
        if self._store is not None:
            self._store.close()
            self._store = None
        self._model = None

    # --- real-time events -------------------------------------------------------------

    def _open_events(self, state_dir: Path) -> None:
        """Open the event store, replay every event into the live state, then keep reading
        what this and other server processes store (a thread polling every
        `event_poll_interval` seconds, woken at once by this process's own events)."""
        store = EventStore(state_dir).open()
        live = LiveState(self.model, self._user_index)
        live.applied_seq = int((self.model.meta.get("events") or {}).get("through_seq", 0))
        self._store, self._live = store, live
        replayed = self._apply_stored_events()
        if replayed:
            logger.info("%d stored events replayed from %s", replayed, store.path)
        # The thread and the finalizer hold no reference to the backend: one dropped without
        # close() (the server's model swap drops the old one) is still released, and with it
        # the thread and the store.
        self._poller = threading.Thread(
            target=_poll_events,
            args=(weakref.ref(self), self._stopping, self._wake, self.config.event_poll_interval),
            name="live-events",
            daemon=True,
        )
        self._poller.start()
        weakref.finalize(self, _release_events, store, self._stopping, self._wake)

    def _apply_stored_items(self) -> None:
        """Add the stored items not yet applied to the filters' catalog (compiled again,
        then swapped in whole) and report them to the item observers."""
        assert self._store is not None
        while rows := self._store.items_after(self._items_seq):
            for row in rows:
                self._added_items[row.item.item_id] = row.item
            self._items_seq = rows[-1].seq
            self._compiled = CompiledFilters(
                self.filters, self.model, self._catalog_table, list(self._added_items.values())
            )
            self._refresh_new_items(self.model)
            for observer in list(self._item_observers):
                observer([row.item for row in rows])

    def observe_items(self, observer: Callable[[Sequence[CatalogItem]], None]) -> None:
        """Report PutItems items (stored by any server process) to `observer`: those
        applied so far at once, the next ones as the polling thread applies them."""
        self._item_observers.append(observer)
        if self._added_items:
            observer(list(self._added_items.values()))

    def put_items(self, items: Sequence[CatalogItem]) -> None:
        """Store the items durably (group commit), then wake the thread that applies them:
        they join the filters' catalog and the answers' enrichment. Popularity and similar
        items stay as trained, as on Personalize, until the next training."""
        if self._store is None:
            raise BackendUnavailableError(
                "local backend: no event store (start() not called, or an in-memory model)"
            )
        self._store.append_items(items)
        self._wake.set()

    def _apply_stored_events(self) -> int:
        """Fold every stored item, then every stored event, not yet applied into the live
        state; returns how many events."""
        assert self._store is not None and self._live is not None
        self._apply_stored_items()
        applied = 0
        while True:
            rows = self._store.events_after(self._live.applied_seq)
            if not rows:
                return applied
            index = self._compiled.index
            self._live.apply(rows, index)
            known = [row.event for row in rows if row.event.item_id in index]
            self._trending.add(
                [index[event.item_id] for event in known], [int(event.sent_at) for event in known]
            )
            applied += len(rows)

    def put_events(self, user_id: str | None, session_id: str, events: Sequence[Event]) -> None:
        """Store the events durably (group commit), then wake the thread that applies them."""
        self.submit_events(user_id, session_id, events).result()

    def submit_events(
        self, user_id: str | None, session_id: str, events: Sequence[Event]
    ) -> Future:
        """Queue the events for the store's next group commit; the future is done once they
        are committed, and the thread that applies them is woken then."""
        if self._store is None:
            raise BackendUnavailableError(
                "local backend: no event store (start() not called, or an in-memory model)"
            )
        done = self._store.submit_events(user_id, session_id, events)
        wake = self._wake
        done.add_done_callback(lambda _: wake.set())
        return done

    def events_applied(self, subject: str) -> int:
        """How many events of `subject` (a user or an anonymous session) sent since training
        this process has applied: a caller that sent k events and needs to see their effect
        (the replay evaluation, tests) waits until it reaches k."""
        live = self._live_subject(subject)
        return live.events if live is not None else 0

    def _live_subject(self, subject: str | None) -> LiveSubject | None:
        live = self._live
        if live is None or subject is None or not live.subjects:
            return None
        return live.get(subject)

    def watched_files(self) -> list[Path]:
        """meta.json (a new training) and answers.json (a new table), with `watch_model`."""
        if not self.config.watch_model:
            return []
        return [self.config.model_dir / MODEL_META_FILE, self.config.model_dir / ANSWERS_META_FILE]

    @property
    def model(self) -> LocalModel:
        if self._model is None:
            raise BackendUnavailableError("local backend: model not loaded (start() not called)")
        return self._model

    def info(self) -> ModelInfo:
        """What a caller needs to know about the model served, and nothing about the host.

        `model_version`: the first hex digits of the model's fingerprint (a digest of
        meta.json, which records the training time, data hashes and parameters, and of the
        array shapes; `answers.json` holds it in full), so the same model directory has the
        same version in every process and on every host, and a retrained one another.
        Then `trained_at`, `counts.*`, `precomputed_answers` (`top K` or `off`) and the
        training `params.*`. No file paths, data hashes or library versions: the operator
        finds the model directory in the start-up log and the rest in its meta.json.
        """
        model = self.model
        meta = model.meta
        details: dict[str, str] = {"model_version": self._version}
        if "trained_at" in meta:
            details["trained_at"] = str(meta["trained_at"])
        # The first few in the order the server's SERVING log line shows them.
        counts = {"users": model.num_users, "items": model.num_items, **(meta.get("counts") or {})}
        main = [key for key in ("users", "items", "interactions") if key in counts]
        for key in main:
            details[f"counts.{key}"] = _detail(counts[key])
        answers = self._answers
        details["precomputed_answers"] = f"top {answers.top}" if answers is not None else "off"
        details["trend_interval"] = self.config.trend_interval
        details["exploration_weight"] = _detail(self.config.exploration_weight)
        details["exploration_item_age_cutoff"] = _detail(self.config.exploration_item_age_cutoff)
        for key in sorted(counts.keys() - main):
            details[f"counts.{key}"] = _detail(counts[key])
        for key, value in sorted((meta.get("params") or {}).items()):
            details[f"params.{key}"] = _detail(value)
        return ModelInfo(backend=self.name, details=details)

    @_domain_errors
    def recommend(
        self, user_id: str, num_results: int, filter: FilterCall | None = None
    ) -> Recommendations:
        """`recommend_many` for one call. The server scores cheap calls one at a time on its
        event loop, so the common one (a model user without events since training, and no
        new videos to mix in) goes straight to its scoring, without a batch's bookkeeping."""
        model = self.model  # BackendUnavailableError until start()
        call = self.filters.applied(filter)
        user = self._user_index.get(user_id)
        if user is None or len(self._new_items.items) or self._live_subject(user_id) is not None:
            return self.recommend_many([(user_id, num_results)], [filter])[0]
        rows = self._user_rows[user : user + 1]
        items, scores = self._score_users(_kind(call), rows, [call], [num_results], model)[0]
        return self._answer(items, scores)

    @_domain_errors
    def recommend_without_scoring(
        self, user_id: str, num_results: int, filter: FilterCall | None = None
    ) -> Recommendations | None:
        """From the precomputed table (default filter only), or popular items for an
        unknown user; else None."""
        _ = self.model  # BackendUnavailableError until start()
        call = self.filters.applied(filter)
        if self._live_subject(user_id) is not None:
            return None  # events since training: scored with the updated vector
        user = self._user_index.get(user_id)
        if user is None:
            return self.popular_items(num_results, user_id, call)
        table = self._answers
        if table is None or num_results > table.top or not _history_only(call):
            return None
        answer = self._named(*table.row(user, num_results))
        if not len(self._new_items.items):
            return answer
        return self._explored(
            answer,
            self.model.user_factors[user],
            call,
            None,
            num_results,
            None if self._normalizers is None else float(self._normalizers[user]),
            live=False,
        )

    @_domain_errors
    def recommend_many(
        self,
        requests: Sequence[tuple[str, int]],
        filters: Sequence[FilterCall | None] | None = None,
    ) -> list[Recommendations]:
        """Known users scored together in one kernel call (those whose filter is the history
        exclusion through the approximate index when there is one); unknown users get
        popular items through their filter."""
        model = self.model  # BackendUnavailableError until start()
        applied = self.filters.applied
        calls = [applied(f) for f in filters or [None] * len(requests)]
        # Each request's subject: a live one (events since training) with a vector to score
        # with, or a model user, grouped by the kind of its filter (`_kind`); neither (a
        # session whose videos the model does not know, an unknown user) gets popular items.
        lives: list[LiveSubject | None] = [None] * len(requests)
        users: list[int | None] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        live_rows: list[int] = []
        user_index = self._user_index
        for k, (user_id, _) in enumerate(requests):
            live = self._live_subject(user_id)
            if live is not None:
                if _has_vector(live):
                    lives[k] = live
                    live_rows.append(k)
                continue
            user = users[k] = user_index.get(user_id)
            if user is not None:
                groups.setdefault(_kind(calls[k]), []).append(k)
        answers: list[Recommendations | None] = [None] * len(requests)
        for kind, group in groups.items():
            rows = np.array([users[k] for k in group], dtype=np.intp)
            scored = self._score_users(
                kind, rows, [calls[k] for k in group], [requests[k][1] for k in group], model
            )
            for k, (items, scores) in zip(group, scored, strict=True):
                answers[k] = self._answer(items, scores)
        if live_rows:
            subjects = [lives[k] for k in live_rows]
            scored = self._recommend_filtered(
                np.stack([subject.vector for subject in subjects]),  # type: ignore[union-attr]
                [requests[k][1] for k in live_rows],
                np.stack(
                    [
                        self._live_allowed(calls[k], subject)  # type: ignore[arg-type]
                        for k, subject in zip(live_rows, subjects, strict=True)
                    ]
                ),
            )
            for k, (items, scores) in zip(live_rows, scored, strict=True):
                answers[k] = self._answer(items, scores)
        if len(self._new_items.items):
            normalizers = self._normalizers
            for k, answer in enumerate(answers):
                live, user = lives[k], users[k]
                if answer is None or (live is None and user is None):
                    continue
                answers[k] = self._explored(
                    answer,
                    live.vector if live is not None else model.user_factors[user],
                    calls[k],
                    live.window if live is not None else self._compiled.model_window(user),
                    requests[k][1],
                    None if live is not None or normalizers is None else float(normalizers[user]),
                    live=live is not None,
                )
        return [
            answer
            if answer is not None
            else self.popular_items(requests[k][1], requests[k][0], calls[k])
            for k, answer in enumerate(answers)
        ]

    def _score_users(
        self,
        kind: str,
        rows: np.ndarray,
        calls: list[FilterCall | None],
        counts: list[int],
        model: LocalModel,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """The best `counts[r]` items and their scores for the model users `rows`, whose
        filters are all of one `kind` (`_kind`): none (nothing excluded), the history
        exclusion alone (the kernel's own mask, or the approximate index), or another."""
        if kind == _BARE:
            return self._recommend_exact(rows, counts, history=False)
        if kind == _HISTORY:
            if self._ann is not None:
                return self._recommend_approximate(rows, counts)
            return self._recommend_exact(rows, counts)
        users = rows.tolist()
        if self._normalizers is not None:  # score only what each filter allows
            return recommend_candidates(
                rows_of(model.user_factors, rows),
                self._candidate_factors,
                [self._candidates(call, user) for call, user in zip(calls, users, strict=True)],
                counts,
                rows_of(self._normalizers, rows),
            )
        return self._recommend_filtered(
            model.user_factors[rows],
            counts,
            np.stack([self._allowed(call, user) for call, user in zip(calls, users, strict=True)]),
        )

    def _live_allowed(self, call: FilterCall | None, subject: LiveSubject) -> np.ndarray:
        """The model items `call` lets through for a subject with events since training."""
        if call is None:
            return self._all_items[0]
        if _history_only(call):
            allowed = np.ones(self.model.num_items, dtype=np.bool_)
            allowed[subject.history] = False
            return allowed
        return self._compiled.allowed(call, subject.window)[: self.model.num_items]

    def _candidates(self, call: FilterCall | None, user: int | None) -> np.ndarray:
        """The model items `call` lets through for a model user, as ascending indices."""
        if call is None:
            return self._every_item
        compiled = self._compiled  # one version, whatever PutItems swaps in meanwhile
        window = compiled.model_window(user) if compiled.per_user(call) else None
        return compiled.allowed_model_items(call, window)

    def _allowed(
        self, call: FilterCall | None, user: int | None, current_item: int | None = None
    ) -> np.ndarray:
        """The model items `call` lets through for this user (all of them without a call)."""
        if call is None:
            return self._all_items[0]
        compiled = self._compiled
        return compiled.allowed(call, compiled.model_window(user), current_item)[
            : self.model.num_items
        ]

    def _recommend_filtered(
        self, vectors: np.ndarray, counts: list[int], allowed: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """The best `counts[r]` of each row's allowed items for these user vectors."""
        return recommend_filtered(vectors, self._item_factors_t, allowed, counts)

    def _recommend_exact(
        self, rows: np.ndarray, counts: list[int], history: bool = True
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top n of every item for the users `rows`, their training history left out (or,
        without `history`, nothing left out)."""
        model = self.model
        normalizers = self._normalizers
        indptr = model.history_indptr if history else self._no_history_indptr
        if self._norm_ordered is not None and normalizers is not None:
            return recommend_by_norm(
                rows_of(model.user_factors, rows),
                self._norm_ordered,
                model.num_items,
                rows,
                indptr,
                model.history_indices,
                counts,
                rows_of(normalizers, rows),
            )
        return recommend_rows(
            model.user_factors[rows],
            self._item_factors_t,
            rows,
            indptr,
            model.history_indices,
            counts,
            log_normalizers=None if normalizers is None else normalizers[rows],
        )

    def _recommend_approximate(
        self, rows: np.ndarray, counts: list[int]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top n from the index: n + len(history) neighbours asked, seen ones dropped.

        A row left with fewer than its n (or all its candidates) is scored exactly.
        """
        model = self.model
        assert self._ann is not None and model.user_log_normalizer is not None
        indptr, indices = model.history_indptr, model.history_indices
        seen = [indices[indptr[u] : indptr[u + 1]] for u in rows]
        wanted = max(n + len(history) for n, history in zip(counts, seen, strict=True))
        found, dots = self._ann.search(model.user_factors[rows], wanted)
        scored: list[tuple[np.ndarray, np.ndarray] | None] = []
        for r, (n, history) in enumerate(zip(counts, seen, strict=True)):
            keep = (found[r] >= 0) & ~np.isin(found[r], history)
            items, row_dots = found[r][keep][: max(n, 0)], dots[r][keep][: max(n, 0)]
            if len(items) < min(max(n, 0), model.num_items - len(history)):
                scored.append(None)
                continue
            normalizer = model.user_log_normalizer[rows[r : r + 1]]
            scored.append((items, candidate_scores(row_dots[np.newaxis], normalizer)[0]))
        missing = [r for r, answer in enumerate(scored) if answer is None]
        if missing:
            exact = self._recommend_exact(rows[missing], [counts[r] for r in missing])
            for r, answer in zip(missing, exact, strict=True):
                scored[r] = answer
        return [answer for answer in scored if answer is not None]

    @_domain_errors
    def similar_items(
        self,
        item_id: str,
        num_results: int,
        filter: FilterCall | None = None,
        user_id: str | None = None,
    ) -> Recommendations:
        """Co-occurrence neighbours (SIMS); with `user_id`, without what that user watched
        (the items of their `watch` / `watched` interactions, as the video-on-demand
        recommenders leave out the videos a user watched) and with their history for
        filters on interactions."""
        model = self.model
        item = self._item_index.get(item_id)
        allowed = None
        window = self._subject_window(user_id) if user_id is not None else None
        if filter is not None:
            compiled = self._compiled
            current = compiled.index.get(item_id)
            allowed = compiled.allowed(filter, window, current)[: model.num_items]
        if window is not None:
            watched = _watched_items(window, model.num_items)
            if len(watched):
                allowed = (
                    np.ones(model.num_items, dtype=np.bool_) if allowed is None else allowed.copy()
                )
                allowed[watched] = False
        if item is None:
            return self._popular(num_results, allowed)
        if allowed is None:
            items_head, scores_head = padded_row_head(
                model.similar_indices[item], model.similar_scores[item], num_results
            )
            if len(items_head) == num_results:  # the usual call: nothing to leave out or fill
                return self._named(items_head, scores_head)
        neighbours = model.similar_indices[item]
        found = neighbours >= 0
        if allowed is not None:
            found &= allowed[np.maximum(neighbours, 0)]
        items = neighbours[found][: max(num_results, 0)]
        scores = model.similar_scores[item][found][: len(items)].astype(np.float64)
        missing = num_results - len(items)
        if missing > 0:  # too few co-occurring items: fill with popular ones, score 0
            order = self._popular_order
            if allowed is not None:
                order = order[allowed[order]]
            fill = order[~np.isin(order, [*items, item])][:missing]
            items = np.concatenate([items, fill])
            scores = np.concatenate([scores, np.zeros(len(fill))])
        return self._answer(items, scores)

    @_domain_errors
    def popular_items(
        self, num_results: int, user_id: str | None = None, filter: FilterCall | None = None
    ) -> Recommendations:
        """The same list for every user (as popularity-count); `user_id` only feeds a
        filter on interactions."""
        _ = self.model  # BackendUnavailableError until start()
        if filter is None:
            return self._popular(num_results, None)
        live = self._live_subject(user_id)
        if live is not None:
            return self._popular(num_results, self._live_allowed(filter, live))
        user = self._user_index.get(user_id) if user_id is not None else None
        return self._popular(num_results, self._allowed(filter, user))

    def _popular(self, num_results: int, allowed: np.ndarray | None) -> Recommendations:
        if allowed is None:  # the same list for everyone: named once at load
            names, shares = self._popular_head
            if 0 <= num_results <= len(names):
                return Recommendations(names[:num_results], shares[:num_results], self._ids.next())
        order = self._popular_order
        if allowed is not None:
            order = order[allowed[order]]
        items = order[: max(num_results, 0)]
        return self._answer(items, self._popular_share[items])

    def _refresh_new_items(self, model: LocalModel) -> None:
        """The videos exploration may recommend, for the current catalog and latest
        interaction (at start and whenever PutItems add videos)."""
        latest = self._trending.latest_time()
        if self.config.exploration_weight <= 0 or latest is None:
            self._new_items = NewItems.none(model.item_factors.shape[1])
            return
        self._new_items = find_new_items(
            model.item_factors,
            self._compiled.index,
            self._catalog_table,
            list(self._added_items.values()),
            latest,
            self.config.exploration_item_age_cutoff,
        )

    def _explored(
        self,
        answer: Recommendations,
        vector: np.ndarray,
        call: FilterCall | None,
        window: Window | None,
        num_results: int,
        log_normalizer: float | None,
        live: bool,
    ) -> Recommendations:
        """`answer` with the user's best new videos mixed in (backends.local.exploration)."""
        new = self._new_items
        if not len(new.items):
            return answer
        # A model user's training history holds no new video: the history exclusion lets
        # every one through without evaluating a mask.
        allowed = None
        if call is not None and (live or not _history_only(call)):
            allowed = self._compiled.allowed(call, window)
        items, scores, marked = explore(
            answer.item_ids,
            answer.scores,
            vector,
            new,
            self._universe_ids,
            allowed,
            self.config.exploration_weight,
            num_results,
            log_normalizer,
        )
        if not marked:
            return answer
        reasons = {position: (EXPLORATION_REASON,) for position in marked}
        return Recommendations(items, scores, answer.recommendation_id, reasons=reasons)

    @_domain_errors
    def trending_items(
        self, num_results: int, user_id: str | None = None, filter: FilterCall | None = None
    ) -> Recommendations:
        """The trending ranking (backends.local.trending) through `filter`; `user_id` only
        feeds a filter on interactions."""
        _ = self.model  # BackendUnavailableError until start()
        order, scores = self._trending.ranking()
        if filter is not None:
            compiled = self._compiled
            live = self._live_subject(user_id)
            if live is not None:
                window = live.window
            else:
                user = self._user_index.get(user_id) if user_id is not None else None
                window = compiled.model_window(user)
            kept = compiled.allowed(filter, window)[order]
            order, scores = order[kept], scores[kept]
        count = max(num_results, 0)
        return Recommendations(
            self._universe_ids(order[:count]), scores[:count].tolist(), self._ids.next()
        )

    def _subject_window(self, subject: str) -> Window | None:
        """The interactions filters see for a user or session (events since training
        included); None for a subject without any."""
        live = self._live_subject(subject)
        if live is not None:
            return live.window
        return self._compiled.model_window(self._user_index.get(subject))

    def _universe_ids(self, items: np.ndarray) -> list[str]:
        """Ids of universe items: the model's, then those only the catalog or PutItems know."""
        model_ids, extra = self._item_id_list, self._compiled.extra_ids
        num_items = len(model_ids)
        return [model_ids[i] if i < num_items else extra[i - num_items] for i in items.tolist()]

    @_domain_errors
    def rerank(
        self, user_id: str, item_ids: Sequence[str], filter: FilterCall | None = None
    ) -> Recommendations:
        model = self.model
        live = self._live_subject(user_id)
        user = self._user_index.get(user_id)
        if live is not None and _has_vector(live):
            vector = live.vector
        else:
            vector = None if user is None or live is not None else model.user_factors[user]
        ranked = None
        if vector is not None:  # the usual call: distinct model items, ranked in one go
            count = len(item_ids)
            positions = np.fromiter(
                map(self._item_index.get, item_ids, itertools.repeat(-1, count)), np.int64, count
            )
            ranked = rank_distinct_scores(vector, model.item_factors, positions)
        if ranked is not None:
            known_ids: Sequence[str] = item_ids  # read, never changed
            unknown: list[str] = []
            order, scores = ranked
        else:
            known_ids, unknown, order, scores = self._rank_any(model, vector, item_ids)
        ranked_ids = list(map(known_ids.__getitem__, order.tolist()))
        scores_list = scores.tolist()
        if filter is not None:  # Personalize drops filtered ids; the others keep their scores
            compiled = self._compiled
            window = live.window if live is not None else compiled.model_window(user)
            allowed = compiled.allowed(filter, window)
            index, blank = compiled.index, compiled.blank
            kept = [allowed[index.get(i, blank)] for i in ranked_ids]
            ranked_ids = [i for i, keep in zip(ranked_ids, kept, strict=True) if keep]
            scores_list = [s for s, keep in zip(scores_list, kept, strict=True) if keep]
            unknown = [i for i in unknown if allowed[index.get(i, blank)]]
        if unknown:  # ids outside the model: last, score 0 (both lists are this call's own)
            ranked_ids += unknown
            scores_list += [0.0] * len(unknown)
        return Recommendations(ranked_ids, scores_list, recommendation_id=self._ids.next())

    def _rank_any(
        self, model: LocalModel, vector: np.ndarray | None, item_ids: Sequence[str]
    ) -> tuple[Sequence[str], list[str], np.ndarray, np.ndarray]:
        """`rerank`'s general case: repeated ids (the first of each kept), ids outside the
        model (returned apart, in input order) or a cold subject (`vector` None: ranked by
        popularity, ties by id). Returns the known ids, the unknown ones, and the order and
        scores of the known ones (positions in the known ids, best first)."""
        locate = self._item_index.get
        distinct: Sequence[str] = item_ids  # read, never changed
        positions = list(map(locate, distinct))  # None: not a model item
        if len(set(positions)) < len(positions):  # repeated ids (or unknown ones): first of each
            distinct = list(dict.fromkeys(distinct))
            positions = list(map(locate, distinct))
        if None in positions:
            known_ids = [i for i, p in zip(distinct, positions, strict=True) if p is not None]
            unknown = [i for i, p in zip(distinct, positions, strict=True) if p is None]
            positions = [p for p in positions if p is not None]
        else:
            known_ids, unknown = distinct, []
        known_items = np.fromiter(positions, np.int64, len(positions))
        if not known_ids:
            order, scores = np.empty(0, dtype=np.intp), np.empty(0)
        elif vector is None:  # cold: by popularity, share among these ids
            counts = np.asarray(model.popularity, dtype=np.float64)[known_items]
            order = np.lexsort((model.item_ids[known_items], -counts))  # ties: id ascending
            scores = counts[order] / counts.sum()
        else:
            order, scores = rank_scores(vector, model.item_factors, known_items)
        return known_ids, unknown, order, scores

    def _answer(self, items: np.ndarray, scores: np.ndarray) -> Recommendations:
        return self._named(items.tolist(), scores.tolist())

    def _named(self, items: list[int], scores: list[float]) -> Recommendations:
        ids = self._item_id_list  # the model's ids as str objects, made once: no copy per call
        return Recommendations([ids[i] for i in items], scores, self._ids.next())


WATCH_EVENT_TYPES = frozenset({"watch", "watched"})  # VOD's Watch; this project's label


def _watched_items(window: Window, num_items: int) -> np.ndarray:
    """The model items of a window's watch events."""
    names = np.asarray(window.names, dtype=str)  # lower-cased already
    watch_codes = np.flatnonzero(np.isin(names, list(WATCH_EVENT_TYPES)))
    items = window.items[np.isin(window.types, watch_codes)]
    return items[items < num_items]


def _has_vector(live: LiveSubject) -> bool:
    """Whether the subject's events gave it a vector to score with: events only on items
    the model cannot score, or of zero weight, leave it cold."""
    return bool(live.vector.any())


def _poll_events(
    backend_ref: weakref.ref[LocalBackend],
    stopping: threading.Event,
    wake: threading.Event,
    interval: float,
) -> None:
    """Apply what the store gains, every `interval` seconds or when woken, until stopped
    or the backend is gone. Looks at most every `MIN_POLL_GAP` seconds: under a stream of
    PutEvents one look applies what several calls stored."""
    while not stopping.is_set():
        wake.wait(interval)
        stopping.wait(MIN_POLL_GAP)
        wake.clear()
        backend = backend_ref()
        if backend is None or stopping.is_set():
            return
        try:
            backend._apply_stored_events()
        except Exception:  # keep serving; the next look retries
            logger.exception("applying stored events failed")
        del backend


def _release_events(store: EventStore, stopping: threading.Event, wake: threading.Event) -> None:
    """Stop the polling thread and close the store of a backend that is gone."""
    stopping.set()
    wake.set()
    store.close()


def _default_state_dir(model_dir: Path) -> Path:
    """`<model_dir>-state` beside the model directory (retraining replaces the model
    directory, not its neighbour)."""
    return model_dir.parent / f"{model_dir.name}-state"


_BARE, _HISTORY, _FILTERED = "bare", "history", "filtered"


def _kind(call: FilterCall | None) -> str:
    """How a model user's call is scored: `_BARE` (no filter at all: nothing excluded),
    `_HISTORY` (the history exclusion alone) or `_FILTERED` (any other filter)."""
    if call is None:
        return _BARE
    return _HISTORY if call.history_only else _FILTERED


def _history_only(call: FilterCall | None) -> bool:
    """Whether `call` excludes exactly the user's history: the case the kernel's history
    mask, the precomputed table and the approximate index answer directly."""
    return call is not None and call.history_only


def _detail(value: Any) -> str:
    """A model-info value as text: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _absent_id(known: Mapping[str, int], base: str) -> str:
    """An id that `known` does not hold, for a cold-start request."""
    candidate = base
    while candidate in known:
        candidate += "_"
    return candidate
