"""GetRecommendations with UNFILTERED (a Personalize request without filterArn): every item
ranked, the user's own history included, with the same scores as a filtered answer."""

from __future__ import annotations

import numpy as np

from recs.backends.filtering import UNFILTERED
from recs.backends.local.artifacts import LocalModel
from recs.backends.local.backend import LocalBackend


def test_unfiltered_ranks_every_item_history_included(tiny_model: LocalModel) -> None:
    backend = LocalBackend.from_model(tiny_model)
    users = tiny_model.user_ids.tolist()
    for row, user in enumerate(users):
        answer = backend.recommend(user, tiny_model.num_items, UNFILTERED)
        scores = tiny_model.item_factors @ tiny_model.user_factors[row]
        expected = np.argsort(-scores, kind="stable")
        assert len(answer.item_ids) == tiny_model.num_items
        assert answer.item_ids[:3] == tiny_model.item_ids[expected[:3]].tolist()
        history = tiny_model.history_indices[
            tiny_model.history_indptr[row] : tiny_model.history_indptr[row + 1]
        ]
        assert set(tiny_model.item_ids[history].tolist()) <= set(answer.item_ids)


def test_unfiltered_scores_equal_the_default_filtered_ones(tiny_model: LocalModel) -> None:
    backend = LocalBackend.from_model(tiny_model)
    user = tiny_model.user_ids[0]
    everything = backend.recommend(user, tiny_model.num_items, UNFILTERED)
    default = backend.recommend(user, 5)  # exclude_interacted
    by_item = dict(zip(everything.item_ids, everything.scores, strict=True))
    for item, score in zip(default.item_ids, default.scores, strict=True):
        assert abs(by_item[item] - score) < 1e-6
    assert set(default.item_ids) < set(everything.item_ids)
