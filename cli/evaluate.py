"""`recs evaluate split|run|replay|movielens`: Personalize's offline evaluation for any backend,
and the replay of held-out events through PutEvents."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from recs.cli.options import (
    add_call_timeout,
    add_connection_security,
    add_dataset_dir,
    add_model_dir,
    add_target,
    connect,
    non_negative_float,
)

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
    _register_replay(commands)
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


def _register_replay(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "replay",
        help="replay held-out events through PutEvents: real-time against static",
        description=(
            "For each test user, walk their held-out events in time order: before each, ask "
            "the top K and score whether that event's item is in it (HR@K, NDCG@K), then send "
            "the event with PutEvents (real-time) or not (static). A share of the test users "
            "is removed from training (a model with the same parameters is trained without "
            "them) and their whole history is replayed as an anonymous session, against "
            "popularity excluding what they have seen. With --model the model is served "
            "in-process with a fresh event store. With --target a running service (either "
            "engine) is asked over gRPC: it must have a fresh event store (events an earlier "
            "replay sent are kept), each event is given --settle seconds to apply, and cold "
            "users are replayed under fresh session ids, though its model saw their training "
            "events (--model gives the clean figure)."
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
    add_target(
        system,
        default=None,
        help="a running recommendation service serving a model trained on SPLIT/train, "
        "with a fresh event store; asked over gRPC",
    )
    parser.add_argument("--k", type=int, default=10, metavar="K", help="cut-off (10)")
    parser.add_argument(
        "--max-users",
        type=int,
        metavar="N",
        help="replay at most N test users (the first N of a seeded shuffle; default all)",
    )
    parser.add_argument(
        "--cold-fraction",
        type=float,
        default=0.3,
        metavar="F",
        help="share of the test users removed from training and replayed as sessions (0.3)",
    )
    parser.add_argument(
        "--cold-steps",
        type=int,
        default=50,
        metavar="N",
        help="replay at most a cold user's first N events (50)",
    )
    parser.add_argument(
        "--min-events",
        type=int,
        default=5,
        metavar="N",
        help="cold users are scored on the steps after their first N events (5)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed choosing the cold users (0)"
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the figures as JSON")
    service = parser.add_argument_group("with --target")
    service.add_argument(
        "--settle",
        type=non_negative_float,
        default=0.2,
        metavar="SECONDS",
        help="wait after each event before the next question: nothing tells when the service "
        "has applied it (0.2: the local engine; Personalize needs more, e.g. 2)",
    )
    add_call_timeout(service)
    add_connection_security(service)
    parser.set_defaults(handler=run_replay)


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


def run_replay(args: argparse.Namespace) -> int:
    """Handler of `recs evaluate replay`."""
    import json

    import numpy as np
    from rich.progress import Progress

    from recs.backends.errors import BackendError
    from recs.client import RecsError
    from recs.evaluation.replay import choose_cold_users, replay
    from recs.evaluation.split import read_holdout, read_manifest, read_train
    from recs.pipeline.dataset import DatasetError

    if args.k < 1 or (args.max_users is not None and args.max_users < 1) or args.cold_steps < 2:
        logger.error("cannot replay: --k and --max-users must be >= 1, --cold-steps >= 2")
        return 1
    started = time.perf_counter()
    try:
        train, holdout = read_train(args.split), read_holdout(args.split)
        test_users = sorted(set(holdout.column("USER_ID").to_pylist()))
        if args.max_users is not None and args.max_users < len(test_users):
            rng = np.random.default_rng(args.seed)
            test_users = sorted(rng.choice(test_users, args.max_users, replace=False).tolist())
        cold_users = choose_cold_users(test_users, args.cold_fraction, args.seed)
        warm_users = [user for user in test_users if user not in set(cold_users)]
        warm, cold, close, source = _replay_systems(args, train, cold_users)
        try:
            with Progress() as progress:
                tasks = {
                    "warm": progress.add_task(
                        "test users (held-out events)", total=len(warm_users)
                    ),
                    "cold": progress.add_task("cold users (sessions)", total=len(cold_users)),
                }
                result = replay(
                    warm,
                    cold,
                    train,
                    holdout,
                    warm_users,
                    cold_users,
                    k=args.k,
                    cold_steps=args.cold_steps,
                    min_events=args.min_events,
                    on_user=lambda group, done, _total: progress.update(
                        tasks[group], completed=done
                    ),
                    cold_session=source.get("cold_session"),
                )
        finally:
            close()
    except RecsError as exc:
        logger.error("cannot replay: %s: %s: %s", args.target, exc.code.name, exc.message)
        return 1
    except (DatasetError, BackendError, ValueError, TimeoutError) as exc:
        logger.error("cannot replay: %s", exc)
        return 1
    _print_replay(result, args)
    if args.json:
        document = {"split": read_manifest(args.split)}
        document.update({key: value for key, value in source.items() if key != "cold_session"})
        document.update(result.to_json())
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    warm_gain = result.warm["realtime"]["hr"] - result.warm["static"]["hr"]
    summary = (
        f"replayed {result.details['warm_users']:,} test users and "
        f"{result.details['cold_users']:,} cold users: HR@{args.k} real-time "
        f"{result.warm['realtime']['hr']:.4f} vs static {result.warm['static']['hr']:.4f} "
        f"({warm_gain:+.4f})"
    )
    if result.cold:
        ratio = _ratio(result.cold["realtime"]["hr"], result.cold["popularity"]["hr"])
        summary += f"; cold real-time {ratio:.2f}x popularity after {args.min_events} events"
    print(f"{summary} in {time.perf_counter() - started:.1f}s")
    return 0


def _replay_systems(
    args: argparse.Namespace, train: Any, cold_users: list[str]
) -> tuple[Any, Any, Any, dict[str, Any]]:
    """The systems for warm and cold users, a function releasing them, and what the `--json`
    document says of them (with `cold_session`, the cold users' session ids, for `replay`)."""
    from recs.evaluation.replay import GrpcReplaySystem, cold_session_id, local_systems

    if args.model is not None:
        warm, cold, close = local_systems(args.model, train, cold_users)
        return warm, cold, close, {"model": str(args.model)}
    client = connect(args)
    try:
        info = client.model_info()  # a service that cannot be reached fails here, at once
    except BaseException:
        client.close()
        raise
    logger.warning(
        "replaying against %s (%s): it must have a fresh event store; the events this replay "
        "sends are kept, so another replay's static answers would include them",
        args.target,
        info.backend,
    )
    system = GrpcReplaySystem(client, settle=args.settle, name=f"{args.target} ({info.backend})")
    source = {
        "target": args.target,
        "backend": info.backend,
        "model_info": info.details,
        "settle": args.settle,
        "cold_session": cold_session_id(args.seed),
    }
    return system, system, system.close, source


def _ratio(value: float, base: float) -> float:
    return value / base if base else float("nan")


def _print_replay(result: Any, args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    k = args.k
    system = args.model if args.model is not None else args.target
    table = Table(title=f"replay on {args.split}, new items only ({system})")
    for column in ("users", "pass", "steps", f"HR@{k}", f"NDCG@{k}", f"HR@{k}/user",
                   f"NDCG@{k}/user", "HR vs static"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("users", "pass") else "right")
    rows = [("warm (held-out)", result.warm, ("static", "realtime"))]
    if result.cold:
        rows.append(
            (
                f"cold (after {args.min_events})",
                result.cold,
                ("static", "popularity", "realtime"),
            )
        )
    for label, figures, passes in rows:
        for name in passes:
            scores = figures[name]
            table.add_row(
                label,
                {"realtime": "real-time", "static": "static", "popularity": "popularity"}[name],
                f"{scores['steps']:,}",
                f"{scores['hr']:.4f}",
                f"{scores['ndcg']:.4f}",
                f"{scores['hr_user']:.4f}",
                f"{scores['ndcg_user']:.4f}",
                f"{_ratio(scores['hr'], figures['static']['hr']):.2f}x",
            )
            label = ""
    Console().print(table)


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
