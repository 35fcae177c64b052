"""Validation users carved from training data, and scoring the local engine on them.

Tuning must never look at a test holdout, so it measures on *training* users instead,
with the evaluation's own protocol: a validation user's newest 10% of interactions (at
least one) is held out, a model is trained on everything else, and its recommendations
for that user are compared with the held-out items.

Each `Validation` spreads its users over folds: one model per fold, trained without that
fold's held-out rows, scored on that fold's users; the figure is the mean over all users.
`carve_validation` gives two disjoint sets of users: one to search on, and one to confirm
the finalists on, so the winner is chosen on users the search never saw.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from recs.backends.local.backend import LocalBackend
from recs.backends.local.params import TrainParams
from recs.backends.local.similar import similar_neighbours
from recs.backends.local.train import event_confidence, fit_model
from recs.evaluation.metrics import ndcg_at_k
from recs.evaluation.run import BackendRecommender, EvaluationData, evaluate, evaluation_data
from recs.evaluation.split import split_interactions
from recs.pipeline.dataset import encode_ids

DEFAULT_METRIC = "normalized_discounted_cumulative_gain_at_10"
FOLDS = 2
MAX_USERS = 5000  # per Validation: bounds the scoring cost on very large datasets


@dataclass(frozen=True)
class Fold:
    """Training data without the fold users' newest interactions, and what to score."""

    train: pa.Table
    data: EvaluationData
    newest_input: dict[str, str]  # fold user -> their newest item still in `train`


class Validation:
    """Validation users in folds; scores parameters by training one model per fold."""

    def __init__(
        self,
        interactions: pa.Table,
        users: Sequence[str],
        folds: int = FOLDS,
        metric: str = DEFAULT_METRIC,
    ) -> None:
        if not users:
            raise ValueError("validation: no users")
        self.metric = metric
        _, _, k = metric.rpartition("_at_")
        self.ks = sorted({10, int(k)} if k.isdigit() else {10})
        self.folds = []
        for group in np.array_split(np.asarray(users, dtype=str), min(folds, len(users))):
            split = split_interactions(
                interactions, test_user_fraction=1.0, eligible_users=group.tolist()
            )
            self.folds.append(
                Fold(
                    train=split.train,
                    data=evaluation_data(split.train, split.holdout, negatives=0),
                    newest_input=_newest_item_per_user(split.train, set(group.tolist())),
                )
            )

    @property
    def num_users(self) -> int:
        return sum(len(fold.data.relevant) for fold in self.folds)

    def score(self, params: TrainParams) -> float:
        """The objective metric over all validation users (a model per fold)."""
        total = 0.0
        for fold in self.folds:
            model = fit_model(fold.train, params, similar=False)
            recommender = BackendRecommender(LocalBackend.from_model(model), "candidate")
            result = evaluate(recommender, fold.data, self.ks, ranking=False)
            total += result.metrics[self.metric] * len(fold.data.relevant)
        return total / self.num_users

    def similar_scores(
        self, params: TrainParams, choices: Iterable[tuple[str, bool]], k: int = 10
    ) -> dict[tuple[str, bool], float]:
        """Per (similar_method, similar_use_confidence): NDCG@k of the similar items of each
        validation user's newest input item against their held-out items (how SIMS is
        used: "more like what you just watched"). ALS is fitted once per fold; only the
        neighbours are recomputed per choice.
        """
        choices = list(choices)
        sums = dict.fromkeys(choices, 0.0)
        counted = 0
        for fold in self.folds:
            model = fit_model(fold.train, params, similar=False)
            weighted = confidence_matrix(fold.train, params)
            binary = weighted.copy()
            binary.data = np.ones_like(binary.data)
            for method, use_confidence in choices:
                indices, values = similar_neighbours(
                    weighted if use_confidence else binary,
                    model.item_factors,
                    method,
                    params.similar_neighbours,
                )
                backend = LocalBackend.from_model(
                    dataclasses.replace(model, similar_indices=indices, similar_scores=values)
                )
                fold_sum, fold_count = _next_item_ndcg(backend, fold, k)
                sums[(method, use_confidence)] += fold_sum
            counted += fold_count
        return {choice: total / counted if counted else 0.0 for choice, total in sums.items()}


def carve_validation(
    interactions: pa.Table,
    seed: int,
    exclude_users: Iterable[str] = (),
    metric: str = DEFAULT_METRIC,
    max_users: int = MAX_USERS,
) -> tuple[Validation, Validation]:
    """Two disjoint validation sets (search, confirm) of the users not in `exclude_users`.

    Eligible users are shuffled with `seed` and halved (at most `max_users` each).
    """
    excluded = set(exclude_users)
    users = sorted(u for u in pc.unique(interactions.column("USER_ID")).to_pylist())
    eligible = np.asarray([u for u in users if u not in excluded], dtype=str)
    if len(eligible) < 2:
        raise ValueError(
            f"tuning data: {len(eligible)} training user(s) to validate on; at least 2 needed"
        )
    shuffled = np.random.default_rng(seed).permutation(eligible)
    half = min(len(shuffled) // 2, max_users)
    search = Validation(interactions, shuffled[:half].tolist(), metric=metric)
    confirm = Validation(interactions, shuffled[half : 2 * half].tolist(), metric=metric)
    return search, confirm


def confidence_matrix(interactions: pa.Table, params: TrainParams) -> sp.csr_matrix:
    """The users x items confidence matrix as `fit_model` builds it (zero pairs dropped)."""
    user_codes, user_ids = encode_ids(interactions, "USER_ID")
    item_codes, item_ids = encode_ids(interactions, "ITEM_ID")
    matrix = sp.csr_matrix(
        (event_confidence(interactions, params), (user_codes, item_codes)),
        shape=(len(user_ids), len(item_ids)),
    )
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix


def _next_item_ndcg(backend: LocalBackend, fold: Fold, k: int) -> tuple[float, int]:
    """Sum and count of per-user NDCG@k of the newest input item's similar items."""
    total, count = 0.0, 0
    for user, relevant in fold.data.relevant.items():
        item = fold.newest_input.get(user)
        if item is not None:
            similar = [i.item_id for i in backend.similar_items(item, k).items]
            total += ndcg_at_k(similar, relevant, k)
            count += 1
    return total, count


def _newest_item_per_user(table: pa.Table, users: set[str]) -> dict[str, str]:
    """Each user's newest item in `table` (ties: the later row)."""
    newest: dict[str, tuple[int, str]] = {}
    rows = zip(
        table.column("USER_ID").to_pylist(),
        table.column("ITEM_ID").to_pylist(),
        table.column("TIMESTAMP").to_pylist(),
        strict=True,
    )
    for user, item, timestamp in rows:
        if user in users and (user not in newest or timestamp >= newest[user][0]):
            newest[user] = (timestamp, item)
    return {user: item for user, (_, item) in newest.items()}
