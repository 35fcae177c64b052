"""Compiled scoring of a batch of users: the softmax normaliser and the top n.

Given the users' dot products with every item (`scoring.products`: NumPy's BLAS matrix
product for a batch, `row_products` below GEMM_FROM_ROWS users), `score_rows` does in one
call, with the GIL released, everything else a batch of GetRecommendations needs: the
softmax normaliser over every item (Personalize's scores are shares of the whole
catalog's softmax), the user's history and any filter masked out, and the n best remaining
candidates with their probabilities. The product is NumPy's because its bundled OpenBLAS
multiplies a batch about a third faster than numba's binding to SciPy's (bench/README.md,
"Catalog size"); it releases the GIL too.

Why compiled (numba): the same steps as NumPy array operations cost about twice as much
(an exp over every item at ~6 ns each in NumPy's build here, several passes over the
scores) and, worse for a server, each of the dozen NumPy calls per batch must take the
GIL back from the event loop, which may hold it for up to the interpreter's switch
interval. Two GIL-free calls per batch (product, then the rest) leave the event loop alone.

Per user row:
1. blocks of BLOCK scores: each block's maximum and its sum of exp(score - maximum), in
   one vectorised pass (`_block_stats`); the normaliser is then
   log(sum_b exp(max_b - max) * sum_b) + max, exact up to float rounding (skipped when the
   model stores it);
2. the excluded items set to -inf, and the maximum again of each block that lost one (of
   every block after a filter's mask, or when the normaliser was given);
3. the top n: the n-th best block maximum bounds the n-th best score from below, so only
   blocks reaching it are searched, with a heap ordered by (score, then lower index).

With each user's normaliser known (stored by `recs precompute` or training), no call needs
every item's score, only its n best: `score_by_norm` reads the items in descending order of
their factor norm and stops once |user| x the next norm (Cauchy-Schwarz: a bound on every
later item's dot product) falls below the n-th best score found: after 5-10 % of the items
on the synthetic benchmark models, a third on MovieLens (the backend reads by norm only where
that pays, `scoring.norm_order_share`).

The exp is a polynomial (Cody-Waite range reduction, degree-6 fit of 2^f on
[-0.5, 0.5], relative error below 2e-7 in float32) because LLVM vectorises it, unlike a
call to libm's expf; sums run in float32 within a block and in float64 across blocks.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Entries masked out (the user's history) are -inf, so neither ninf nor afn is allowed;
# the scores themselves are finite (products of finite factors): nnan is safe.
_FAST = {"reassoc", "contract", "nsz", "arcp", "nnan"}
_LOG2E = np.float32(1.4426950408889634)
BLOCK = 64
# From this many users one matrix product (NumPy's, `scoring.products`) beats one
# matrix-vector product per user at every catalog size; below it BLAS handles the few rows
# poorly (figures: bench/README.md, "Catalog size").
GEMM_FROM_ROWS = 8


@njit(fastmath=_FAST, inline="always", cache=True)
def _exp_f32(x: float) -> float:
    """exp(x) for float32 x <= 0, to ~2e-7 relative; x below -87 gives ~1e-38, not 0."""
    t = max(x * _LOG2E, np.float32(-126.0))
    k = np.floor(t + np.float32(0.5))
    f = t - k
    p = np.float32(1.5403530e-4)
    p = p * f + np.float32(1.3333558e-3)
    p = p * f + np.float32(9.6181291e-3)
    p = p * f + np.float32(5.5504109e-2)
    p = p * f + np.float32(2.4022651e-1)
    p = p * f + np.float32(6.9314718e-1)
    p = p * f + np.float32(1.0)
    scale = (np.int32(k) + np.int32(127)) << 23  # 2^k as float32 bits
    return p * np.int32(scale).view(np.float32)


@njit(fastmath=_FAST, nogil=True, cache=True)
def _block_maximum(row, maxima, b):
    """maxima[b] := the maximum of row's block b of BLOCK scores (-inf: all masked)."""
    start = b * BLOCK
    peak = np.float32(-np.inf)
    for i in range(start, min(start + BLOCK, row.shape[0])):
        x = row[i]
        peak = x if x > peak else peak
    maxima[b] = peak


