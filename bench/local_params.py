"""Measure the local engine's confidence settings on held-out next items (recommend).

Fits ALS with the defaults and with one change at a time (alpha, regularization, event
value, event weights, factors) and prints HR@10, NDCG@10 and MRR@25 of `recommend(user)`
against each test user's held-out latest item, with popularity as the baseline. The
defaults in backends/local/params.py come from here.

    python bench/local_params.py [DATASET_DIR_OR_movielens ...]
"""

from __future__ import annotations

import sys

from local_holdout import describe, evaluate, leave_last_out, load_dataset, table_row

from recs.backends.local.backend import LocalBackend
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model

SETTINGS: list[dict[str, object]] = [
    {},
    {"use_event_value": False},
    {"alpha": 1.0},
    {"alpha": 5.0},
    {"alpha": 10.0},
    {"regularization": 0.05},
    {"regularization": 0.01},
    {"event_weights": {"watched": 1.0, "clicked": 1.0}},
    {"event_weights": {"watched": 4.0, "clicked": 1.0}},
    {"factors": 32},
    {"factors": 128},
]


def measure(dataset: str) -> None:
    """Print one table row per setting, then the popularity baseline."""
    holdout = leave_last_out(load_dataset(dataset))
    print(describe(dataset, holdout))
    print("| setting | HR@10 | NDCG@10 | MRR@25 |")
    print("|---|---|---|---|")
    backend = None
    for setting in SETTINGS:
        params = TrainParams.model_validate({"similar_method": "als", **setting})
        backend = LocalBackend.from_model(fit_model(holdout.train, params))
        metrics = evaluate(
            lambda user, b=backend: b.recommend(user, 25), holdout.test_users, holdout.held_out
        )
        print(table_row(", ".join(f"{k}={v}" for k, v in setting.items()) or "defaults", metrics))
    assert backend is not None
    popular = evaluate(lambda _u: backend.popular_items(25), holdout.test_users, holdout.held_out)
    print(table_row("popularity (baseline)", popular))


if __name__ == "__main__":
    for name in sys.argv[1:] or ["movielens"]:
        measure(name)
