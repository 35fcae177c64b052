"""`recs`: the single console command. Each package registers its own subcommands.

Subcommand modules import their heavy dependencies inside their handlers, so
`recs --help` and quick commands start fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

# implicit wants single-threaded BLAS; this must happen before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Modules exposing `register(subparsers)`; each adds one or more subcommands.
COMMAND_MODULES = [
    "recs.cli.data",
    "recs.cli.evaluate",
    "recs.cli.train",
    "recs.cli.tune",
    "recs.cli.index",
    "recs.cli.precompute",
    "recs.cli.personalize",
    "recs.cli.serve",
    "recs.cli.query",
    "recs.cli.events",
    "recs.cli.ui",
]


def build_parser() -> argparse.ArgumentParser:
    """The full `recs` argument parser."""
    parser = argparse.ArgumentParser(
        prog="recs",
        description="Video recommendations: prepare data, train, serve and query.",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("RECS_LOG_LEVEL", "INFO"),
        help="logging level (DEBUG, INFO, WARNING, ...; env RECS_LOG_LEVEL)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `recs`; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
