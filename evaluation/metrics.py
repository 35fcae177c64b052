"""Amazon Personalize's offline metrics, computed exactly as documented (reference section 4).

A *relevant* item is one of the user's held-out items (their newest 10%); rank 1 is the
top of the list; every per-user figure is averaged over the test users (a user with no
hit counts as 0).

- precision_at_K: relevant items in the top K, divided by K (3 hits in the top 10 = 0.30).
- recall_at_K (not a Personalize metric): relevant items in the top K divided by the
  number of distinct relevant items.
- mean_reciprocal_rank_at_25: 1 / the rank of the highest-ranked relevant item in the top
  25, or 0 (users hitting at {4,10}, {2,4,12}, {6}: (1/4 + 1/2 + 1/6) / 3 = 0.3056).
- normalized_discounted_cumulative_gain_at_K: DCG = sum over hits at rank r <= K of
  1/log(1 + r), divided by the ideal DCG. **The ideal counts only the hits inside the
  top K**: the same number of hits placed at ranks 1, 2, ... (hits at 2 and 5 with K=5:
  (1/log 3 + 1/log 6) / (1/log 2 + 1/log 3) = 0.6241). This is Personalize's documented
  example and the AWS sample's `ndcg_at_k`; it rewards ranking hits early, not finding
  every held-out item (that is recall's job). The log base cancels out.
- coverage: distinct items recommended to any test user (the top 25, or the largest K if
  larger) divided by the distinct items of the dataset (its interactions and catalog).

Personalized ranking (GetPersonalizedRanking) is scored on lists that contain every
relevant item, so there:
- ranking_ndcg: DCG of the whole ranked list over the ideal with all relevant items
  first (here the two ideals coincide);
- ranking_auc: the fraction of (relevant, non-relevant) pairs in which the relevant item
  is ranked higher.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np

MRR_K = 25
DEFAULT_KS = (5, 10, 25)


def hit_vector(
    ranked: Sequence[str], relevant: Collection[str], k: int | None = None
) -> np.ndarray:
    """1.0 where the item at that rank (top `k`) is relevant, else 0.0; repeats count once."""
    top = ranked if k is None else ranked[:k]
    seen: set[str] = set()
    hits = np.zeros(len(top))
    for position, item in enumerate(top):
        if item in relevant and item not in seen:
            hits[position] = 1.0
        seen.add(item)
    return hits


def precision_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Relevant items in the top `k`, divided by `k`."""
    return float(hit_vector(ranked, relevant, k).sum() / k)


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Relevant items in the top `k`, divided by the number of relevant items (0 if none)."""
    if not relevant:
        return 0.0
    return float(hit_vector(ranked, relevant, k).sum() / len(set(relevant)))


def reciprocal_rank_at_k(ranked: Sequence[str], relevant: Collection[str], k: int = MRR_K) -> float:
    """1 / rank of the highest-ranked relevant item within the top `k`, or 0."""
    hits = np.flatnonzero(hit_vector(ranked, relevant, k))
    return float(1.0 / (hits[0] + 1)) if len(hits) else 0.0


def dcg(hits: np.ndarray) -> float:
    """Sum of 1/log2(1 + rank) over the ranks (1-based) holding a hit."""
    ranks = np.arange(1, len(hits) + 1)
    return float(np.sum(hits / np.log2(1 + ranks)))


def ndcg_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Personalize's NDCG@k: the ideal places the same number of hits at ranks 1..n."""
    hits = hit_vector(ranked, relevant, k)
    num_hits = int(hits.sum())
    if num_hits == 0:
        return 0.0
    return dcg(hits) / dcg(np.ones(num_hits))


def auc(ranked: Sequence[str], relevant: Collection[str]) -> float:
    """Fraction of (relevant, non-relevant) pairs ordered correctly; NaN without both kinds."""
    is_relevant = hit_vector(ranked, relevant).astype(bool)
    num_positive = int(is_relevant.sum())
    num_negative = len(ranked) - num_positive
    if num_positive == 0 or num_negative == 0:
        return float("nan")
    # Each relevant item beats the non-relevant items ranked below it.
    negatives_below = num_negative - np.cumsum(~is_relevant)
    return float(negatives_below[is_relevant].sum() / (num_positive * num_negative))


def recommendation_metrics(
    recommended: Mapping[str, Sequence[str]],
    relevant: Mapping[str, Collection[str]],
    ks: Iterable[int] = DEFAULT_KS,
    num_dataset_items: int | None = None,
) -> dict[str, float]:
    """Personalize's metrics over test users (the keys of `relevant`), by their API names.

    `recommended[user]` is the user's ranked list (a user missing from it counts as an
    empty list); coverage is included when `num_dataset_items` is given.
    """
    ks = sorted(set(ks))
    users = list(relevant)
    if not users:
        raise ValueError("no test users to evaluate")
    sums: dict[str, float] = {}

    def add(name: str, value: float) -> None:
        sums[name] = sums.get(name, 0.0) + value

    for user in users:
        ranked, wanted = list(recommended.get(user, ())), set(relevant[user])
        add(f"mean_reciprocal_rank_at_{MRR_K}", reciprocal_rank_at_k(ranked, wanted, MRR_K))
        for k in ks:
            add(f"normalized_discounted_cumulative_gain_at_{k}", ndcg_at_k(ranked, wanted, k))
            add(f"precision_at_{k}", precision_at_k(ranked, wanted, k))
            add(f"recall_at_{k}", recall_at_k(ranked, wanted, k))
    metrics = {name: total / len(users) for name, total in sums.items()}
    if num_dataset_items:
        depth = max(MRR_K, *ks)
        shown = {item for user in users for item in list(recommended.get(user, ()))[:depth]}
        metrics["coverage"] = len(shown) / num_dataset_items
    return dict(sorted(metrics.items()))


def ranking_metrics(
    ranked: Mapping[str, Sequence[str]], relevant: Mapping[str, Collection[str]]
) -> dict[str, float]:
    """ranking_ndcg and ranking_auc averaged over the users of `relevant` (see module doc)."""
    ndcgs, aucs = [], []
    for user, wanted in relevant.items():
        order = list(ranked.get(user, ()))
        ndcgs.append(ndcg_at_k(order, set(wanted), len(order)) if order else 0.0)
        aucs.append(auc(order, set(wanted)))
    if not ndcgs:
        raise ValueError("no test users to evaluate")
    valid_aucs = [a for a in aucs if not np.isnan(a)]
    return {
        "ranking_auc": float(np.mean(valid_aucs)) if valid_aucs else float("nan"),
        "ranking_ndcg": float(np.mean(ndcgs)),
    }
