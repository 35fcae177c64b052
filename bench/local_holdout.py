"""Leave-last-out split and next-item metrics for measuring the local engine's choices.

Protocol: for every user with at least `min_items` distinct items, the item of their most
recent interaction (all its events) is held out; the model trains on everything else.
Each test user then has one right answer, and we ask:

- recommendations: does `recommend(user)` rank the held-out item high?
- similar items (SIMS proxy): does `similar_items(last item the user watched in
  training)` rank the held-out item, i.e. the one they watched next, high?

Metrics over test users: hit rate at 10 (HR@10), NDCG at 10 (one relevant item, so
1 / log2(rank + 1)), and MRR at 25. Used by bench/similar_items.py and
bench/local_params.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recs.backends.base import Recommendations
from recs.pipeline.dataset import read_interactions

# The shared real dataset beside the checkout (read-only; not needed by the tests).
MOVIELENS_RATINGS = (
    Path(__file__).resolve().parents[2] / "shared/datasets/movielens-latest-small/ratings.csv"
)
METRICS = ("HR@10", "NDCG@10", "MRR@25")


@dataclass
class Holdout:
    """Training rows, and per test user the held-out item and their last training item."""

    train: pa.Table
    test_users: list[str]
    held_out: list[str]
    last_train_item: list[str]


def leave_last_out(interactions: pa.Table, min_items: int = 3) -> Holdout:
    """Hold out each eligible user's most recent item (every event of that pair)."""
    users = interactions["USER_ID"].to_numpy(zero_copy_only=False)
    items = interactions["ITEM_ID"].to_numpy(zero_copy_only=False)
    times = interactions["TIMESTAMP"].to_numpy()
    order = np.lexsort((np.arange(len(users)), times, users))  # per user, oldest first
    held_rows = np.zeros(len(users), dtype=bool)
    test_users, held_out, last_train = [], [], []
    boundaries = np.flatnonzero(users[order][1:] != users[order][:-1]) + 1
    for rows in np.split(order, boundaries):
        user_items = items[rows]
        if len(set(user_items)) < min_items:
            continue
        target = user_items[-1]
        before = user_items[user_items != target]
        test_users.append(users[rows[0]])
        held_out.append(target)
        last_train.append(before[-1])
        held_rows[rows[user_items == target]] = True
    train = interactions.filter(pa.array(~held_rows))
    known = set(pc.unique(train["ITEM_ID"]).to_pylist())
    keep = [i for i, item in enumerate(held_out) if item in known]
    return Holdout(
        train=train,
        test_users=[test_users[i] for i in keep],
        held_out=[held_out[i] for i in keep],
        last_train_item=[last_train[i] for i in keep],
    )


def next_item_metrics(
    answers: Sequence[Recommendations], targets: Sequence[str]
) -> dict[str, float]:
    """HR@10, NDCG@10 and MRR@25 of one relevant item per answer."""
    hr = ndcg = mrr = 0.0
    for answer, target in zip(answers, targets, strict=True):
        ids = [item.item_id for item in answer.items[:25]]
        if target in ids:
            rank = ids.index(target) + 1
            mrr += 1.0 / rank
            if rank <= 10:
                hr += 1.0
                ndcg += 1.0 / np.log2(rank + 1)
    n = max(len(targets), 1)
    return {"HR@10": hr / n, "NDCG@10": ndcg / n, "MRR@25": mrr / n}


def evaluate(
    ask: Callable[[str], Recommendations], queries: Sequence[str], targets: Sequence[str]
) -> dict[str, float]:
    """Metrics of `ask(query)` against the held-out targets."""
    return next_item_metrics([ask(q) for q in queries], targets)


def load_dataset(name: str) -> pa.Table:
    """A prepared dataset directory, or `movielens` (the shared MovieLens small ratings).

    MovieLens ratings become events: rating >= 4 is `watched`, lower is `clicked`,
    EVENT_VALUE = rating / 5.
    """
    if name != "movielens":
        return read_interactions(name)
    path = (
        Path(__file__).resolve().parents[2] / "shared/datasets/movielens-latest-small/ratings.csv"
    )
    ratings = pacsv.read_csv(path)
    rating = pc.cast(ratings["rating"], pa.float64())
    return pa.table(
        {
            "USER_ID": pc.cast(ratings["userId"], pa.string()),
            "ITEM_ID": pc.cast(ratings["movieId"], pa.string()),
            "TIMESTAMP": pc.cast(ratings["timestamp"], pa.int64()),
            "EVENT_TYPE": pc.if_else(pc.greater_equal(rating, 4.0), "watched", "clicked"),
            "EVENT_VALUE": pc.divide(rating, 5.0),
        }
    )


def describe(dataset: str, holdout: Holdout) -> str:
    """A heading line for a results table."""
    return (
        f"\n{dataset}: {len(holdout.test_users)} test users, {holdout.train.num_rows} training rows"
    )


def table_row(label: str, metrics: dict[str, float], *extra: str) -> str:
    """One markdown table row: label, the metrics, then any extra cells."""
    cells = [label, *(f"{metrics[name]:.4f}" for name in METRICS), *extra]
    return "| " + " | ".join(cells) + " |"
