"""The yardsticks every evaluation reports lift against, trained on the split's train data.

- `popularity`: items by distinct users (Personalize's Popularity-Count, its recommended
  baseline), minus what the user already interacted with; ties by item id.
- `als_default`: `implicit.als.AlternatingLeastSquares()` with every library default
  (factors 100, regularization 0.01, alpha 1.0, 15 iterations); only `random_state` is
  fixed so runs repeat.
- `item_item_cosine`: `implicit.nearest_neighbours.CosineRecommender()` with its defaults
  (K = 20 neighbours).

Both implicit models see the plain interaction matrix: one unit per event, summed per
(user, item), with no event-type weights, EVENT_VALUE or recency, which is what "library
defaults" means for their input too. Recommendations exclude the user's own items, as
the backends do; an unknown user gets the popular items.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from recs.pipeline.dataset import encode_ids

BASELINE_NAMES = ("popularity", "als_default", "item_item_cosine")


class InteractionMatrix:
    """Users x items event counts (CSR) with the id <-> row/column maps."""

    def __init__(self, interactions: pa.Table) -> None:
        user_codes, self.user_ids = encode_ids(interactions, "USER_ID")
        item_codes, self.item_ids = encode_ids(interactions, "ITEM_ID")
        ones = np.ones(interactions.num_rows, dtype=np.float32)
        self.matrix = sp.csr_matrix(
            (ones, (user_codes, item_codes)), shape=(len(self.user_ids), len(self.item_ids))
        )
        self.matrix.sum_duplicates()
        self.user_index = {u: i for i, u in enumerate(self.user_ids.tolist())}
        self.item_index = {t: i for i, t in enumerate(self.item_ids.tolist())}
        # Distinct users per item, most first, ties by item id (ids are sorted already).
        popularity = np.diff(self.matrix.tocsc().indptr)
        self.popularity = popularity
        self.popular_order = np.argsort(-popularity, kind="stable")

    def seen(self, user: int) -> np.ndarray:
        return self.matrix.indices[self.matrix.indptr[user] : self.matrix.indptr[user + 1]]


class PopularityBaseline:
    """The most popular items the user has not interacted with."""

    name = "popularity"

    def __init__(self, data: InteractionMatrix) -> None:
        self.data = data

    def recommend(self, user_id: str, num_results: int) -> list[str]:
        user = self.data.user_index.get(user_id)
        order = self.data.popular_order
        if user is not None:
            order = order[~np.isin(order, self.data.seen(user))]
        return self.data.item_ids[order[:num_results]].tolist()

    def rerank(self, user_id: str, item_ids: Sequence[str]) -> list[str]:
        known, unknown = _known_and_unknown(self.data, item_ids)
        counts = self.data.popularity[[self.data.item_index[i] for i in known]]
        order = np.argsort(-counts, kind="stable")
        return [known[i] for i in order] + unknown


class ImplicitBaseline:
    """An implicit recommender fitted on the interaction matrix."""

    def __init__(self, name: str, model: Any, data: InteractionMatrix) -> None:
        self.name, self.model, self.data = name, model, data
        with warnings.catch_warnings():
            # CosineRecommender converts its own normalised matrix and warns about it.
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            self.model.fit(data.matrix, show_progress=False)
        self._popularity = PopularityBaseline(data)

    def recommend(self, user_id: str, num_results: int) -> list[str]:
        user = self.data.user_index.get(user_id)
        if user is None:
            return self._popularity.recommend(user_id, num_results)
        ids, _ = self.model.recommend(
            user, self.data.matrix[user], N=num_results, filter_already_liked_items=True
        )
        return self.data.item_ids[ids].tolist()

    def rerank(self, user_id: str, item_ids: Sequence[str]) -> list[str]:
        user = self.data.user_index.get(user_id)
        known, unknown = _known_and_unknown(self.data, item_ids)
        if user is None or not known:
            return self._popularity.rerank(user_id, item_ids)
        indices = np.array([self.data.item_index[i] for i in known])
        ids, _ = self.model.recommend(
            user,
            self.data.matrix[user],
            N=len(indices),
            items=indices,
            filter_already_liked_items=False,
        )
        return self.data.item_ids[ids].tolist() + unknown


def fit_baselines(
    train: pa.Table, names: Sequence[str] = BASELINE_NAMES, random_state: int = 0
) -> list[PopularityBaseline | ImplicitBaseline]:
    """Fit the named baselines on a split's training data."""
    from implicit.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import CosineRecommender

    data = InteractionMatrix(train)
    factories = {
        "popularity": lambda: PopularityBaseline(data),
        "als_default": lambda: ImplicitBaseline(
            "als_default", AlternatingLeastSquares(random_state=random_state), data
        ),
        "item_item_cosine": lambda: ImplicitBaseline("item_item_cosine", CosineRecommender(), data),
    }
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; known: {', '.join(factories)}")
    return [factories[name]() for name in names]


def _known_and_unknown(data: InteractionMatrix, item_ids: Sequence[str]) -> tuple[list, list]:
    distinct = list(dict.fromkeys(item_ids))
    known = [i for i in distinct if i in data.item_index]
    return known, [i for i in distinct if i not in data.item_index]
