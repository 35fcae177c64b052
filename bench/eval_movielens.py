"""The headline offline result: the tuned local engine against implicit's defaults on MovieLens.

For each split seed it runs the same commands a user would, then prints one markdown table:

    recs evaluate movielens --ratings ratings.csv --movies movies.csv --out WORK/data
    recs evaluate split --data WORK/data --out WORK/seed-S/split --seed S
    recs train --data WORK/seed-S/split/train --out WORK/seed-S/tuned --tune --time-budget B
    recs train --data WORK/seed-S/split/train --out WORK/seed-S/defaults
    recs evaluate run --split WORK/seed-S/split --model WORK/seed-S/tuned --name tuned \\
        --json WORK/seed-S/tuned.json --plot WORK/seed-S/tuned.png
    recs evaluate run --split WORK/seed-S/split --model WORK/seed-S/defaults --name defaults \\
        --no-baselines --no-ranking --json WORK/seed-S/defaults.json

The tuner sees only SPLIT/train and draws its validation users from the training users
(the split's test users are excluded); the test holdout is read by `evaluate run` only.
Exit status 0 when the tuned engine's ndcg@10 beats both implicit baselines on every seed.

Usage: python bench/eval_movielens.py [--ratings FILE] [--seeds 0,1,2] [--time-budget 420]
(default data: ../shared/datasets/movielens-latest-small beside the checkout). Takes
about (time budget + 1 minute) per seed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "movielens-latest-small"
NDCG = "normalized_discounted_cumulative_gain_at_10"
COLUMNS = ("tuned", "defaults", "als_default", "item_item_cosine", "popularity")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", type=Path, default=DEFAULT_DATA / "ratings.csv")
    parser.add_argument("--movies", type=Path, default=DEFAULT_DATA / "movies.csv")
    parser.add_argument("--seeds", default="0,1,2", help="split seeds (comma-separated)")
    parser.add_argument("--time-budget", type=float, default=420.0, help="tuning seconds/seed")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "eval_movielens")
    args = parser.parse_args()
    if not args.ratings.is_file():
        print(f"{args.ratings}: not found (give --ratings)", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    data = args.work / "data"
    recs(
        "evaluate", "movielens", "--ratings", args.ratings, "--movies", args.movies,
        "--out", data,
    )  # fmt: skip
    rows = {}
    for seed in seeds:
        rows[seed] = run_seed(seed, data, args.work / f"seed-{seed}", args.time_budget)
    print()
    print(markdown_table(rows, args.time_budget))
    wins = all(
        r["tuned"] > r["als_default"] and r["tuned"] > r["item_item_cosine"] for r in rows.values()
    )
    print(f"\ntuned beats default ALS and item-item cosine on ndcg@10 on every seed: {wins}")
    return 0 if wins else 1


def run_seed(seed: int, data: Path, work: Path, time_budget: float) -> dict[str, float]:
    """Split, tune+train, train defaults, evaluate both; ndcg@10 per recommender."""
    split = work / "split"
    recs("evaluate", "split", "--data", data, "--out", split, "--seed", seed)
    started = time.perf_counter()
    recs(
        "train", "--data", split / "train", "--out", work / "tuned", "--tune",
        "--time-budget", time_budget, "--no-progress",
    )  # fmt: skip
    tuning_seconds = time.perf_counter() - started
    recs("train", "--data", split / "train", "--out", work / "defaults", "--no-progress")
    recs(
        "evaluate", "run", "--split", split, "--model", work / "tuned", "--name", "tuned",
        "--json", work / "tuned.json", "--plot", work / "tuned.png",
    )  # fmt: skip
    recs(
        "evaluate", "run", "--split", split, "--model", work / "defaults", "--name", "defaults",
        "--no-baselines", "--no-ranking", "--json", work / "defaults.json",
    )  # fmt: skip
    results = json.loads((work / "tuned.json").read_text())["results"]
    results.update(json.loads((work / "defaults.json").read_text())["results"])
    row = {name: results[name]["metrics"][NDCG] for name in COLUMNS}
    row["tuning_seconds"] = tuning_seconds
    row["test_users"] = results["tuned"]["test_users"]
    return row


def markdown_table(rows: dict[int, dict[str, float]], time_budget: float) -> str:
    """ndcg@10 per seed and recommender, the mean, and the tuned engine's lifts."""
    header = (
        "| split seed | test users | tuned local | local defaults | implicit ALS defaults "
        "| item-item cosine | popularity | lift vs ALS | lift vs cosine |"
    )
    lines = [header, "|" + "---|" * 9]
    for seed, row in rows.items():
        lines.append(_line(str(seed), row, str(row["test_users"])))
    mean = {name: sum(r[name] for r in rows.values()) / len(rows) for name in COLUMNS}
    lines.append(_line("**mean**", mean, ""))
    lines.append(
        f"\nnormalized_discounted_cumulative_gain_at_10 (Personalize's definition); tuning "
        f"budget {time_budget:.0f}s per seed."
    )
    return "\n".join(lines)


def _line(label: str, row: dict[str, float], users: str) -> str:
    cells = [f"{row[name]:.4f}" for name in COLUMNS]
    lifts = [f"{row['tuned'] / row[b] - 1:+.1%}" for b in ("als_default", "item_item_cosine")]
    return f"| {label} | {users} | " + " | ".join(cells + lifts) + " |"


def recs(*arguments: object) -> None:
    """Run one `recs` command (echoed), failing loudly."""
    command = [str(ROOT / ".venv" / "bin" / "recs"), *map(str, arguments)]
    print("$ recs " + " ".join(map(str, arguments)), flush=True)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    subprocess.run(command, check=True, env=env, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
