"""Item exploration on synthetic data: do new videos reach the users whose tastes match them?

The world is `recs synth`'s default (2000 users, 1000 videos, 100k events, seed 7), built and
prepared once under build/bench/exploration/ and reused while its `world.json` matches.
A seeded sample of videos (50) is held back as **new**: every interaction with them is
dropped, and the catalog gives them a CREATION_TIMESTAMP within the 7 days before the newest
interaction (every other video was created 56 to 146 days before it, so only these fall
within the default 30-day `exploration_item_age_cutoff`). The rest is split with
Personalize's protocol (evaluation/split.py: 10% test users, their newest 10% held out) and
trained with the default TrainParams (backends/local/train.fit_model, as `recs train`).

For each exploration weight (0, 0.3, 1; LocalBackend.from_model, default filter set) every
user the model knows is asked for 25 recommendations, and the figures are:

- NDCG@10 and HR@10 (a hit in the top 10) over the test users, from the top 10 of those
  answers: a relevant item is a held-out item the model knows (a video only the holdout has
  cannot be recommended), averaged over the test users with at least one such item. The new
  videos' interactions were dropped before the split, so they are never relevant here: what
  exploration costs in NDCG is the slots it takes from trained videos;
- coverage: distinct videos in anyone's answer / videos in the catalog (new ones included);
- new slots: share of the answer slots holding a new video; new reached: share of the new
  videos in at least one answer;
- targeting, from the world's hidden tastes: user u's taste *matches* new video v when u's
  taste for v's primary or secondary topic is above 1/k (k topics: above an average topic
  for u). Over every (new video, user) pair, the rate at which the video is in the user's
  answer among matching pairs and among the others, and their ratio (goal: at least 3 at
  weight 0.3);
- picks watched: the share of (user, new video) answer slots whose user really watched or
  clicked that video in the dropped log, beside the same share over every (user, new video)
  pair (what a random pick would score).

Usage:
  python bench/exploration.py [--quick] [--seed 7] [--json build/bench/exploration.json]
`--quick`: 500 users, 300 videos, 20k events, 20 new videos (well under a minute); `--seed`
changes the world (and which videos are new).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recs.backends.filtering import FilterSet
from recs.backends.local.artifacts import LocalModel
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model
from recs.evaluation.metrics import ndcg_at_k
from recs.evaluation.split import Split, split_interactions
from recs.pipeline.dataset import read_interactions, read_items
from recs.pipeline.output import write_csv
from recs.pipeline.prepare import PrepareOptions, prepare
from recs.pipeline.synth import CATALOG_FILE, DAY, WATCH_LOG_FILE, SynthConfig, World, build_world
from recs.pipeline.synth import synthesize as write_synthetic

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "bench" / "exploration"
DEFAULT_JSON = ROOT / "build" / "bench" / "exploration.json"
WEIGHTS = (0.0, 0.3, 1.0)
DEPTH = 25  # asked per user
K = 10  # NDCG@10, HR@10
NEW_WINDOW_DAYS = 7  # new videos are created within this many days before the newest event
SPLIT_SEED = 0
BATCH = 256  # users per recommend_many call

FULL = SynthConfig()  # `recs synth` defaults: 2000 users, 1000 items, 100k events, seed 7
FULL_NEW = 50
QUICK = SynthConfig(users=500, items=300, events=20_000)
QUICK_NEW = 20


@dataclass
class Setup:
    """A world with held-back new videos, its split and the model trained on the rest."""

    config: SynthConfig
    world: World
    new_items: list[str]  # the held-back videos, sorted
    dropped: pa.Table  # their interactions (the truth exploration never saw)
    split: Split
    model: LocalModel
    catalog: Path  # items.csv with the new videos' creation times moved
    catalog_items: int
    seconds: dict[str, float]


def ensure_dataset(config: SynthConfig, directory: Path) -> Path:
    """The prepared dataset of `config`'s world under `directory` (synth + prepare), built
    unless `directory/world.json` already records the same config."""
    dataset = directory / "dataset"
    stamp = directory / "world.json"
    wanted = asdict(config)
    try:
        if json.loads(stamp.read_text()) == wanted and (dataset / CATALOG_FILE).is_file():
            return dataset
    except (OSError, ValueError):
        pass
    raw = directory / "raw"
    write_synthetic(config, raw)
    prepare(
        PrepareOptions(watch_log=raw / WATCH_LOG_FILE, out_dir=dataset, items=raw / CATALOG_FILE)
    )
    stamp.write_text(json.dumps(wanted, indent=2) + "\n")
    return dataset


def hold_back(
    interactions: pa.Table, catalog: pa.Table, count: int, seed: int
) -> tuple[pa.Table, pa.Table, pa.Table, list[str]]:
    """(interactions without the new videos, their dropped interactions, the catalog with
    their creation times within NEW_WINDOW_DAYS before the newest interaction, new ids)."""
    rng = np.random.default_rng([seed, 11])
    ids = np.asarray(sorted(catalog.column("ITEM_ID").to_pylist()), dtype=object)
    new = sorted(rng.choice(ids, size=min(count, len(ids)), replace=False).tolist())
    is_new = pc.is_in(interactions.column("ITEM_ID"), pa.array(new, pa.string()))
    kept, dropped = interactions.filter(pc.invert(is_new)), interactions.filter(is_new)
    newest = int(pc.max(interactions.column("TIMESTAMP")).as_py())
    created = dict(
        zip(new, rng.integers(newest - NEW_WINDOW_DAYS * DAY, newest + 1, len(new)), strict=True)
    )
    stamps = [
        int(created[item]) if item in created else stamp
        for item, stamp in zip(
            catalog.column("ITEM_ID").to_pylist(),
            catalog.column("CREATION_TIMESTAMP").to_pylist(),
            strict=True,
        )
    ]
    at = catalog.column_names.index("CREATION_TIMESTAMP")
    moved = catalog.set_column(at, "CREATION_TIMESTAMP", pa.array(stamps, pa.int64()))
    return kept, dropped, moved, new


def build_setup(
    config: SynthConfig, new_count: int, directory: Path, params: TrainParams | None = None
) -> Setup:
    """Synthesize (or reuse) the world, hold back `new_count` videos, split and train."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    dataset = ensure_dataset(config, directory)
    seconds["dataset"] = time.perf_counter() - started
    catalog = read_items(dataset)
    assert catalog is not None
    kept, dropped, moved, new = hold_back(
        read_interactions(dataset), catalog, new_count, config.seed
    )
    catalog_path = directory / "catalog" / CATALOG_FILE
    catalog_path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(moved, catalog_path)
    split = split_interactions(kept, seed=SPLIT_SEED)
    started = time.perf_counter()
    model = fit_model(split.train, params or TrainParams(), moved, similar=False)
    seconds["train"] = time.perf_counter() - started
    return Setup(
        config=config,
        world=build_world(config),
        new_items=new,
        dropped=dropped,
        split=split,
        model=model,
        catalog=catalog_path,
        catalog_items=moved.num_rows,
        seconds=seconds,
    )