@njit(fastmath=_FAST, nogil=True, cache=True)
def _block_stats(row, maxima, sums, with_sums):
    """Per block of BLOCK scores: maximum, and (if with_sums) sum of exp(score - maximum)."""
    length = row.shape[0]
    for b in range(maxima.shape[0]):
        _block_maximum(row, maxima, b)
        peak = maxima[b]
        start = b * BLOCK
        stop = min(start + BLOCK, length)
        if with_sums:
            total = np.float32(0.0)
            if peak > -np.inf:
                for i in range(start, stop):
                    x = row[i]
                    e = _exp_f32(x - peak)
                    total += e if x > -np.inf else np.float32(0.0)
            sums[b] = total


# The heap of a row's n best: a min-heap on (score, then lower index first), so its root is
# the worst entry kept. Each function moves a hole down or up, reads every slot it compares
# into locals and writes the moving entry once: ~20 ns per insertion, where swapping pairs
# through small helper functions (the arrays passed on every call) costs ~90 ns.


@njit(nogil=True, cache=True)
def _sift_down(values, indices, size, x, i):
    """Put (x, i) at the root of the heap values/indices[:size] and move it down to its place."""
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        cv, ci = values[child], indices[child]
        if child + 1 < size:
            rv, ri = values[child + 1], indices[child + 1]
            if rv < cv or (rv == cv and ri > ci):  # the right child ranks lower
                child, cv, ci = child + 1, rv, ri
        if not (cv < x or (cv == x and ci > i)):  # (x, i) ranks at or below the child
            break
        values[pos], indices[pos] = cv, ci
        pos = child
    values[pos], indices[pos] = x, i


@njit(nogil=True, cache=True)
def _offer(values, indices, size, n, x, i):
    """Keep (x, i) among the n best seen so far; the caller checks that it beats the root
    once the heap is full. Returns the heap's new size."""
    if size < n:
        pos = size
        while pos > 0:
            parent = (pos - 1) >> 1
            pv, pi = values[parent], indices[parent]
            if not (x < pv or (x == pv and i > pi)):  # (x, i) ranks above its parent
                break
            values[pos], indices[pos] = pv, pi
            pos = parent
        values[pos], indices[pos] = x, i
        return size + 1
    _sift_down(values, indices, size, x, i)
    return size


@njit(nogil=True, cache=True)
def _emit(values, indices, size, log_normalizer, out_items, out_scores):
    """One row's answer: the heap's `size` entries best first into out_items/out_scores,
    each score its softmax probability given the row's log-normaliser."""
    kept = size
    while size > 1:  # heap sort: the worst kept goes last
        size -= 1
        x, i = values[size], indices[size]
        values[size], indices[size] = values[0], indices[0]
        _sift_down(values, indices, size, x, i)
    for j in range(kept):
        out_items[j] = indices[j]
        out_scores[j] = math.exp(np.float64(values[j]) - log_normalizer)


@njit(nogil=True, cache=True)
def _top(row, n, maxima, values, indices):
    """values/indices[:k] := the k <= n best finite scores of row, as a heap (`_emit` sorts
    it); returns k."""
    size = 0
    for b in range(maxima.shape[0]):  # the n best block maxima
        x = maxima[b]
        if x > -np.inf and (size < n or x > values[0]):
            size = _offer(values, indices, size, n, x, b)
    if size == 0:
        return 0
    threshold = values[0] if size == n else -np.inf
    size = 0
    length = row.shape[0]
    for b in range(maxima.shape[0]):  # blocks that can hold one of the n best, in order
        if maxima[b] == -np.inf or maxima[b] < threshold:
            continue
        for i in range(b * BLOCK, min(b * BLOCK + BLOCK, length)):
            x = row[i]
            if x >= threshold and x > -np.inf and (size < n or x > values[0]):
                size = _offer(values, indices, size, n, x, i)
    return size


@njit(nogil=True, cache=True)
def _log_normalizer(maxima, sums, peak):
    total = 0.0
    for b in range(maxima.shape[0]):
        if maxima[b] > -np.inf:
            total += np.float64(sums[b]) * math.exp(np.float64(maxima[b]) - peak)
    return peak + math.log(total)


@njit(nogil=True, cache=True)
def row_products(user_vectors, item_factors_t):
    """The rows' dot products with every item (float32, rows x items), one matrix-vector
    product per row: the fastest way for batches below GEMM_FROM_ROWS."""
    num_rows = user_vectors.shape[0]
    logits = np.empty((num_rows, item_factors_t.shape[1]), dtype=np.float32)
    for r in range(num_rows):
        np.dot(user_vectors[r], item_factors_t, logits[r])
    return logits


