"""Batched scoring gives the answers of scoring each user alone."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from recs.backends.filtering import DEFAULT_FILTER_NAME, FilterSet
from recs.backends.local.artifacts import LocalModel
from recs.backends.local.backend import LocalBackend
from recs.backends.local.kernels import BLOCK, GEMM_FROM_ROWS, readonly
from recs.backends.local.scoring import (
    CandidateFactors,
    NormOrdered,
    log_normalizers,
    norm_order_share,
    recommend_batch,
    recommend_by_norm,
    recommend_candidates,
    recommend_filtered,
    recommend_rows,
    recommend_scores,
)


def reference_recommend(
    user: np.ndarray, items: np.ndarray, seen: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The definition, in float64: the best n items outside `seen` (ties by index), each
    scored by its share of the softmax over *every* item, `seen` ones included."""
    logits = items.astype(np.float64) @ user.astype(np.float64)
    log_normalizer = np.logaddexp.reduce(logits)
    candidates = np.setdiff1d(np.arange(len(items)), seen)
    order = np.lexsort((candidates, -logits[candidates]))[:n]
    chosen = candidates[order]
    return chosen, np.exp(logits[chosen] - log_normalizer)


@pytest.mark.parametrize("normalized", [False, True], ids=["scored whole", "by norm"])
@pytest.mark.parametrize("default", [DEFAULT_FILTER_NAME, ""], ids=["history", "no filter"])
def test_recommend_many_matches_recommend_one_by_one(
    tiny_model: LocalModel, normalized: bool, default: str
) -> None:
    """`recommend` takes a lone call's own path; its answers are the batch's, whatever the
    filter (the default, none at all, one on the user's interactions) and the scoring."""
    model = tiny_model
    if normalized:
        stored = log_normalizers(model.user_factors, model.item_factors)
        model = dataclasses.replace(model, user_log_normalizer=stored)
    filters = FilterSet.from_expressions(
        {"unclicked": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("clicked")'}, default
    )
    backend = LocalBackend.from_model(model, filters=filters)
    requests = [(u, n) for u in [*model.user_ids.tolist(), "nobody"] for n in (1, 3, 25)]
    for call in (None, filters.resolve("unclicked", {})):
        together = backend.recommend_many(requests, [call] * len(requests))
        for (user_id, n), answer in zip(requests, together, strict=True):
            alone = backend.recommend(user_id, n, call)
            assert answer.item_ids == alone.item_ids
            assert answer.scores == pytest.approx(alone.scores, rel=1e-5)


@pytest.mark.parametrize("num_items", [40, 20 * BLOCK + 17])  # short rows and blocked top-n
@pytest.mark.parametrize("num_users", [GEMM_FROM_ROWS - 1, 9])  # per-user products, one product
def test_recommend_batch_follows_the_definition(num_items: int, num_users: int) -> None:
    rng = np.random.default_rng(num_items + num_users)
    items = rng.standard_normal((num_items, 16)).astype(np.float32)
    users = rng.standard_normal((num_users, 16)).astype(np.float32)
    seen = [rng.choice(num_items, size=3 * k % 27, replace=False) for k in range(num_users)]
    ns = [[1, 5, 25, 7, 40, 3, 25, 25, 2][k % 9] for k in range(num_users)]
    batched = recommend_batch(users, items, seen, ns)
    for k in range(len(users)):
        expected_items, expected_scores = reference_recommend(users[k], items, seen[k], ns[k])
        got_items, got_scores = batched[k]
        assert got_items.tolist() == expected_items.tolist()
        np.testing.assert_allclose(got_scores, expected_scores, rtol=1e-5)
        alone_items, alone_scores = recommend_scores(users[k], items, seen[k], ns[k])
        assert alone_items.tolist() == got_items.tolist()
        np.testing.assert_allclose(alone_scores, got_scores, rtol=1e-5)  # float32 products


@pytest.mark.parametrize("num_items", [300, 30 * BLOCK + 5])
def test_ties_come_in_index_order_and_the_blocked_search_misses_none(num_items: int) -> None:
    rng = np.random.default_rng(3)
    # one factor: the dot product is the item's value times the user's; rounded values
    # make many exact ties, spread over blocks the top-n search may skip
    values = np.round(rng.standard_normal(num_items), 1).astype(np.float32)
    items = values[:, np.newaxis]
    users = np.array([[1.0], [2.0], [-1.0]], dtype=np.float32)
    seen = [rng.choice(num_items, 40, replace=False), np.array([], dtype=np.int64)] * 2
    for n in (1, 10, 25, 60):
        batched = recommend_batch(users, items, seen[:3], [n] * 3)
        for k, (got_items, got_scores) in enumerate(batched):
            expected_items, expected_scores = reference_recommend(users[k], items, seen[k], n)
            assert got_items.tolist() == expected_items.tolist()
            np.testing.assert_allclose(got_scores, expected_scores, rtol=1e-5)


def test_stored_normalizers_give_the_computed_scores() -> None:
    rng = np.random.default_rng(5)
    items = rng.standard_normal((5 * BLOCK + 3, 8)).astype(np.float32)
    users = rng.standard_normal((4, 8)).astype(np.float32)
    indptr = np.array([0, 3, 3, 10, 12])
    indices = rng.choice(len(items), 12, replace=False).astype(np.int32)
    items_t = np.ascontiguousarray(items.T)
    rows = np.arange(4)
    computed = recommend_rows(users, items_t, rows, indptr, indices, [7] * 4)
    # The normaliser is over every item, the history included.
    normalizers = np.array([np.logaddexp.reduce(reference_logits(users[r], items)) for r in rows])
    given = recommend_rows(users, items_t, rows, indptr, indices, [7] * 4, normalizers)
    for (a_items, a_scores), (b_items, b_scores) in zip(computed, given, strict=True):
        assert a_items.tolist() == b_items.tolist()
        np.testing.assert_allclose(a_scores, b_scores, rtol=1e-5)
    # The stored ones are used, not recomputed: a normaliser log 2 higher halves the scores.
    halved = recommend_rows(users, items_t, rows, indptr, indices, [7] * 4, normalizers + np.log(2))
    for (a_items, a_scores), (b_items, b_scores) in zip(computed, halved, strict=True):
        assert a_items.tolist() == b_items.tolist()
        np.testing.assert_allclose(b_scores, a_scores / 2, rtol=1e-5)


def reference_logits(user: np.ndarray, items: np.ndarray) -> np.ndarray:
    """The user's float64 dot products with every item."""
    return items.astype(np.float64) @ user.astype(np.float64)


def test_excluding_items_leaves_the_other_scores_unchanged() -> None:
    """Scores are shares of the whole catalog's softmax: what the history (or a filter)
    leaves out changes which items are answered, never another item's score."""
    rng = np.random.default_rng(8)
    items = rng.standard_normal((3 * BLOCK + 11, 8)).astype(np.float32)
    user = rng.standard_normal(8).astype(np.float32)
    everything = len(items)
    full_items, full_scores = recommend_scores(
        user, items, np.array([], dtype=np.int64), everything
    )
    assert full_scores.sum() == pytest.approx(1.0)
    full = dict(zip(full_items.tolist(), full_scores.tolist(), strict=True))
    seen = full_items[::3]  # every third, the best item first
    items_left, scores_left = recommend_scores(user, items, seen, everything)
    assert sorted(items_left.tolist()) == sorted(set(range(everything)) - set(seen.tolist()))
    np.testing.assert_allclose(scores_left, [full[i] for i in items_left.tolist()], rtol=1e-5)
    # All candidates answered: their shares add up to 1 minus the history's share.
    assert scores_left.sum() == pytest.approx(1.0 - sum(full[i] for i in seen.tolist()), rel=1e-5)
    assert scores_left.sum() < 1.0


def test_a_filter_keeps_the_scores_of_the_items_it_allows() -> None:
    """`recommend_filtered` (candidates: the allowed items) and `recommend_rows` with the
    complement as history give the same answer, scored over every item."""
    rng = np.random.default_rng(9)
    items = rng.standard_normal((2 * BLOCK + 7, 8)).astype(np.float32)
    users = rng.standard_normal((3, 8)).astype(np.float32)
    allowed = rng.random((3, len(items))) < 0.3
    allowed[2] = False  # a filter that lets nothing through
    items_t = np.ascontiguousarray(items.T)
    ns = [10, len(items), 5]
    filtered = recommend_filtered(users, items_t, allowed, ns)
    for k, (got_items, got_scores) in enumerate(filtered):
        excluded = np.flatnonzero(~allowed[k])
        expected_items, expected_scores = reference_recommend(users[k], items, excluded, ns[k])
        assert got_items.tolist() == expected_items.tolist()
        np.testing.assert_allclose(got_scores, expected_scores, rtol=1e-5)
    assert filtered[2][0].tolist() == []
    # With a history too, both exclusions apply.
    history = np.flatnonzero(allowed[0])[:3].astype(np.int32)
    [(both_items, both_scores)] = recommend_rows(
        users[:1], items_t, [0], [0, len(history)], history, [len(items)], allowed=allowed[:1]
    )
    excluded = np.union1d(np.flatnonzero(~allowed[0]), history)
    expected_items, expected_scores = reference_recommend(users[0], items, excluded, len(items))
    assert both_items.tolist() == expected_items.tolist()
    np.testing.assert_allclose(both_scores, expected_scores, rtol=1e-5)


def test_a_user_who_saw_everything_gets_nothing() -> None:
    items = np.eye(3, dtype=np.float32)
    answers = recommend_batch(
        np.ones((2, 3), dtype=np.float32), items, [np.arange(3), np.array([1])], [5, 5]
    )
    assert answers[0][0].tolist() == []
    assert answers[0][1].tolist() == []
    # Every logit is 1: each item holds a third of the softmax, the seen one's included.
    assert sorted(answers[1][0].tolist()) == [0, 2]
    np.testing.assert_allclose(answers[1][1], [1 / 3, 1 / 3], rtol=1e-6)
    assert answers[1][1].sum() == pytest.approx(1.0 - 1 / 3)


def test_scoring_only_the_candidates_matches_scoring_every_item() -> None:
    """With the rows' normalisers known, `recommend_candidates` computes only the listed
    items' dot products: same items, same scores, same tie
    order as masking every other item out."""
    rng = np.random.default_rng(11)
    items = rng.standard_normal((300, 8)).astype(np.float32)
    items[10] = items[20]  # a tie: the lower index comes first on both paths
    users = rng.standard_normal((5, 8)).astype(np.float32)
    allowed = rng.random((5, 300)) < 0.3
    allowed[:, [10, 20]] = True
    allowed[4] = False  # a filter that lets nothing through
    counts = [7, 25, 300, 1, 5]
    full = recommend_filtered(users, np.ascontiguousarray(items.T), allowed, counts)
    for shared in (False, True):  # per-user lists (writable) and shared ones (read-only)
        lists = [np.flatnonzero(row) for row in allowed]
        listed = recommend_candidates(
            users,
            CandidateFactors(items),
            [readonly(each) for each in lists] if shared else lists,
            counts,
            log_normalizers(users, items),
        )
        for (full_items, full_scores), (sub_items, sub_scores) in zip(full, listed, strict=True):
            np.testing.assert_array_equal(full_items, sub_items)
            np.testing.assert_allclose(full_scores, sub_scores, rtol=1e-5)
        assert len(listed[4][0]) == 0 and len(listed[2][0]) == allowed[2].sum()
    # One shared list for every row (an Items filter): scored as one group, row by row the same.
    every = np.repeat(allowed[:1], len(users), axis=0)
    full = recommend_filtered(users, np.ascontiguousarray(items.T), every, counts)
    one_list = readonly(np.flatnonzero(allowed[0]))
    listed = recommend_candidates(
        users,
        CandidateFactors(items),
        [one_list] * len(users),
        counts,
        log_normalizers(users, items),
    )
    for (full_items, full_scores), (sub_items, sub_scores) in zip(full, listed, strict=True):
        np.testing.assert_array_equal(full_items, sub_items)
        np.testing.assert_allclose(full_scores, sub_scores, rtol=1e-5)


@pytest.mark.parametrize("factors", [1, 16])  # one factor: many exact ties
def test_reading_items_by_norm_gives_the_definitions_answers(factors: int) -> None:
    """`recommend_by_norm` stops once no unread item can enter the top n: the answers of
    the definition, ties by index, for skewed norms (ALS's shape), small and huge n, a
    history, a zero vector (nothing can be pruned) and a user all of whose scores are
    negative."""
    rng = np.random.default_rng(factors)
    num_items = 20 * BLOCK + 9
    # Small integers times powers of two: norms over decades, and every dot product exact
    # in float32, so the definition's ties are the kernel's.
    scale = 2.0 ** rng.integers(-6, 3, num_items)[:, np.newaxis]
    items = (rng.integers(-8, 9, (num_items, factors)) * scale).astype(np.float32)
    items[100] = items[7]  # an exact tie between a low and a high index
    users = rng.integers(-4, 5, (6, factors)).astype(np.float32)
    users[4] = 0.0
    users[5] = -np.sign(items.sum(axis=0) + 1e-9)  # mostly negative scores
    seen = [rng.choice(num_items, size=k * 15, replace=False) for k in range(len(users))]
    lengths = np.array([len(s) for s in seen])
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.concatenate(seen).astype(np.int32)
    normalizers = np.array([np.logaddexp.reduce(reference_logits(u, items)) for u in users])
    ordered = NormOrdered.of(items)
    for n in (1, 10, 25, num_items):
        got = recommend_by_norm(
            users, ordered, num_items, np.arange(len(users)), indptr, indices,
            [n] * len(users), normalizers,
        )  # fmt: skip
        for k, (got_items, got_scores) in enumerate(got):
            expected_items, expected_scores = reference_recommend(users[k], items, seen[k], n)
            assert got_items.tolist() == expected_items.tolist(), (k, n)
            np.testing.assert_allclose(got_scores, expected_scores, rtol=1e-4)
            # A lone call (its count array kept between calls) answers the same.
            (alone_items, alone_scores), = recommend_by_norm(
                users[k : k + 1], ordered, num_items, np.array([k]), indptr, indices, [n],
                normalizers[k : k + 1],
            )  # fmt: skip
            assert alone_items.tolist() == got_items.tolist(), (k, n)
            np.testing.assert_array_equal(alone_scores, got_scores)


def with_item_scale(scale: np.ndarray, users: int = 64, factors: int = 16) -> LocalModel:
    """A model whose item factors have the norms `scale` (times a random direction), with
    stored normalisers and a short history per user."""
    rng = np.random.default_rng(len(scale))
    items = len(scale)
    user_factors = rng.standard_normal((users, factors)).astype(np.float32)
    directions = rng.standard_normal((items, factors))
    item_factors = (directions * scale[:, np.newaxis]).astype(np.float32)
    seen = np.sort(np.stack([rng.choice(items, 5, replace=False) for _ in range(users)]), axis=1)
    return LocalModel(
        user_ids=np.array([f"u{i}" for i in range(users)]),
        item_ids=np.array([f"i{i:05d}" for i in range(items)]),
        user_factors=user_factors,
        item_factors=item_factors,
        popularity=rng.integers(1, 50, items),
        history_indptr=np.arange(0, users * 5 + 1, 5, dtype=np.int64),
        history_indices=seen.ravel().astype(np.int32),
        similar_indices=np.full((items, 1), -1, dtype=np.int32),
        similar_scores=np.zeros((items, 1), dtype=np.float32),
        meta={"trained_at": "2026-01-01T00:00:00+00:00", "params": {"factors": factors}},
        user_log_normalizer=log_normalizers(user_factors, item_factors),
    )


def test_items_are_read_by_norm_only_where_a_top_n_settles_early(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Norms over decades (ALS's shape): read by norm. Even norms: every item scored, as a
    top 25 would read most of them one by one. The answers are the same either way."""
    rng = np.random.default_rng(0)
    skewed = with_item_scale(rng.permutation(0.995 ** np.arange(2000)))
    even = with_item_scale(np.ones(2000))
    assert norm_order_share(skewed.user_factors, NormOrdered.of(skewed.item_factors)) < 0.3
    assert norm_order_share(even.user_factors, NormOrdered.of(even.item_factors)) > 0.3
    with caplog.at_level(logging.INFO, logger="recs.backends.local.backend"):
        LocalBackend.from_model(skewed)
        assert "scoring by norm" in caplog.text and "scoring every item" not in caplog.text
        caplog.clear()
        LocalBackend.from_model(even)
        assert "scoring every item" in caplog.text
    for model in (skewed, even):
        backend = LocalBackend.from_model(model)
        batched = backend.recommend_many([(user, 25) for user in model.user_ids.tolist()])
        seen = np.split(model.history_indices, model.history_indptr[1:-1])
        for k, answer in enumerate(batched):
            expected, scores = reference_recommend(
                model.user_factors[k], model.item_factors, seen[k], 25
            )
            assert answer.item_ids == model.item_ids[expected].tolist()
            np.testing.assert_allclose(answer.scores, scores, rtol=1e-4)


def test_candidate_factors_are_gathered_once_per_shared_list_within_the_byte_budget() -> None:
    items = np.arange(40, dtype=np.float32).reshape(10, 4)  # 16 + 16 bytes per item kept
    factors = CandidateFactors(items, max_bytes=32 * 6)
    first, second, third = (readonly(np.array(listed)) for listed in ([1, 3, 5], [0, 2], [4]))
    ordered = factors.shared(first)
    assert ordered is not None
    np.testing.assert_array_equal(ordered.items, [5, 3, 1])  # largest norm first
    np.testing.assert_array_equal(ordered.factors, items[[5, 3, 1]])
    np.testing.assert_allclose(ordered.bounds, np.linalg.norm(items[[5, 3, 1]], axis=1), rtol=1e-3)
    assert ordered.factors.flags.c_contiguous and not ordered.factors.flags.writeable
    assert factors.shared(first) is ordered  # kept: the same list costs no gather
    assert factors.shared(readonly(np.array([1, 3, 5]))) is not ordered  # another list
    factors.shared(second)
    factors.shared(third)  # over the budget: the oldest lists went
    assert factors.shared(first) is not ordered
    assert factors.shared(np.array([1, 3, 5])) is None  # writable: a per-user list
    assert factors.shared(readonly(np.arange(10))) is None  # beyond the budget alone
