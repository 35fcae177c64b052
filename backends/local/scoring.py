"""Serve-time scoring: softmax over candidates and top-n selection, without Python loops over items.

Scores follow Amazon Personalize's user-personalization recipe: the softmax of the
user-item dot products over every item of the model, so they lie in [0, 1], sum to 1 over
the whole catalog, and an item's score does not depend on which others a filter (or the
user's history) leaves out.

`recommend_rows` scores a batch of users with one matrix product (`products`: the item
factors stream through the CPU once per batch instead of once per user) and one compiled
call (`backends.local.kernels`) for the masking, normaliser and top n, both without the
GIL. With stored normalisers (`recs precompute`, or `log_normalizers` at training) there is
no pass over every item at all: `recommend_by_norm` reads the items largest norm first and
stops once no other can enter a row's top n (`NormOrdered`, `kernels.score_by_norm`).

Every input array reaches a kernel read-only (`kernels.readonly`, a view): numba compiles
one specialisation per argument type and writability is part of it, so a memory-mapped
model (read-only arrays) and an in-memory one share the one specialisation that
`kernels.warm_up` compiles before serving, instead of the first request compiling another.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from recs.backends.local.kernels import (
    GEMM_FROM_ROWS,
    log_normalizer_rows,
    rank_items,
    readonly,
    row_products,
    score_by_norm,
    score_candidates,
    score_rows,
)

_NO_NORMALIZERS = readonly(np.empty(0, dtype=np.float64))
_NO_OUT_NORMALIZERS = np.empty(0, dtype=np.float64)  # an output: writable, never written
# A history CSR of one empty row, for rows whose exclusions are all in `allowed`.
_NO_HISTORY_INDPTR = readonly(np.zeros(2, dtype=np.int64))
_NO_HISTORY_INDICES = readonly(np.empty(0, dtype=np.int32))
_NO_HISTORY_ROW = readonly(np.zeros(1, dtype=np.int64))  # a lone call's rows into it
# Gathered candidate factors kept (CandidateFactors): a few dozen lists at 20,000 items.
CANDIDATE_FACTOR_BYTES = 64 << 20
# Norm order pays while a top 25 reads at most this share of the items (`norm_order_share`).
NORM_ORDER_MAX_SHARE = 0.3
# Relative slack on each item's norm bound: a float32 dot product of F terms can exceed
# the exact one by about F x 6e-8 of |user| x |item|, far below this.
NORM_BOUND_SLACK = 1e-4
NORM_CHUNK = 1 << 16  # items whose norms are summed in float64 at once


def products(user_vectors: np.ndarray, item_factors_t: np.ndarray) -> np.ndarray:
    """Each user's dot products with every item: (users, items) float32, C-contiguous and
    writable (the kernels mask excluded items in place).

    From GEMM_FROM_ROWS users, one matrix product by NumPy (its OpenBLAS, the GIL released
    meanwhile); below, one compiled matrix-vector product per user, which BLAS's matrix
    product does not beat for so few rows.
    """
    vectors = np.ascontiguousarray(user_vectors, dtype=np.float32)
    if len(vectors) >= GEMM_FROM_ROWS:
        return np.matmul(vectors, item_factors_t)
    return row_products(readonly(vectors), readonly(item_factors_t))


def recommend_scores(
    user_vector: np.ndarray, item_factors: np.ndarray, seen: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The best `n` items outside `seen` for a user: (item indices, softmax probabilities).

    The softmax runs over every item, `seen` ones included (Personalize's scores), so the
    answer is the head of that distribution with `seen` left out.
    """
    return recommend_batch(np.asarray(user_vector)[np.newaxis], item_factors, [seen], [n])[0]