@njit(nogil=True, cache=True)
def _row_log_normalizer(row, maxima, sums):
    """log of the row's softmax denominator over every entry (-inf for an empty row)."""
    _block_stats(row, maxima, sums, True)
    peak = maxima.max() if maxima.shape[0] > 0 else -np.inf
    if peak == -np.inf:
        return -np.inf
    return _log_normalizer(maxima, sums, np.float64(peak))


@njit(nogil=True, cache=True)
def log_normalizer_rows(logits, out):
    """out[r] := log of the softmax denominator of logits[r] (-inf: no items).

    The same block pass as `score_rows`, so a stored normaliser is the one serving would
    compute. out is float64.
    """
    num_blocks = (logits.shape[1] + BLOCK - 1) // BLOCK
    maxima = np.empty(num_blocks, dtype=np.float32)
    sums = np.empty(num_blocks, dtype=np.float32)
    for r in range(logits.shape[0]):
        out[r] = _row_log_normalizer(logits[r], maxima, sums)


@njit(nogil=True, cache=True)
def score_rows(
    logits,
    history_rows,
    history_indptr,
    history_indices,
    allowed,
    counts,
    log_normalizers,
    out_items,
    out_scores,
    out_normalizers,
):
    """Score a batch of users against every item; returns how many answers each row got.

    logits (B, N) float32, C-contiguous and writable (`scoring.products`): each user's dot
    products with every item, overwritten with -inf where an item is excluded.
    Row r's excluded items are its history,
    history_indices[history_indptr[history_rows[r]] : history_indptr[history_rows[r] + 1]],
    and, when `allowed` (bool, B x N) has rows, every item where allowed[r] is False (a
    filter). counts[r]: answers wanted for row r (<= out_items.shape[1]). log_normalizers:
    one float64 per row, or an empty array to compute them. Out: the best candidates of
    each row, best first (ties: lower index first), and their softmax probabilities over
    *every* item, as Personalize scores (so excluding an item never changes another's score);
    with a non-empty `out_normalizers`, each row's normaliser (float64).
    """
    num_rows = logits.shape[0]
    num_blocks = (logits.shape[1] + BLOCK - 1) // BLOCK
    maxima = np.empty(num_blocks, dtype=np.float32)
    sums = np.empty(num_blocks, dtype=np.float32)
    values = np.empty(out_items.shape[1], dtype=np.float32)
    indices = np.empty(out_items.shape[1], dtype=np.int64)
    kept = np.zeros(num_rows, dtype=np.int64)
    given_normalizers = log_normalizers.shape[0] > 0
    masked = allowed.shape[0] > 0
    report = out_normalizers.shape[0] > 0
    for r in range(num_rows):
        row = logits[r]
        n = counts[r]
        if n <= 0 and not report:
            continue
        if given_normalizers:
            normalizer = log_normalizers[r]
        else:
            normalizer = _row_log_normalizer(row, maxima, sums)
        if report:
            out_normalizers[r] = normalizer
        if n <= 0:
            continue
        user = history_rows[r]
        first, last = history_indptr[user], history_indptr[user + 1]
        for j in range(first, last):
            row[history_indices[j]] = -np.inf
        if masked:
            keep = allowed[r]
            for i in range(row.shape[0]):
                if not keep[i]:
                    row[i] = -np.inf
        if masked or given_normalizers:
            _block_stats(row, maxima, sums, False)
        else:  # the normaliser's pass left every block's maximum: redo the history's blocks
            for j in range(first, last):
                _block_maximum(row, maxima, history_indices[j] // BLOCK)
        kept[r] = _top(row, n, maxima, values, indices)
        _emit(values, indices, kept[r], normalizer, out_items[r], out_scores[r])
    return kept


@njit(fastmath=_FAST, nogil=True, cache=True)
def score_candidates(
    user_vectors, item_factors, candidates, counts, log_normalizers, out_items, out_scores
):
    """`score_rows` for rows sharing one candidate list, with known softmax normalisers:
    only the candidates' dot products are computed (a filter that keeps a fifth of the
    catalog costs a fifth of the product), each candidate's factors read once for the whole
    batch (item-major loop: the users' vectors stay in the first-level cache), and each
    row's top n kept as it goes.

    `candidates`: ascending item indices (equal scores: the lower index first, as
    `score_rows`); item_factors (N, F) float32 C-contiguous; log_normalizers one float64 per
    row. Returns the answers kept per row.
    """
    num_rows = user_vectors.shape[0]
    factors = item_factors.shape[1]
    width = max(out_items.shape[1], 1)
    values = np.empty((num_rows, width), dtype=np.float32)
    indices = np.empty((num_rows, width), dtype=np.int64)
    sizes = np.zeros(num_rows, dtype=np.int64)
    for item in candidates:
        vector = item_factors[item]
        for r in range(num_rows):
            n = counts[r]
            if n <= 0:
                continue
            user = user_vectors[r]
            total = np.float32(0.0)
            for f in range(factors):
                total += vector[f] * user[f]
            if sizes[r] < n or total > values[r, 0]:
                sizes[r] = _offer(values[r], indices[r], sizes[r], n, total, item)
    for r in range(num_rows):
        _emit(values[r], indices[r], sizes[r], log_normalizers[r], out_items[r], out_scores[r])
    return sizes


@njit(fastmath=_FAST, nogil=True, cache=True)
def score_by_norm(
    user_vectors,
    factors,
    bounds,
    items,
    num_items,
    history_rows,
    history_indptr,
    history_indices,
    counts,
    log_normalizers,
    out_items,
    out_scores,
):
    """`score_rows` with known softmax normalisers, reading items largest norm first and
    stopping as soon as none of the rest can enter a row's n best: the same answers (up to
    float rounding) from a fraction of the dot products.

    `factors` (M, F) float32: the item factors in descending order of their norms `bounds`
    (float64, M, each slightly above the true norm, see `scoring.NormOrdered`); `items`:
    each row's item index (< num_items). By Cauchy-Schwarz an item scores at most
    |user| x its norm, so once that bound falls below the worst of a full heap, no later
    item can enter it. Row r's history (excluded) is history_indices[history_indptr[u] :
    history_indptr[u + 1]] for u = history_rows[r]. Ties rank the lower item index first,
    as `score_rows`. Returns the answers kept per row.
    """
    num_rows = user_vectors.shape[0]
    num_factors = factors.shape[1]
    length = factors.shape[0]
    width = max(out_items.shape[1], 1)
    values = np.empty(width, dtype=np.float32)
    indices = np.empty(width, dtype=np.int64)
    # Marks of the row's history; none (and no pass over num_items bytes) without history.
    excluded = np.zeros(num_items if history_indices.shape[0] else 0, dtype=np.bool_)
    kept = np.zeros(num_rows, dtype=np.int64)
    for r in range(num_rows):
        n = min(counts[r], length, out_items.shape[1])
        if n <= 0:
            continue
        user = user_vectors[r]
        squares = 0.0
        for f in range(num_factors):
            squares += np.float64(user[f]) * np.float64(user[f])
        user_norm = math.sqrt(squares)
        first, last = history_indptr[history_rows[r]], history_indptr[history_rows[r] + 1]
        for j in range(first, last):
            excluded[history_indices[j]] = True
        size = 0
        for k in range(length):
            if size == n and user_norm * bounds[k] < values[0]:
                break  # no later item can reach the heap
            item = items[k]
            if last > first and excluded[item]:
                continue
            row = factors[k]
            total = np.float32(0.0)
            for f in range(num_factors):
                total += row[f] * user[f]
            if size < n or total > values[0] or (total == values[0] and item < indices[0]):
                size = _offer(values, indices, size, n, total, item)
        for j in range(first, last):
            excluded[history_indices[j]] = False
        kept[r] = size
        _emit(values, indices, size, log_normalizers[r], out_items[r], out_scores[r])
    return kept


@njit(fastmath=_FAST, nogil=True, cache=True)
def rank_items(user_vector, item_factors, items, out_order, out_scores):
    """Order `items` (indices) best first for the user, ties in input order, with the
    softmax over them: out_order[k] is a position in `items`, out_scores[k] its probability.
    Returns False, having written nothing, when an entry is -1 (an id outside the model) or
    repeats another: the caller then sorts its ids out and calls again.

    GetPersonalizedRanking scores at most 500 items; compiled, the checks, gather, dot
    products, stable sort and softmax cost a few microseconds instead of a dozen NumPy and
    Python calls. Each dot product is summed in vector lanes (fastmath's reassociation),
    not one sequential chain.
    """
    count = items.shape[0]
    dots = np.empty(count, dtype=np.float64)
    for k in range(count):
        item = items[k]
        if item < 0:
            return False
        row = item_factors[item]
        total = np.float32(0.0)
        for f in range(row.shape[0]):
            total += row[f] * user_vector[f]
        dots[k] = -total  # ascending sort of the negation: best first
    order = np.argsort(dots, kind="mergesort")  # stable: equal scores keep input order
    # A repeated item has the same score as its first: look within runs of equal scores.
    start = 0
    for k in range(1, count + 1):
        if k == count or dots[order[k]] != dots[order[start]]:
            if k - start > 1:
                members = np.sort(items[order[start:k]])
                if (members[1:] == members[:-1]).any():
                    return False
            start = k
    if count == 0:
        return True
    peak = -dots[order[0]]
    total = 0.0
    for k in range(count):
        out_order[k] = order[k]
        out_scores[k] = math.exp(-dots[order[k]] - peak)
        total += out_scores[k]
    for k in range(count):
        out_scores[k] /= total
    return True


def readonly(array: np.ndarray) -> np.ndarray:
    """`array` as a read-only view (no copy; itself when already read-only).

    numba compiles one specialisation per argument type, and writability is part of an
    array's type: a memory-mapped model's arrays are read-only, an in-memory model's are
    not. The kernels' callers (`backends.local.scoring`) pass every input array through
    this, so each kernel has one set of types whatever the model's origin, the one
    `warm_up` compiles; only the output arrays are writable.
    """
    if array.flags.writeable:
        array = array.view()
        array.flags.writeable = False
    return array


def warm_up() -> None:
    """Compile the kernels (or load them from numba's cache) with the types serving uses.

    The first compilation takes seconds: `make install` calls this to fill numba's cache,
    `recs precompute` before scoring. (The server's LocalBackend goes further: its start()
    answers a request of every kind, so that the types its model really passes are
    compiled or loaded before SERVING.) The types are those `backends.local.scoring`
    passes: read-only inputs (see `readonly`), writable outputs.
    """
    # One user, two factors, three items, no history.
    user_vectors = readonly(np.zeros((1, 2), dtype=np.float32))
    item_factors_t = readonly(np.zeros((2, 3), dtype=np.float32))
    row_products(user_vectors, item_factors_t)
    score_rows(
        np.zeros((1, 3), dtype=np.float32),  # logits: written to
        *(
            readonly(array)
            for array in (
                np.zeros(1, dtype=np.int64),  # history_rows
                np.zeros(2, dtype=np.int64),  # history_indptr
                np.zeros(0, dtype=np.int32),  # history_indices
                np.zeros((0, 3), dtype=np.bool_),  # allowed
                np.ones(1, dtype=np.int64),  # counts
                np.empty(0, dtype=np.float64),  # log_normalizers
            )
        ),
        np.empty((1, 1), dtype=np.int64),
        np.empty((1, 1), dtype=np.float64),
        np.empty(0, dtype=np.float64),
    )
    score_candidates(
        readonly(np.zeros((1, 2), dtype=np.float32)),
        readonly(np.zeros((3, 2), dtype=np.float32)),
        readonly(np.arange(3, dtype=np.int64)),
        readonly(np.ones(1, dtype=np.int64)),
        readonly(np.zeros(1, dtype=np.float64)),
        np.empty((1, 1), dtype=np.int64),
        np.empty((1, 1), dtype=np.float64),
    )
    log_normalizer_rows(np.zeros((1, 3), dtype=np.float32), np.empty(1, dtype=np.float64))
    score_by_norm(
        readonly(np.zeros((1, 2), dtype=np.float32)),
        readonly(np.zeros((3, 2), dtype=np.float32)),
        readonly(np.zeros(3, dtype=np.float64)),
        readonly(np.arange(3, dtype=np.int64)),
        3,
        readonly(np.zeros(1, dtype=np.int64)),
        readonly(np.zeros(2, dtype=np.int64)),
        readonly(np.zeros(0, dtype=np.int32)),
        readonly(np.ones(1, dtype=np.int64)),
        readonly(np.zeros(1, dtype=np.float64)),
        np.empty((1, 1), dtype=np.int64),
        np.empty((1, 1), dtype=np.float64),
    )
    rank_items(
        readonly(np.zeros(2, dtype=np.float32)),
        readonly(np.zeros((3, 2), dtype=np.float32)),
        readonly(np.zeros(1, dtype=np.int64)),
        np.empty(1, dtype=np.int64),
        np.empty(1, dtype=np.float64),
    )
    rank_items(
        readonly(np.zeros(2, dtype=np.float32)),
        readonly(np.zeros((3, 2), dtype=np.float32)),
        np.zeros(1, dtype=np.int64),  # the caller's own positions: writable
        np.empty(1, dtype=np.int64),
        np.empty(1, dtype=np.float64),
    )
