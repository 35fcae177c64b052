"""`recs evaluate split|run|movielens`: Personalize's offline evaluation for any backend."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from recs.cli.options import add_dataset_dir, add_model_dir, add_target

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `evaluate` command and its subcommands."""
    parser = subparsers.add_parser(
        "evaluate",
        help="offline evaluation with Amazon Personalize's protocol and metrics",
        description=(
            "Split a prepared dataset as Personalize does, then score any backend (or a "
            "running service) against popularity, default ALS and item-item cosine."
        ),
    )
    commands = parser.add_subparsers(dest="evaluate_command", metavar="SUBCOMMAND", required=True)
    _register_split(commands)
    _register_run(commands)
    _register_movielens(commands)


def _register_split(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "split",
        help="hold out the newest 10%% of 10%% of the users (seeded)",
        description=(
            "Personalize's split: 10%% of users (seeded) are test users; the newest 10%% of "
            "each test user's interactions (at least one) are held out. SPLIT/train is "
            "everything else (the test users' oldest 90%% is their input), written as a "
            "prepared dataset to train locally or upload; SPLIT/holdout is the held-out rows."
        ),
    )
    add_dataset_dir(parser)
    parser.add_argument(
        "--out", required=True, type=Path, metavar="SPLIT", help="split directory to write"
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed choosing the test users (0)"
    )
    parser.set_defaults(handler=run_split)


