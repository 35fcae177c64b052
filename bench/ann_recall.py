"""Recall@10 of the approximate index (backends.local.ann) on a trained model's own factors.

bench_catalog_scale.py measures the index on isotropic random factors, the hard case; this
asks the same of real ALS factors: the benchmark model (see big_model.py) by default. For
500 sampled users it compares the index's top 10 (at several shares of cells scanned) with
exact scoring: |approximate & exact| / 10, averaged.

The index needs stored softmax normalisers to be switched on; they change scores, never the
order, so a model without them gets zeros here (recall compares item ids only).

Usage: python bench/ann_recall.py [--model DIR] [--fractions 0.02 0.05 0.1 0.2] [--users 500]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from big_model import ensure_model, machine_line

from recs.backends.local.artifacts import load_model
from recs.backends.local.backend import LocalBackend, LocalBackendConfig

AT = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model dir (default: the benchmark model)")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.02, 0.05, 0.1, 0.2])
    parser.add_argument("--users", type=int, default=500)
    args = parser.parse_args()
    model = load_model(args.model or ensure_model()[0])
    if model.user_log_normalizer is None:
        model.user_log_normalizer = np.zeros(model.num_users)
    print(machine_line())
    exact = LocalBackend.from_model(model)
    rng = np.random.default_rng(0)
    picked = rng.choice(model.num_users, min(args.users, model.num_users), replace=False)
    requests = [(str(model.user_ids[u]), AT) for u in picked]
    wanted = exact.recommend_many(requests)
    for fraction in args.fractions:
        config = LocalBackendConfig(
            model_dir=Path("<in memory>"), mmap=False, ann_min_items=0, ann_probe_fraction=fraction
        )
        started = time.perf_counter()
        approximate = LocalBackend.from_model(model, config=config)
        built = time.perf_counter() - started
        found = approximate.recommend_many(requests)
        hits = [
            len(set(got.item_ids) & set(want.item_ids)) / AT
            for got, want in zip(found, wanted, strict=True)
        ]
        print(
            f"{model.num_items:,} items, {fraction:.0%} of cells scanned: recall@{AT} "
            f"{np.mean(hits):.3f} over {len(requests)} users (index built in {built:.1f} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
