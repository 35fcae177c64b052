"""Does `recs synth` produce learnable data? ALS versus popularity on a held-out split.

synth -> prepare -> for every user with at least 5 interactions, hold out the latest 20%
of their interactions (at least one) -> train implicit ALS and a popularity count on the
rest -> recommend 10 unseen videos per test user -> precision@10 and NDCG@10 against the
held-out videos the user had not seen in training.

Usage: python bench/synth_quality.py [--users 2000 --items 1000 --events 100000 --seed 7]
Prints one table; the data has learnable structure when ALS is clearly above popularity.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import scipy.sparse as sp

K = 10
HOLDOUT_SHARE = 0.2
MIN_INTERACTIONS = 5
WATCHED_WEIGHT = 4.0  # confidence of a `watched` event; `clicked` counts 1


def recs(*args: str) -> None:
    """Run the `recs` command of this environment."""
    subprocess.run(
        [sys.executable, "-m", "recs.cli.main", *args, "--no-progress"],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def split(user: np.ndarray, time_: np.ndarray) -> np.ndarray:
    """Mask of held-out rows: each test user's latest HOLDOUT_SHARE of interactions."""
    order = np.lexsort((time_, user))
    counts = np.bincount(user)
    rank = np.empty(len(user), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank[order] = np.arange(len(user)) - np.repeat(starts, counts)
    n = counts[user]
    held = np.maximum(1, np.floor(n * HOLDOUT_SHARE)).astype(np.int64)
    return (n >= MIN_INTERACTIONS) & (rank >= n - held)


def metrics(ranked: np.ndarray, relevant: list[set[int]]) -> tuple[float, float]:
    """Mean precision@K and NDCG@K over users with at least one relevant item."""
    discounts = 1.0 / np.log2(np.arange(2, K + 2))
    precision, ndcg = [], []
    for row, truth in zip(ranked, relevant, strict=True):
        if not truth:
            continue
        hits = np.array([item in truth for item in row[:K]], dtype=float)
        precision.append(hits.sum() / K)
        ideal = discounts[: min(len(truth), K)].sum()
        ndcg.append((hits * discounts).sum() / ideal)
    return float(np.mean(precision)), float(np.mean(ndcg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from implicit.als import AlternatingLeastSquares

    from recs.pipeline.dataset import read_interactions

    with tempfile.TemporaryDirectory(prefix="synth-quality-") as tmp:
        raw, data = Path(tmp, "raw"), Path(tmp, "dataset")
        recs(
            "synth",
            "--out",
            str(raw),
            "--users",
            str(args.users),
            "--items",
            str(args.items),
            "--events",
            str(args.events),
            "--seed",
            str(args.seed),
        )
        recs("prepare", "--watch-log", str(raw / "watch_log.csv"), "--out", str(data))
        table = read_interactions(data)

    users, user = np.unique(
        table.column("USER_ID").to_numpy(zero_copy_only=False), return_inverse=True
    )
    items, item = np.unique(
        table.column("ITEM_ID").to_numpy(zero_copy_only=False), return_inverse=True
    )
    time_ = table.column("TIMESTAMP").to_numpy()
    watched = table.column("EVENT_TYPE").to_numpy(zero_copy_only=False) == "watched"
    test = split(user, time_)
    train = ~test

    weight = np.where(watched[train], WATCHED_WEIGHT, 1.0)
    user_items = sp.csr_matrix(
        (weight, (user[train], item[train])), shape=(len(users), len(items))
    ).tocsr()
    user_items.sum_duplicates()
    test_users = np.unique(user[test])
    relevant: list[set[int]] = []
    for u in test_users:
        seen = set(user_items[u].indices)
        relevant.append({i for i in item[test & (user == u)] if i not in seen})

    started = time.perf_counter()
    model = AlternatingLeastSquares(
        factors=16, regularization=0.05, iterations=15, random_state=args.seed
    )
    model.fit(user_items, show_progress=False)
    als_ranked, _ = model.recommend(
        test_users, user_items[test_users], N=K, filter_already_liked_items=True
    )
    als_seconds = time.perf_counter() - started

    popularity = np.bincount(item[train], minlength=len(items)).astype(float)
    popular_first = np.argsort(-popularity, kind="stable")
    pop_ranked = np.array(
        [
            [
                i
                for i in popular_first[: K + len(user_items[u].indices)]
                if i not in set(user_items[u].indices)
            ][:K]
            for u in test_users
        ]
    )

    rows = [
        ("popularity", *metrics(pop_ranked, relevant)),
        ("implicit ALS", *metrics(als_ranked, relevant)),
    ]
    print(
        f"synth --users {args.users} --items {args.items} --events {args.events} "
        f"--seed {args.seed}: {len(table):,} interactions, {len(test_users):,} test users, "
        f"{int(test.sum()):,} held-out rows (latest {HOLDOUT_SHARE:.0%} per user)"
    )
    print(f"{'model':<14}{'precision@10':>14}{'NDCG@10':>10}")
    for name, precision, ndcg in rows:
        print(f"{name:<14}{precision:>14.4f}{ndcg:>10.4f}")
    lift = rows[1][2] / rows[0][2] if rows[0][2] else float("inf")
    print(f"ALS / popularity NDCG@10: {lift:.2f}x (ALS fit + recommend {als_seconds:.1f} s)")


if __name__ == "__main__":
    main()
