"""`recs train`: fit the local engine on a prepared dataset and write a model directory."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from recs.cli.options import add_dataset_dir, add_model_dir, add_no_progress, existing_file

if TYPE_CHECKING:
    from recs.backends.local.params import TrainParams

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="train the local engine (ALS, similar items, popularity) on a prepared dataset",
        description=(
            "Train the local engine on DIR/interactions.csv (and DIR/items.csv if present), "
            "as written by `recs prepare`, plus the real-time events exported with "
            "`recs events export` (--events), and write a model directory for `recs serve`. "
            "Options given here override the --params file, which overrides the defaults."
        ),
    )
    add_dataset_dir(parser)
    add_model_dir(
        parser, "--out", help="model directory to write (replaced atomically if it exists)"
    )
    parser.add_argument(
        "--events",
        action="append",
        default=[],
        type=existing_file,
        metavar="FILE",
        help="also train on the events FILE written by `recs events export` (repeatable); "
        "the model records the last stored event it holds, so serving does not apply "
        "those events again",
    )
    parser.add_argument(
        "--params",
        type=Path,
        metavar="FILE",
        help="training parameters as JSON (.json) or TOML (e.g. written by `recs tune`)",
    )
    parser.add_argument("--factors", type=int, metavar="N", help="ALS latent factors (default 64)")
    parser.add_argument("--iterations", type=int, metavar="N", help="ALS iterations (default 15)")
    parser.add_argument(
        "--event-weight",
        action="append",
        default=[],
        metavar="TYPE=W",
        help="confidence of one event of EVENT_TYPE TYPE, e.g. watched=2 (repeatable; "
        "defaults watched=2, clicked=1, any other type 1)",
    )
    add_no_progress(parser)
    parser.add_argument(
        "--tune",
        action="store_true",
        help="first tune the parameters on validation users of --data (as `recs tune`, "
        "starting from --params and the options above), then train with the best",
    )
    from recs.cli.tune import add_tuning_options

    add_tuning_options(parser)
    parser.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    """Handler of `recs train`; returns the exit status."""
    from recs.backends.local.params import ParamsError
    from recs.backends.local.train import train
    from recs.pipeline.dataset import DatasetError

    try:
        params = params_from_args(args)
    except ParamsError as exc:
        logger.error("%s", exc)
        return 2
    if args.tune:
        from recs.cli.tune import tuned_params

        params = tuned_params(args, params)
        if params is None:
            return 1
    try:
        summary = train(
            args.data, args.out, params, progress=not args.no_progress, events=args.events
        )
    except DatasetError as exc:
        logger.error("cannot train: %s", exc)
        return 1
    events = ""
    if "events" in summary:
        events = (
            f" (of which {summary['events']:,} exported events, through seq "
            f"{summary['events_through_seq']:,})"
        )
    print(
        f"trained {summary['users']:,} users x {summary['items']:,} items on "
        f"{summary['interactions']:,} interactions{events} in {summary['seconds']:.1f}s "
        f"-> {summary['out_dir']} ({summary['model_bytes'] / 2**20:.1f} MiB)"
    )
    return 0


def params_from_args(args: argparse.Namespace) -> TrainParams:
    """Defaults, then the --params file, then the command-line overrides."""
    from pydantic import ValidationError

    from recs.backends.local.params import ParamsError, TrainParams

    params = TrainParams.from_file(args.params) if args.params else TrainParams()
    overrides: dict[str, object] = {}
    if args.factors is not None:
        overrides["factors"] = args.factors
    if args.iterations is not None:
        overrides["iterations"] = args.iterations
    if args.event_weight:
        weights = dict(params.event_weights)
        weights.update(parse_event_weight(spec) for spec in args.event_weight)
        overrides["event_weights"] = weights
    try:
        return TrainParams.model_validate({**params.model_dump(), **overrides})
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise ParamsError(f"invalid option: {problems}") from exc


def parse_event_weight(spec: str) -> tuple[str, float]:
    """`TYPE=W` -> (TYPE, W); ParamsError naming the option otherwise."""
    from recs.backends.local.params import ParamsError

    event_type, _, weight = spec.partition("=")
    try:
        value = float(weight)
    except ValueError:
        value = -1.0
    if not event_type.strip() or not value >= 0.0:
        raise ParamsError(
            f"--event-weight {spec!r}: expected TYPE=WEIGHT with WEIGHT >= 0, e.g. watched=2"
        )
    return event_type.strip(), value
