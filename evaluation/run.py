"""Ask a recommender for every test user's recommendations and rankings, and score them.

A recommender here is anything with `recommend(user_id, n) -> item ids` and
`rerank(user_id, item_ids) -> item ids`: a Backend (local or Personalize) through the
backend interface, a running service over gRPC, or one of the baselines. All are asked
the same questions about the same test users, so their figures compare directly.

How a test user's input reaches the model: the split's training data already holds each
test user's oldest 90% (see `pipeline.evaluation.split`), so a model trained on
`SPLIT/train` (locally, or a Personalize solution trained on that upload) knows them; the
recommender is only asked `recommend(user)` and `rerank(user, candidates)`.

Personalized ranking: each test user's distinct held-out items (at most
`MAX_RERANK_ITEMS - negatives`) mixed with `negatives` items sampled uniformly from the
training items the user never interacted with, shuffled (so input order tells nothing),
then ranked by the recommender.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recs.backends.base import MAX_RERANK_ITEMS, Backend
from recs.evaluation.metrics import (
    DEFAULT_KS,
    MRR_K,
    ranking_metrics,
    recommendation_metrics,
)

logger = logging.getLogger(__name__)

DEFAULT_NEGATIVES = 100

# Called after each test user is answered: (users done, users in all).
UserProgress = Callable[[int, int], None]


class Recommender(Protocol):
    """What evaluation asks of a system."""

    name: str

    def recommend(self, user_id: str, num_results: int) -> list[str]:
        """The user's recommendations, best first."""
        ...

    def rerank(self, user_id: str, item_ids: Sequence[str]) -> list[str]:
        """`item_ids` reordered best first for the user."""
        ...


class BackendRecommender:
    """A Backend (local, Personalize) asked through the backend interface."""

    def __init__(self, backend: Backend, name: str) -> None:
        self.backend, self.name = backend, name

    def recommend(self, user_id: str, num_results: int) -> list[str]:
        return [item.item_id for item in self.backend.recommend(user_id, num_results).items]

    def rerank(self, user_id: str, item_ids: Sequence[str]) -> list[str]:
        return [item.item_id for item in self.backend.rerank(user_id, item_ids).items]


class ServiceRecommender:
    """A running recommendation service asked over gRPC (`client.RecsClient`)."""

    def __init__(self, target: str, name: str | None = None, timeout: float = 10.0) -> None:
        from recs.client import RecsClient

        self.client = RecsClient(target, timeout=timeout)
        self.name = name or target

    def recommend(self, user_id: str, num_results: int) -> list[str]:
        return self.client.recommend(user_id, num_results).item_ids

    def rerank(self, user_id: str, item_ids: Sequence[str]) -> list[str]:
        return self.client.rerank(user_id, list(item_ids)).item_ids

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True)
class EvaluationData:
    """What scoring needs from a split, computed once and shared by every recommender.

    `relevant`: test user -> distinct held-out items. `ranking_candidates`: test user ->
    the ids sent for re-ranking. `num_dataset_items`: coverage's denominator.
    """

    relevant: dict[str, set[str]]
    ranking_candidates: dict[str, list[str]]
    num_dataset_items: int


@dataclass
class EvaluationResult:
    """One recommender's figures on one split."""

    name: str
    metrics: dict[str, float]
    details: dict[str, object] = field(default_factory=dict)


def evaluation_data(
    train: pa.Table,
    holdout: pa.Table,
    catalog_items: Iterable[str] = (),
    negatives: int = DEFAULT_NEGATIVES,
    seed: int = 0,
) -> EvaluationData:
    """Relevant items, re-ranking candidates and the item count of a split."""
    if holdout.num_rows == 0:
        raise ValueError("holdout: no held-out interactions to evaluate")
    relevant = _items_by_user(holdout)
    train_items = np.asarray(sorted(pc.unique(train.column("ITEM_ID")).to_pylist()), dtype=str)
    test_input = _items_by_user(train.filter(pc.is_in(train.column("USER_ID"), pa.array(relevant))))
    all_items = set(train_items.tolist()) | set(pc.unique(holdout.column("ITEM_ID")).to_pylist())
    all_items.update(catalog_items)
    return EvaluationData(
        relevant=relevant,
        ranking_candidates=_ranking_candidates(relevant, test_input, train_items, negatives, seed),
        num_dataset_items=len(all_items),
    )


def evaluate(
    recommender: Recommender,
    data: EvaluationData,
    ks: Sequence[int] = DEFAULT_KS,
    ranking: bool = True,
    on_user: UserProgress | None = None,
) -> EvaluationResult:
    """Ask `recommender` about every test user and compute Personalize's metrics.

    Each user gets one recommend call for max(ks, 25) items and, with `ranking`, one
    rerank call; errors propagate with the user id in the log.
    """
    depth = max(MRR_K, *ks)
    recommended: dict[str, list[str]] = {}
    ranked: dict[str, list[str]] = {}
    users = sorted(data.relevant)
    for done, user in enumerate(users, start=1):
        try:
            recommended[user] = recommender.recommend(user, depth)
            if ranking:
                ranked[user] = recommender.rerank(user, data.ranking_candidates[user])
        except Exception:
            logger.error("%s failed on test user %r", recommender.name, user)
            raise
        if on_user:
            on_user(done, len(users))
    metrics = recommendation_metrics(recommended, data.relevant, ks, data.num_dataset_items)
    if ranking:
        metrics.update(ranking_metrics(ranked, _ranked_relevant(data)))
    return EvaluationResult(recommender.name, metrics, {"test_users": len(users)})


def _items_by_user(table: pa.Table) -> dict[str, set[str]]:
    by_user: dict[str, set[str]] = {}
    users = table.column("USER_ID").to_pylist()
    items = table.column("ITEM_ID").to_pylist()
    for user, item in zip(users, items, strict=True):
        by_user.setdefault(user, set()).add(item)
    return by_user


def _ranking_candidates(
    relevant: dict[str, set[str]],
    test_input: dict[str, set[str]],
    train_items: np.ndarray,
    negatives: int,
    seed: int,
) -> dict[str, list[str]]:
    """Per test user: held-out items plus sampled never-seen items, shuffled (seeded)."""
    rng = np.random.default_rng(seed)
    max_positives = max(1, MAX_RERANK_ITEMS - negatives)
    candidates = {}
    for user in sorted(relevant):
        positives = sorted(relevant[user])[:max_positives]
        excluded = relevant[user] | test_input.get(user, set())
        pool = train_items[~np.isin(train_items, list(excluded))]
        sampled = rng.choice(pool, size=min(negatives, len(pool)), replace=False).tolist()
        mixed = positives + sampled
        candidates[user] = [mixed[i] for i in rng.permutation(len(mixed))]
    return candidates


def _ranked_relevant(data: EvaluationData) -> dict[str, set[str]]:
    """The relevant items that were actually sent for re-ranking (positives may be capped)."""
    return {
        user: data.relevant[user] & set(candidates)
        for user, candidates in data.ranking_candidates.items()
    }