def recommend_batch(
    user_vectors: np.ndarray,
    item_factors: np.ndarray,
    seen: Sequence[np.ndarray],
    ns: Sequence[int],
    log_normalizers: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`recommend_scores` for each row of `user_vectors` (with its `seen` and `n`), at once.

    For callers holding each history as its own array (tests, scripts); the backend passes
    the model's history CSR to `recommend_rows` directly.
    """
    lengths = np.fromiter((len(items) for items in seen), np.int64, len(seen))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.concatenate([np.asarray(items, dtype=np.int32) for items in seen] or [[]])
    return recommend_rows(
        user_vectors,
        np.ascontiguousarray(np.asarray(item_factors, dtype=np.float32).T),
        np.arange(len(seen)),
        indptr,
        indices,
        ns,
        log_normalizers,
    )


def recommend_rows(
    user_vectors: np.ndarray,
    item_factors_t: np.ndarray,
    history_rows: np.ndarray,
    history_indptr: np.ndarray,
    history_indices: np.ndarray,
    ns: Sequence[int],
    log_normalizers: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    out_normalizers: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The best `ns[r]` candidates of each user row: (item indices, softmax probabilities).

    `item_factors_t` is the item factors as a C-contiguous (factors, items) float32 array
    (the layout the batch product is fastest against). Row r's history is the CSR slice
    `history_indices[history_indptr[u] : history_indptr[u + 1]]` for `u = history_rows[r]`;
    `allowed` (bool, rows x items), when given, leaves out every item it marks False (a
    filter's answer). `log_normalizers` (one per row, from `log_normalizers`) spares the
    normaliser pass; `out_normalizers` (float64, one per row), when given, receives each
    row's normaliser. A batch of one takes the same path, so an answer does not depend on
    whether its request was scored alone or with others (up to float rounding).
    """
    history_rows = np.asarray(history_rows, dtype=np.int64)
    history_indptr = np.asarray(history_indptr, dtype=np.int64)
    num_items = item_factors_t.shape[1]
    if allowed is None:
        seen = history_indptr[history_rows + 1] - history_indptr[history_rows]
        candidates = num_items - seen
        allowed = np.zeros((0, num_items), dtype=np.bool_)
    else:
        candidates = np.count_nonzero(allowed, axis=1)  # an upper bound with a history
    counts = np.clip(np.minimum(np.asarray(ns, dtype=np.int64), candidates), 0, None)
    width = int(counts.max(initial=0))
    out_items = np.empty((len(history_rows), width), dtype=np.int64)
    out_scores = np.empty((len(history_rows), width), dtype=np.float64)
    kept = score_rows(
        products(user_vectors, item_factors_t),
        readonly(history_rows),
        readonly(history_indptr),
        readonly(np.asarray(history_indices, dtype=np.int32)),
        readonly(np.asarray(allowed, dtype=np.bool_)),
        readonly(counts),
        _NO_NORMALIZERS
        if log_normalizers is None
        else readonly(np.asarray(log_normalizers, np.float64)),
        out_items,
        out_scores,
        _NO_OUT_NORMALIZERS if out_normalizers is None else out_normalizers,
    )
    return [(out_items[r, :k], out_scores[r, :k]) for r, k in enumerate(kept.tolist())]


def recommend_filtered(
    user_vectors: np.ndarray,
    item_factors_t: np.ndarray,
    allowed: np.ndarray | None,
    ns: Sequence[int],
    log_normalizers: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`recommend_rows` where each row's candidates are exactly its `allowed` items (None:
    every item)."""
    return recommend_rows(
        user_vectors,
        item_factors_t,
        np.zeros(len(user_vectors), dtype=np.int64),
        _NO_HISTORY_INDPTR,
        _NO_HISTORY_INDICES,
        ns,
        log_normalizers,
        allowed,
    )


@dataclass(frozen=True)
class NormOrdered:
    """Item factors sorted by norm, largest first, for `recommend_by_norm`.

    ALS gives popular items long factor vectors and the long tail short ones, so a user's
    n best usually sit among the items of largest norm: read in this order, a top 25 is
    settled after a tenth of the 20,000-item benchmark model, a third of MovieLens
    (docs/local-engine.md, "How calls are scored").
    """

    factors: np.ndarray  # (M, F) float32, C-contiguous, read-only: rows by descending norm
    bounds: np.ndarray  # (M,) float64: each row's norm, plus NORM_BOUND_SLACK
    items: np.ndarray  # (M,) int64: each row's item index

    @classmethod
    def of(cls, item_factors: np.ndarray, items: np.ndarray | None = None) -> NormOrdered:
        """`item_factors`' rows `items` (ascending indices; None: every row) by norm."""
        listed = (
            np.arange(len(item_factors), dtype=np.int64)
            if items is None
            else np.asarray(items, dtype=np.int64)
        )
        norms = np.empty(len(listed), dtype=np.float64)
        for start in range(0, len(listed), NORM_CHUNK):  # float64 sums, a chunk at a time
            chunk = np.asarray(item_factors[listed[start : start + NORM_CHUNK]], np.float64)
            norms[start : start + len(chunk)] = np.sqrt(np.einsum("ij,ij->i", chunk, chunk))
        order = np.argsort(-norms, kind="stable")
        ordered_items = listed[order]
        return cls(
            factors=readonly(np.asarray(item_factors, dtype=np.float32)[ordered_items]),
            bounds=readonly(norms[order] * (1.0 + NORM_BOUND_SLACK)),
            items=readonly(ordered_items),
        )

    @property
    def nbytes(self) -> int:
        return self.factors.nbytes + self.bounds.nbytes + self.items.nbytes


def norm_order_share(
    user_factors: np.ndarray, ordered: NormOrdered, n: int = 25, sample: int = 32
) -> float:
    """The mean share of the items `recommend_by_norm` would read for a top `n`, estimated
    on `sample` users spread over the model (0 for a model without users or items).

    Read one by one, an item costs about three times its share of a batch's matrix
    product: norm order pays only when it stops early, as on ALS models, whose long tail
    has short vectors, and not on factors of even norms.
    """
    num_users, num_items = len(user_factors), len(ordered.items)
    if num_users == 0 or num_items == 0:
        return 0.0
    rows = np.unique(np.linspace(0, num_users - 1, min(sample, num_users)).astype(np.int64))
    last = num_items - min(n, num_items)  # the n-th best's position in ascending order
    shares = []
    for vector in np.asarray(user_factors[rows], dtype=np.float32):
        dots = ordered.factors @ vector  # one user at a time: 4 bytes per item at most
        kth = np.partition(dots, last)[last]
        read = np.count_nonzero(np.linalg.norm(vector) * ordered.bounds >= kth)  # a prefix
        shares.append(min(read + 1, num_items) / num_items)
    return float(np.mean(shares))


def rows_of(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`array[rows]`, as a view when `rows` is one row (no copy, and read-only when `array`
    is: the kernels' wrappers then pass it on as it is). A lone call is the common case."""
    if len(rows) == 1:
        row = int(rows[0])
        return array[row : row + 1]
    return array[rows]


def recommend_by_norm(
    user_vectors: np.ndarray,
    ordered: NormOrdered,
    num_items: int,
    history_rows: np.ndarray,
    history_indptr: np.ndarray,
    history_indices: np.ndarray,
    ns: Sequence[int],
    log_normalizers: np.ndarray,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`recommend_rows`' answers for rows whose softmax normalisers are known, from the
    items of `ordered` only (all of the model's, or a filter's candidates), computing only
    the dot products that can still change a row's n best (`kernels.score_by_norm`).

    `num_items`: the model's item count (history and `ordered.items` index below it).
    """
    width = max(0, min(max(ns, default=0), len(ordered.items)))  # the kernel clips each row's n
    out_items = np.empty((len(ns), width), dtype=np.int64)
    out_scores = np.empty((len(ns), width), dtype=np.float64)
    kept = score_by_norm(
        readonly(np.ascontiguousarray(user_vectors, dtype=np.float32)),
        ordered.factors,
        ordered.bounds,
        ordered.items,
        num_items,
        readonly(np.asarray(history_rows, dtype=np.int64)),
        readonly(np.asarray(history_indptr, dtype=np.int64)),
        readonly(np.asarray(history_indices, dtype=np.int32)),
        _counts(ns),
        readonly(np.asarray(log_normalizers, dtype=np.float64)),
        out_items,
        out_scores,
    )
    return [(out_items[r, :k], out_scores[r, :k]) for r, k in enumerate(kept.tolist())]


def _counts(ns: Sequence[int]) -> np.ndarray:
    """`ns` as the kernel's read-only int64 array. A lone call's is made once per count and
    kept: making an array read-only costs ~0.5 us, a noticeable share of a lone call's
    Python (and counts are few: num_results is 1 to 500)."""
    if len(ns) != 1:
        return _frozen(np.array(ns, dtype=np.int64))
    single = _SINGLE_COUNTS.get(ns[0])
    if single is None:
        single = _SINGLE_COUNTS[ns[0]] = _frozen(np.array(ns, dtype=np.int64))
    return single


_SINGLE_COUNTS: dict[int, np.ndarray] = {}


def _no_history_rows(count: int) -> np.ndarray:
    """History rows for `count` users scored without history: all row 0 of
    `_NO_HISTORY_INDPTR`, read-only (a lone call's array is made once)."""
    return _NO_HISTORY_ROW if count == 1 else _frozen(np.zeros(count, dtype=np.int64))


def _frozen(fresh: np.ndarray) -> np.ndarray:
    """An array made here, made read-only in place (`readonly` makes a view: it may not
    change a caller's array)."""
    fresh.flags.writeable = False
    return fresh


class CandidateFactors:
    """The item factors candidate lists are scored against, and the gathered factors of
    the lists every user shares.

    A filter whose mask is the same for every user (an Items filter) hands out the same
    read-only candidate array on every call (`CompiledFilters` keeps it); a filter that
    reads the user's interactions, a fresh writable array per call. A shared list's factors
    are gathered once and kept, up to `max_bytes` in all (the oldest lists go first): with
    `by_norm`, in descending order of norm (`NormOrdered`: its calls read only the
    candidates that can still reach a user's n best), else as (factors, candidates),
    C-contiguous (its calls cost one matrix product over the candidates). A per-user list
    is scored by the compiled per-item loop (`kernels.score_candidates`), which needs no
    gather. An entry holds its list, so an id is never mistaken for another list's.
    """

    def __init__(
        self,
        item_factors: np.ndarray,
        max_bytes: int = CANDIDATE_FACTOR_BYTES,
        by_norm: bool = True,
    ) -> None:
        self.item_factors = readonly(np.ascontiguousarray(item_factors, dtype=np.float32))
        self.by_norm = by_norm
        self._max_bytes = max_bytes
        self._kept: dict[int, tuple[np.ndarray, NormOrdered | np.ndarray]] = {}
        self._kept_bytes = 0
        self._lock = threading.Lock()  # the scoring thread and warm-up may both ask

    def shared(self, candidates: np.ndarray) -> NormOrdered | np.ndarray | None:
        """A shared (read-only) list's factors, gathered on its first call (by norm, or
        as (factors, candidates)); None for a per-user (writable) list or one over the
        budget."""
        if candidates.flags.writeable:
            return None
        kept = self._kept.get(id(candidates))
        if kept is not None and kept[0] is candidates:
            return kept[1]
        row_bytes = self.item_factors.shape[1] * 4 + (16 if self.by_norm else 0)
        if len(candidates) * row_bytes > self._max_bytes:
            return None
        gathered: NormOrdered | np.ndarray = (
            NormOrdered.of(self.item_factors, candidates)
            if self.by_norm
            else readonly(np.ascontiguousarray(np.take(self.item_factors, candidates, axis=0).T))
        )
        with self._lock:
            replaced = self._kept.pop(id(candidates), None)  # a list since collected
            if replaced is not None:
                self._kept_bytes -= replaced[1].nbytes
            self._kept[id(candidates)] = (candidates, gathered)
            self._kept_bytes += gathered.nbytes
            while self._kept_bytes > self._max_bytes:  # the oldest lists go first
                _, oldest = self._kept.pop(next(iter(self._kept)))
                self._kept_bytes -= oldest.nbytes
        return gathered


def recommend_candidates(
    user_vectors: np.ndarray,
    factors: CandidateFactors,
    candidates: Sequence[np.ndarray],
    ns: Sequence[int],
    log_normalizers: np.ndarray,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The best `ns[r]` of row r's `candidates` (ascending item indices), scored over every
    item with the rows' known `log_normalizers`, computing only the candidates' dot products.
    Rows given the same array are scored together: a shared list by `recommend_by_norm`
    over its norm-ordered factors (`CandidateFactors.shared`), or by one matrix product
    over its gathered factors when the model's norms are too even; a per-user list by
    `kernels.score_candidates`, reading each candidate's factors once. Same answers as
    `recommend_filtered` with the equivalent masks."""
    vectors = np.ascontiguousarray(user_vectors, dtype=np.float32)
    normalizers = np.asarray(log_normalizers, dtype=np.float64)
    groups: dict[int, list[int]] = {}
    for r, listed in enumerate(candidates):
        groups.setdefault(id(listed), []).append(r)
    answers: list[tuple[np.ndarray, np.ndarray]] = [None] * len(candidates)  # type: ignore[list-item]
    for rows in groups.values():
        gathered = factors.shared(candidates[rows[0]])
        counts = [ns[r] for r in rows]
        if len(rows) == len(candidates):  # one list for every row (a lone call): no gather
            group_vectors, group_normalizers = vectors, normalizers
        else:
            group_vectors, group_normalizers = vectors[rows], normalizers[rows]
        if isinstance(gathered, np.ndarray):  # every column of it is a candidate
            listed = np.asarray(candidates[rows[0]], dtype=np.int64)
            scored = recommend_filtered(group_vectors, gathered, None, counts, group_normalizers)
            for r, (positions, scores) in zip(rows, scored, strict=True):
                answers[r] = (listed[positions], scores)  # positions ascend with the item index
            continue
        if gathered is not None:  # a filter's candidates, no history of their own to skip
            scored = recommend_by_norm(
                group_vectors,
                gathered,
                len(factors.item_factors),
                _no_history_rows(len(rows)),
                _NO_HISTORY_INDPTR,
                _NO_HISTORY_INDICES,
                counts,
                group_normalizers,
            )
            for r, answer in zip(rows, scored, strict=True):
                answers[r] = answer
            continue
        listed = readonly(np.asarray(candidates[rows[0]], dtype=np.int64))
        wanted = np.clip(np.minimum(np.asarray(counts, dtype=np.int64), len(listed)), 0, None)
        width = int(wanted.max(initial=0))
        out_items = np.empty((len(rows), width), dtype=np.int64)
        out_scores = np.empty((len(rows), width), dtype=np.float64)
        kept = score_candidates(
            readonly(group_vectors),
            factors.item_factors,
            listed,
            readonly(wanted),
            readonly(group_normalizers),
            out_items,
            out_scores,
        )
        for j, (r, k) in enumerate(zip(rows, kept.tolist(), strict=True)):
            answers[r] = (out_items[j, :k], out_scores[j, :k])
    return answers


def candidate_scores(dots: np.ndarray, log_normalizers: np.ndarray) -> np.ndarray:
    """Softmax probabilities of dot products (rows), given each row's log-normaliser."""
    with np.errstate(invalid="ignore"):  # -inf - -inf: a user without candidates
        scores = np.exp(np.asarray(dots, dtype=np.float64) - log_normalizers[:, np.newaxis])
    return np.nan_to_num(scores, nan=0.0)


def log_normalizers(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    block_users: int = 64,
    on_progress: Callable[[float], None] | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """Per user, log of the softmax denominator over every item (float64).

    The compiled pass is the one serving runs (`kernels.log_normalizer_rows`), so storing
    this with the model lets serving skip it with the same result. Blocks of `block_users`
    users run on `threads` threads (default: one per CPU; the kernel releases the GIL).
    """
    num_users = len(user_factors)
    result = np.empty(num_users, dtype=np.float64)
    items_t = readonly(np.ascontiguousarray(np.asarray(item_factors, dtype=np.float32).T))

    def block(start: int) -> int:
        stop = min(start + block_users, num_users)
        log_normalizer_rows(products(user_factors[start:stop], items_t), result[start:stop])
        return stop

    with ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:
        for stop in pool.map(block, range(0, num_users, block_users)):
            if on_progress is not None:
                on_progress(stop / num_users)
    return result


def rank_scores(
    user_vector: np.ndarray, item_factors: np.ndarray, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Order `items` (distinct item indices) best first for a user, with the softmax over
    them.

    Returns positions in `items`, best first (equal scores keep their input order), and
    their probabilities.
    """
    ranked = rank_distinct_scores(
        user_vector, item_factors, readonly(np.asarray(items, dtype=np.int64))
    )
    if ranked is None:
        raise ValueError("items to rank must be distinct item indices")
    return ranked


def rank_distinct_scores(
    user_vector: np.ndarray, item_factors: np.ndarray, positions: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """`rank_scores` of `positions` (int64) when each is a model item (not -1) and none
    repeats, else None: GetPersonalizedRanking's usual call checked and ranked at once,
    the caller's ids sorted out only when it declines."""
    order = np.empty(len(positions), dtype=np.int64)
    scores = np.empty(len(positions), dtype=np.float64)
    if rank_items(
        readonly(np.asarray(user_vector, dtype=np.float32)),
        readonly(np.asarray(item_factors, dtype=np.float32)),
        positions,
        order,
        scores,
    ):
        return order, scores
    return None
