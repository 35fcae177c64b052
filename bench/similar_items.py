"""Which similar-items method emulates SIMS best? A next-item measurement on held-out data.

For each test user, the query is the last item they watched in training and the answer
is the item they watched next (held out). Compares the item-item co-occurrence
recommenders (cosine, BM25; each user counted once, or weighted by confidence) with ALS
item-factor cosine, and popularity as a baseline. The default `similar_method` in
backends/local/params.py comes from here.

    python bench/similar_items.py [DATASET_DIR_OR_movielens ...]
"""

from __future__ import annotations

import sys
import time

from local_holdout import describe, evaluate, leave_last_out, load_dataset, table_row

from recs.backends.local.backend import LocalBackend
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model

# (label, TrainParams overrides); ALS runs 1 iteration unless its factors are measured.
METHODS: list[tuple[str, dict[str, object]]] = [
    ("cosine, co-occurrence (each user once)", {"similar_method": "cosine"}),
    ("bm25, co-occurrence (each user once)", {"similar_method": "bm25"}),
    ("cosine, confidence-weighted", {"similar_method": "cosine", "similar_use_confidence": True}),
    ("bm25, confidence-weighted", {"similar_method": "bm25", "similar_use_confidence": True}),
    ("als item-factor cosine", {"similar_method": "als", "iterations": 15}),
]


def measure(dataset: str) -> None:
    """Print one table row per method, then the popularity baseline."""
    holdout = leave_last_out(load_dataset(dataset))
    print(describe(dataset, holdout))
    print("| method | HR@10 | NDCG@10 | MRR@25 | fit s |")
    print("|---|---|---|---|---|")
    backend = None
    for label, overrides in METHODS:
        started = time.perf_counter()
        params = TrainParams.model_validate({"iterations": 1, **overrides})
        backend = LocalBackend.from_model(fit_model(holdout.train, params))
        seconds = time.perf_counter() - started
        metrics = evaluate(
            lambda item, b=backend: b.similar_items(item, 25),
            holdout.last_train_item,
            holdout.held_out,
        )
        print(table_row(label, metrics, f"{seconds:.1f}"))
    assert backend is not None
    popular = evaluate(lambda _q: backend.popular_items(25), holdout.test_users, holdout.held_out)
    print(table_row("popularity (baseline)", popular, "-"))


if __name__ == "__main__":
    for name in sys.argv[1:] or ["movielens"]:
        measure(name)