def _register_run(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run",
        help="score a backend or service on a split, with baselines and lift",
        description=(
            "Ask the system for each test user's recommendations and a re-ranking of their "
            "held-out items mixed with sampled unseen items; compute Personalize's metrics "
            "for it and for the baselines (trained on SPLIT/train) and print the lift."
        ),
    )
    parser.add_argument(
        "--split", required=True, type=Path, metavar="SPLIT", help="`recs evaluate split` output"
    )
    system = parser.add_mutually_exclusive_group(required=True)
    add_model_dir(
        system,
        required=False,
        help="a local model trained on SPLIT/train (`recs train --data SPLIT/train`)",
    )
    system.add_argument(
        "--config", type=Path, metavar="FILE", help="a serve config (TOML) selecting the backend"
    )
    add_target(system, default=None, help="a running recommendation service, asked over gRPC")
    parser.add_argument(
        "--backend",
        default="local",
        choices=["local"],
        help="backend of --model (local; use --config for personalize)",
    )
    parser.add_argument("--name", help="label of the system in the report (default: its kind)")
    parser.add_argument(
        "--k",
        default="5,10,25",
        metavar="K,K,...",
        type=_parse_ks,
        help="cut-offs for ndcg/precision/recall (default 5,10,25; mrr is always at 25)",
    )
    parser.add_argument(
        "--negatives",
        type=int,
        default=100,
        metavar="N",
        help="sampled unseen items mixed with the held-out items for re-ranking (100)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the negative sampling (0)"
    )
    parser.add_argument(
        "--no-baselines", action="store_true", help="score the system only (no lift columns)"
    )
    parser.add_argument(
        "--no-ranking", action="store_true", help="skip the personalized-ranking evaluation"
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the results as JSON")
    parser.add_argument("--plot", type=Path, metavar="OUT.png", help="write a bar chart (PNG)")
    parser.set_defaults(handler=run_run)


def _register_movielens(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "movielens",
        help="convert MovieLens ratings.csv (and movies.csv) to a prepared dataset",
        description=(
            "Every rating becomes one interaction at its timestamp; EVENT_TYPE loved (4.5-5), "
            "liked (3.5-4), neutral (2.5-3) or disliked (0.5-2); EVENT_VALUE = rating / 5."
        ),
    )
    parser.add_argument(
        "--ratings", required=True, type=Path, metavar="FILE", help="MovieLens ratings.csv"
    )
    parser.add_argument(
        "--movies", type=Path, metavar="FILE", help="MovieLens movies.csv (becomes items.csv)"
    )
    add_dataset_dir(parser, "--out", help="prepared dataset directory to write")
    parser.set_defaults(handler=run_movielens)


def _parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k {text!r}: expected integers like 5,10,25") from None
    if not ks or ks[0] < 1 or ks[-1] > 500:
        raise argparse.ArgumentTypeError(f"--k {text!r}: each K must be between 1 and 500")
    return ks


def run_split(args: argparse.Namespace) -> int:
    """Handler of `recs evaluate split`."""
    from recs.evaluation.split import (
        HOLDOUT_FRACTION,
        TEST_USER_FRACTION,
        split_counts,
        split_interactions,
        write_split,
    )
    from recs.pipeline.dataset import DatasetError, read_interactions

    try:
        split = split_interactions(read_interactions(args.data), seed=args.seed)
        write_split(
            split,
            args.out,
            args.data,
            {
                "source": str(args.data),
                "seed": args.seed,
                "test_user_fraction": TEST_USER_FRACTION,
                "holdout_fraction": HOLDOUT_FRACTION,
            },
        )
    except DatasetError as exc:
        logger.error("cannot split: %s", exc)
        return 1
    counts = split_counts(split)
    print(
        f"split {counts['users']:,} users (seed {args.seed}): {counts['test_users']:,} test users, "
        f"{counts['holdout_interactions']:,} held out, {counts['train_interactions']:,} "
        f"training interactions -> {args.out}"
    )
    return 0


def run_run(args: argparse.Namespace) -> int:
    """Handler of `recs evaluate run`."""
    from recs.backends.errors import BackendError
    from recs.pipeline.dataset import DatasetError

    started = time.perf_counter()
    try:
        results, context = _evaluate_all(args)
    except (DatasetError, BackendError, ValueError) as exc:
        logger.error("cannot evaluate: %s", exc)
        return 1
    from recs.evaluation import report

    report.print_table(results, title=f"offline evaluation of {results[0].name} on {args.split}")
    if args.json:
        report.write_json(args.json, results, context)
    if args.plot:
        seed = context["split"].get("seed")
        report.plot(args.plot, results, title=f"{results[0].name} on {args.split} (seed {seed})")
    ndcg = results[0].metrics.get("normalized_discounted_cumulative_gain_at_10")
    headline = f"ndcg@10 {ndcg:.4f}, " if ndcg is not None else ""
    print(
        f"evaluated {len(results)} recommender(s) on {context['test_users']:,} test users: "
        f"{results[0].name} {headline}in {time.perf_counter() - started:.1f}s"
    )
    return 0


def _evaluate_all(args: argparse.Namespace) -> tuple[list, dict[str, Any]]:
    from rich.progress import Progress

    from recs.evaluation.baselines import fit_baselines
    from recs.evaluation.run import evaluate, evaluation_data
    from recs.evaluation.split import TRAIN_DIR, read_holdout, read_manifest, read_train
    from recs.pipeline.dataset import read_items

    train, holdout = read_train(args.split), read_holdout(args.split)
    items = read_items(args.split / TRAIN_DIR)
    catalog = items.column("ITEM_ID").to_pylist() if items is not None else []
    data = evaluation_data(train, holdout, catalog, negatives=args.negatives, seed=args.seed)
    system, close = _system(args)
    try:
        recommenders = [system]
        if not args.no_baselines:
            logger.info("fitting baselines on %s/%s", args.split, TRAIN_DIR)
            recommenders += fit_baselines(train)
        results = []
        with Progress() as progress:
            for recommender in recommenders:
                task = progress.add_task(recommender.name, total=len(data.relevant))
                results.append(
                    evaluate(
                        recommender,
                        data,
                        args.k,
                        ranking=not args.no_ranking,
                        on_user=lambda done, _total, task=task: progress.update(
                            task, completed=done
                        ),
                    )
                )
    finally:
        close()
    context = {
        "split": read_manifest(args.split),
        "ks": args.k,
        "negatives": args.negatives,
        "test_users": len(data.relevant),
    }
    return results, context


def _system(args: argparse.Namespace) -> tuple[Any, Any]:
    """The recommender under evaluation and a function releasing it."""
    from recs.evaluation.run import BackendRecommender, ServiceRecommender

    if args.target:
        service = ServiceRecommender(args.target, name=args.name)
        return service, service.close
    from recs.config import build_config, create_configured_backend, load_config

    if args.config:
        config = load_config(args.config)
    else:
        config = build_config(
            {"backend": args.backend, args.backend: {"model_dir": str(args.model), "mmap": False}}
        )
    backend = create_configured_backend(config)
    name = args.name or config.backend
    backend.start()
    return BackendRecommender(backend, name), backend.close


def run_movielens(args: argparse.Namespace) -> int:
    """Handler of `recs evaluate movielens`."""
    from recs.evaluation.movielens import convert
    from recs.pipeline.dataset import DatasetError

    try:
        summary = convert(args.ratings, args.out, args.movies)
    except DatasetError as exc:
        logger.error("cannot convert: %s", exc)
        return 1
    catalog = f", {summary['catalog_items']:,} catalog items" if "catalog_items" in summary else ""
    print(
        f"converted {summary['interactions']:,} ratings of {summary['users']:,} users on "
        f"{summary['items']:,} movies{catalog} -> {args.out}"
    )
    return 0
