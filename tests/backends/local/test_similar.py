"""Precomputed similar items: every method, the K limit, scores and no self-matches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model


@pytest.mark.parametrize("method", ["cosine", "bm25", "als"])
@pytest.mark.parametrize("k", [1, 3, 20])
def test_neighbour_tables(tiny_interactions: pa.Table, method: str, k: int) -> None:
    params = TrainParams(
        factors=8, iterations=5, random_state=0, similar_method=method, similar_neighbours=k
    )
    model = fit_model(tiny_interactions, params)
    indices, scores = model.similar_indices, model.similar_scores
    assert indices.shape == scores.shape == (model.num_items, k)
    for item, (row, row_scores) in enumerate(zip(indices, scores, strict=True)):
        found = row[row >= 0]
        assert item not in found
        assert len(set(found.tolist())) == len(found)
        assert (row[len(found) :] == -1).all(), "padding only at the end"
        kept = row_scores[: len(found)]
        assert ((kept > 0) & (kept <= 1)).all()
        assert (np.diff(kept) <= 0).all()
    if method == "bm25":  # scaled by each item's best neighbour
        has_any = indices[:, 0] >= 0
        np.testing.assert_allclose(scores[has_any, 0], 1.0)


def test_cosine_scores_count_each_user_once(tiny_interactions: pa.Table) -> None:
    """Co-occurrence as SIMS counts it: the cosine of binary who-watched-what columns."""
    model = fit_model(tiny_interactions, TrainParams(factors=4, iterations=2))
    ids = model.item_ids.tolist()
    row = ids.index("a2")
    found = model.similar_indices[row] >= 0
    neighbours = dict(
        zip(
            model.item_ids[model.similar_indices[row][found]].tolist(),
            model.similar_scores[row][found].tolist(),
            strict=True,
        )
    )
    watchers = {
        "a2": {"u01", "u02", "u03", "u04"},
        "a3": {"u01", "u02", "u03"},
        "p": {"u01", "u02", "u05", "u06", "u09"},
    }
    for other in ("a3", "p"):
        shared = len(watchers["a2"] & watchers[other])
        expected = shared / np.sqrt(len(watchers["a2"]) * len(watchers[other]))
        assert neighbours[other] == pytest.approx(expected, rel=1e-5)
    assert set(neighbours) == {"a1", "a3", "p"}


def test_confidence_weighted_co_occurrence_differs(tiny_interactions: pa.Table) -> None:
    binary = fit_model(tiny_interactions, TrainParams(factors=4, iterations=1))
    weighted = fit_model(
        tiny_interactions, TrainParams(factors=4, iterations=1, similar_use_confidence=True)
    )
    assert not np.allclose(binary.similar_scores, weighted.similar_scores)
