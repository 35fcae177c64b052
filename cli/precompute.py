"""`recs precompute`: store every user's top-K recommendations beside a local model.

The server answers GetRecommendations from this table when num_results <= K (a lookup
instead of a pass over every item's factors; backends.local.answers explains why the
answers are the same). Run it after `recs train`; training again replaces the model
directory and with it the table, so a stale table is never served.
"""

from __future__ import annotations

import argparse
import logging
import time

from recs.cli.options import add_model_dir, at_least, load_local_model

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `precompute` subcommand."""
    parser = subparsers.add_parser(
        "precompute",
        help="store every user's top-K recommendations with a local model (faster serving)",
        description=(
            "Score every user of MODEL_DIR exactly, as the server would, and store their K "
            "best items and scores there (answers_*.npy, answers.json). `recs serve` then "
            "answers GetRecommendations with num_results <= K from the table "
            "([local] precomputed_answers, default true) and scores larger requests."
        ),
    )
    add_model_dir(parser)
    parser.add_argument(
        "--top",
        type=at_least(1),
        default=25,
        metavar="K",
        help="answers kept per user (default 25)",
    )
    parser.add_argument(
        "--threads",
        type=at_least(1),
        default=None,
        metavar="N",
        help="scoring threads (default: cores)",
    )
    parser.set_defaults(handler=run_precompute)


def run_precompute(args: argparse.Namespace) -> int:
    """Handler of `recs precompute`; returns the exit status."""
    from recs.backends.local.answers import compute_answers, save_answers
    from recs.backends.local.kernels import warm_up
    from recs.pipeline.progress import every_step

    model = load_local_model(args.model, "precompute")
    if model is None:
        return 2
    warm_up()
    started = time.perf_counter()
    report = every_step(
        lambda done: logger.info("scored %3.0f%% of %d users", 100 * done, model.num_users)
    )

    table = compute_answers(model, top=args.top, threads=args.threads, on_progress=report)
    size = save_answers(table, model, args.model)
    print(
        f"precomputed the top {args.top} for {model.num_users:,} users in "
        f"{time.perf_counter() - started:.1f}s -> {args.model} ({size / 2**20:.1f} MiB)"
    )
    return 0
