"""Precomputed similar items: every method, the K limit, scores and no self-matches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from backends.local.params import TrainParams
from backends.local.train import fit_model


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


def test_cosine_scores_are_co_occurrence_cosines(tiny_interactions: pa.Table) -> None:
    # Every event weighs 1; a1 and a3 were each watched once per user, so their columns
    # are binary and their cosine is shared users / sqrt(users of a1 * users of a3).
    params = TrainParams(factors=4, iterations=2, event_weights={}, default_event_weight=1.0)
    model = fit_model(tiny_interactions, params)
    ids = model.item_ids.tolist()
    a1 = ids.index("a1")
    neighbours = dict(
        zip(
            model.item_ids[model.similar_indices[a1][model.similar_indices[a1] >= 0]].tolist(),
            model.similar_scores[a1].tolist(),
            strict=False,
        )
    )
    users_a1, users_a3 = {"u01", "u02", "u03", "u04"}, {"u01", "u02", "u03"}
    expected = len(users_a1 & users_a3) / np.sqrt(len(users_a1) * len(users_a3))
    assert neighbours["a3"] == pytest.approx(expected, rel=1e-5)