def answers(setup: Setup, weight: float) -> dict[str, list[str]]:
    """Every model user's top DEPTH at this exploration weight (default filter set)."""
    config = LocalBackendConfig(
        model_dir=Path("<in memory>"), mmap=False, catalog=setup.catalog, exploration_weight=weight
    )
    backend = LocalBackend.from_model(
        setup.model, config=config, filters=FilterSet.from_expressions({})
    )
    users = setup.model.user_ids.tolist()
    result: dict[str, list[str]] = {}
    for start in range(0, len(users), BATCH):
        batch = users[start : start + BATCH]
        for user, answer in zip(
            batch, backend.recommend_many([(user, DEPTH) for user in batch]), strict=True
        ):
            result[user] = answer.item_ids
    return result


def _index(name: str) -> int:
    """World index of a synthetic id (`u17`, `v3`: 1-based)."""
    return int(name[1:]) - 1


def match_matrix(world: World, users: Sequence[str], new_items: Sequence[str]) -> np.ndarray:
    """users x new videos: the user's taste for the video's primary or secondary topic is
    above 1/k (an average topic for that user)."""
    k = len(world.topic_names)
    taste = world.user_taste[[_index(u) for u in users]]
    videos = np.array([_index(v) for v in new_items])
    primary = taste[:, world.item_topic[videos]] > 1.0 / k
    second_topic = world.item_second_topic[videos]
    secondary = (taste[:, np.maximum(second_topic, 0)] > 1.0 / k) & (second_topic >= 0)
    return primary | secondary


