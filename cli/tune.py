"""`recs tune`: search the local engine's parameters and write them for `recs train --params`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from recs.cli.options import add_dataset_dir

if TYPE_CHECKING:
    from recs.backends.local.params import TrainParams
    from recs.evaluation.tune import TuneResult

logger = logging.getLogger(__name__)

DEFAULT_TRIALS = 60


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `tune` subcommand."""
    parser = subparsers.add_parser(
        "tune",
        help="search the local engine's parameters on a validation split of training users",
        description=(
            "Carve validation users out of the training data (their newest 10%% held out), "
            "search ALS factors, regularization, alpha, iterations, event-type weights, "
            "EVENT_VALUE use, recency and the similar-items neighbourhood with optuna's TPE, "
            "confirm the best on a second validation split, and write the winner for "
            "`recs train --params FILE`. Never reads a split's holdout."
        ),
    )
    add_dataset_dir(
        parser,
        help="a prepared dataset, or a split (SPLIT or SPLIT/train: its test users are then "
        "never drawn for validation)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("tuned_params.json"),
        metavar="FILE",
        help="where to write the best parameters, JSON (.json) or TOML (default tuned_params.json)",
    )
    parser.add_argument(
        "--params",
        type=Path,
        metavar="FILE",
        help="starting point (JSON or TOML, as `recs train --params`): the first trial, and "
        "the values of everything not searched (similar_neighbours, random_state, ...)",
    )
    add_tuning_options(parser)
    parser.set_defaults(handler=run_tune)


def add_tuning_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by `recs tune` and `recs train --tune`."""
    parser.add_argument(
        "--trials",
        type=int,
        default=None,
        metavar="N",
        help=f"search trials (default {DEFAULT_TRIALS} without --time-budget, else unbounded)",
    )
    parser.add_argument(
        "--time-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wall-clock budget for the whole tuning (the search gets 75%% of it)",
    )
    parser.add_argument(
        "--tune-seed",
        type=int,
        default=0,
        metavar="S",
        help="seed of the validation splits and the sampler (0)",
    )
    parser.add_argument(
        "--metric",
        default="normalized_discounted_cumulative_gain_at_10",
        help="objective: a `recs evaluate` metric name (default "
        "normalized_discounted_cumulative_gain_at_10)",
    )


def run_tune(args: argparse.Namespace) -> int:
    """Handler of `recs tune`."""
    from recs.backends.local.params import ParamsError, TrainParams
    from recs.evaluation.tune import write_params
    from recs.pipeline.dataset import DatasetError

    try:
        base = TrainParams.from_file(args.params) if args.params else TrainParams()
        result = tune_from_args(args, args.data, base)
    except (DatasetError, ParamsError, ValueError) as exc:
        logger.error("cannot tune: %s", exc)
        return 1
    path = write_params(result.best, args.out)
    print(summary_line(result, path))
    return 0


def tuned_params(args: argparse.Namespace, base: TrainParams) -> TrainParams | None:
    """`recs train --tune`: tune on `args.data` from `base`; None (logged) on bad input."""
    from recs.pipeline.dataset import DatasetError

    try:
        result = tune_from_args(args, args.data, base)
    except (DatasetError, ValueError) as exc:
        logger.error("cannot tune: %s", exc)
        return None
    print(summary_line(result))
    return result.best


def tune_from_args(args: argparse.Namespace, data: Path, base: TrainParams) -> TuneResult:
    """Run the tuner as the options say, with progress, and print its final tables."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from recs.evaluation.split import read_training_side
    from recs.evaluation.tune import tune

    interactions, test_users = read_training_side(data)
    if test_users:
        logger.info("%d test users of the split are never drawn for validation", len(test_users))
    trials = args.trials
    if trials is None and args.time_budget is None:
        trials = DEFAULT_TRIALS
    columns = (
        TextColumn("{task.description:<8}"),
        BarColumn(),
        TextColumn("{task.completed:>3.0f} done, best {task.fields[best]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns) as progress:
        tasks: dict[str, int] = {}

        def on_progress(stage: str, done: int, best: float) -> None:
            if stage not in tasks:
                total = trials if stage == "search" else None
                tasks[stage] = progress.add_task(stage, total=total, best="-")
            progress.update(tasks[stage], completed=done, best=f"{best:.4f}")

        result = tune(
            interactions,
            trials=trials,
            time_budget=args.time_budget,
            seed=args.tune_seed,
            exclude_users=test_users,
            metric=args.metric,
            base=base,
            on_progress=on_progress,
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(trials_table(result))
    console.print(similar_table(result))
    return result


def trials_table(result: TuneResult, top: int = 10):
    """The confirmed finalists (base first), then the best other search trials."""
    from rich.table import Table

    from recs.evaluation.report import short_name

    confirmed = [t for t in result.trials if t.confirm_score is not None]
    others = sorted((t for t in result.trials if t.confirm_score is None), key=lambda t: -t.score)
    shown = (confirmed + others)[: max(top, len(confirmed))]
    metric = short_name(result.metric)
    table = Table(
        title=f"tuning: {metric} of {len(result.trials)} trials on "
        f"{result.validation['search_users']} search users, finalists confirmed on "
        f"{result.validation['confirm_users']} other users",
        caption="* chosen: the best confirmation score (users the search never saw)",
    )
    for name in ("trial", "search", "confirm", "factors", "reg", "alpha", "iters"):
        table.add_column(name, justify="right")
    for name in ("value", "recency", "event weights"):
        table.add_column(name)
    for trial in shown:
        params = trial.params
        label = str(trial.number) + (" (start)" if trial is result.default else "")
        label += " *" if trial is result.chosen else ""
        table.add_row(
            label,
            f"{trial.score:.4f}",
            "-" if trial.confirm_score is None else f"{trial.confirm_score:.4f}",
            str(params.factors),
            f"{params.regularization:.3g}",
            f"{params.alpha:.3g}",
            str(params.iterations),
            "on" if params.use_event_value else "off",
            "off" if params.recency_half_life is None else f"{params.recency_half_life:.3g}",
            " ".join(f"{t}={params.weight_of(t):.3g}" for t in result.event_types) or "-",
        )
    return table


def similar_table(result: TuneResult):
    """Scores of the similar-items neighbourhoods."""
    from rich.table import Table

    table = Table(title="similar items: ndcg@10 of the newest input item's neighbours")
    table.add_column("neighbourhood")
    table.add_column("ndcg@10", justify="right")
    chosen = result.best.similar_method + (
        "+confidence" if result.best.similar_use_confidence else ""
    )
    for name, score in result.similar_scores.items():
        table.add_row(name + (" *" if name == chosen else ""), f"{score:.4f}")
    return table


def summary_line(result: TuneResult, path: Path | None = None) -> str:
    """One line: the winner against the start on the confirmation users, trials, time."""
    from recs.evaluation.report import short_name

    start, chosen = result.default.confirm_score, result.chosen.confirm_score
    gain = f" ({chosen / start - 1:+.1%})" if start and chosen is not None else ""
    where = f" -> {path}" if path else ""
    return (
        f"tuned in {len(result.trials)} trials, {result.seconds:.0f}s: "
        f"{short_name(result.metric)} on confirmation users {chosen:.4f} vs start "
        f"{start:.4f}{gain}{where}"
    )