def measure(setup: Setup, weight: float) -> dict[str, Any]:
    """The figures of one exploration weight (see the module)."""
    started = time.perf_counter()
    recommended = answers(setup, weight)
    seconds = time.perf_counter() - started
    users = list(recommended)
    new = setup.new_items
    new_set = set(new)
    column = {item: j for j, item in enumerate(new)}

    # Quality on the test users: only held-out items the model knows are relevant.
    known = set(setup.model.item_ids.tolist())
    relevant: dict[str, set[str]] = {}
    for user, item in zip(
        setup.split.holdout.column("USER_ID").to_pylist(),
        setup.split.holdout.column("ITEM_ID").to_pylist(),
        strict=True,
    ):
        if item in known:
            relevant.setdefault(user, set()).add(item)
    ndcg = [ndcg_at_k(recommended.get(u, []), items, K) for u, items in relevant.items()]
    hits = [bool(set(recommended.get(u, [])[:K]) & items) for u, items in relevant.items()]

    slots = sum(len(items) for items in recommended.values())
    shown = {item for items in recommended.values() for item in items}
    appear = np.zeros((len(users), len(new)), dtype=bool)
    for row, user in enumerate(users):
        for item in recommended[user]:
            if item in new_set:
                appear[row, column[item]] = True
    match = match_matrix(setup.world, users, new)
    matching, other = int(match.sum()), int((~match).sum())
    rate_match = float(appear[match].sum() / matching) if matching else 0.0
    rate_other = float(appear[~match].sum() / other) if other else 0.0

    truth = np.zeros_like(appear)
    row_of = {user: row for row, user in enumerate(users)}
    for user, item in zip(
        setup.dropped.column("USER_ID").to_pylist(),
        setup.dropped.column("ITEM_ID").to_pylist(),
        strict=True,
    ):
        if user in row_of:
            truth[row_of[user], column[item]] = True
    picks = int(appear.sum())
    return {
        "weight": weight,
        "users": len(users),
        "test_users_scored": len(relevant),
        f"ndcg@{K}": float(np.mean(ndcg)) if ndcg else 0.0,
        f"hr@{K}": float(np.mean(hits)) if hits else 0.0,
        "coverage": len(shown) / setup.catalog_items,
        "new_slot_share": picks / slots if slots else 0.0,
        "new_reached_share": float(appear.any(axis=0).mean()) if len(new) else 0.0,
        "match_rate": rate_match,
        "other_rate": rate_other,
        "match_ratio": rate_match / rate_other if rate_other else None,
        "matching_pairs": matching,
        "other_pairs": other,
        "picks": picks,
        "picks_watched": float(truth[appear].mean()) if picks else None,
        "pairs_watched": float(truth.mean()) if truth.size else None,
        "answer_seconds": round(seconds, 2),
    }


def run(
    config: SynthConfig,
    new_count: int,
    directory: Path,
    weights: Sequence[float] = WEIGHTS,
    params: TrainParams | None = None,
) -> dict[str, Any]:
    """Build the setup once and measure every weight: the report (JSON-ready)."""
    setup = build_setup(config, new_count, directory, params)
    rows = [measure(setup, weight) for weight in weights]
    return {
        "world": asdict(config),
        "new_videos": len(setup.new_items),
        "new_window_days": NEW_WINDOW_DAYS,
        "depth": DEPTH,
        "model": {
            "users": setup.model.num_users,
            "items": setup.model.num_items,
            "params": (params or TrainParams()).model_dump(mode="json"),
        },
        "split": {
            "train_interactions": setup.split.train.num_rows,
            "holdout_interactions": setup.split.holdout.num_rows,
            "dropped_interactions": setup.dropped.num_rows,
        },
        "catalog_items": setup.catalog_items,
        "topics": len(setup.world.topic_names),
        "seconds": {name: round(value, 2) for name, value in setup.seconds.items()},
        "weights": rows,
    }


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def print_report(report: dict[str, Any]) -> None:
    world = report["world"]
    print(
        f"synth --users {world['users']} --items {world['items']} --events {world['events']} "
        f"--seed {world['seed']}; {report['new_videos']} new videos "
        f"({report['split']['dropped_interactions']:,} interactions dropped, created within "
        f"{report['new_window_days']} days of the newest event); model "
        f"{report['model']['users']:,} users x {report['model']['items']:,} items; "
        f"top {report['depth']} per user"
    )
    header = (
        "| weight | NDCG@10 | HR@10 | coverage | new slots | new reached "
        "| matching rate | other rate | ratio | picks watched |"
    )
    print(header)
    print("|---" * 10 + "|")
    for row in report["weights"]:
        ratio = row["match_ratio"]
        print(
            f"| {row['weight']:g} | {row['ndcg@10']:.4f} | {row['hr@10']:.4f} | "
            f"{row['coverage']:.3f} | {row['new_slot_share']:.3f} | "
            f"{row['new_reached_share']:.2f} | {row['match_rate']:.4f} | "
            f"{row['other_rate']:.4f} | {'n/a' if ratio is None else f'{ratio:.2f}x'} | "
            f"{_fmt(row['picks_watched'], 3)} (any pair {_fmt(row['pairs_watched'], 3)}) |"
        )
    first = report["weights"][0]
    print(
        f"test users scored: {first['test_users_scored']:,} (with a held-out item the model "
        f"knows); (video, user) pairs: {first['matching_pairs']:,} matching, "
        f"{first['other_pairs']:,} other"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="500 users, 300 videos, 20k events, 20 new videos"
    )
    parser.add_argument(
        "--seed", type=int, default=FULL.seed, help="the world's seed (and the new videos')"
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write")
    args = parser.parse_args(argv)
    config, count = (QUICK, QUICK_NEW) if args.quick else (FULL, FULL_NEW)
    config = replace(config, seed=args.seed)
    directory = BUILD / f"{'quick' if args.quick else 'default'}-seed{args.seed}"
    started = time.perf_counter()
    report = run(config, count, directory)
    report["machine"] = {
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }
    report["seconds"]["total"] = round(time.perf_counter() - started, 2)
    print_report(report)
    times = ", ".join(f"{name} {value} s" for name, value in report["seconds"].items())
    print(
        f"{times}; answers {sum(r['answer_seconds'] for r in report['weights']):.2f} s; "
        f"load average {report['machine']['load_average']}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
