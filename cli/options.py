"""Options and checks shared by the `recs` subcommands.

Each `add_*` helper adds one option the same way wherever it appears (flag, metavar, type,
help), so a dataset directory, a model directory or a service address reads alike in every
`recs <command> --help`. The `type=` factories check a value while argparse parses it: a
bad value exits with status 2 and `recs <command>: error: argument --flag: ...`.

Nothing heavy is imported at module level: `recs --help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recs.backends.local.artifacts import LocalModel
    from recs.client.sync import RecsClient

logger = logging.getLogger(__name__)

# What `add_argument` can be called on: a parser, an argument group or a mutually exclusive one.
OptionContainer = argparse.ArgumentParser | argparse._ArgumentGroup

ENV_TARGET = "RECS_TARGET"
ENV_TLS_CA = "RECS_TLS_CA"
ENV_TOKEN = "RECS_TOKEN"
DEFAULT_TARGET = os.environ.get(ENV_TARGET, "127.0.0.1:50051")
DEFAULT_CALL_TIMEOUT_SECONDS = 5.0

DATASET_DIR_HELP = "prepared dataset directory"
MODEL_DIR_HELP = "model directory written by `recs train`"
TARGET_HELP = f"service host:port (env {ENV_TARGET})"


# Options ----------------------------------------------------------------------------------


def add_dataset_dir(
    parser: OptionContainer,
    flag: str = "--data",
    *,
    required: bool = True,
    help: str = DATASET_DIR_HELP,
) -> argparse.Action:
    """`--data DIR` (or `flag`): a dataset directory as `recs prepare` writes it."""
    return parser.add_argument(flag, required=required, type=Path, metavar="DIR", help=help)


def add_model_dir(
    parser: OptionContainer,
    flag: str = "--model",
    *,
    required: bool = True,
    help: str = MODEL_DIR_HELP,
) -> argparse.Action:
    """`--model MODEL_DIR` (or `flag`): a local engine's model directory.

    Pass `required=False` inside a mutually exclusive group or where a config file may
    name the directory instead.
    """
    return parser.add_argument(flag, required=required, type=Path, metavar="MODEL_DIR", help=help)


def add_no_progress(parser: OptionContainer) -> argparse.Action:
    """`--no-progress`: turn off the progress display (`args.no_progress`)."""
    return parser.add_argument(
        "--no-progress", action="store_true", help="do not show the progress display"
    )


def add_json_flag(parser: OptionContainer) -> argparse.Action:
    """`--json`: print the result as JSON instead of a table (`args.json`)."""
    return parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_target(
    parser: OptionContainer,
    flag: str = "--target",
    *,
    default: str | None = DEFAULT_TARGET,
    help: str = TARGET_HELP,
) -> argparse.Action:
    """`--target HOST:PORT` (or `flag`): a running recommendation service.

    The default is `$RECS_TARGET`, else 127.0.0.1:50051; pass `default=None` where the
    option is one choice of a mutually exclusive group.
    """
    return parser.add_argument(flag, default=default, metavar="HOST:PORT", help=help)


def add_connection_security(parser: OptionContainer) -> None:
    """`--tls-ca FILE` and `--token TOKEN`: how to reach a service with `[server.tls]`/`auth`.

    Defaults come from the environment (RECS_TLS_CA, RECS_TOKEN), so a token need not appear
    in the command line, which other users of the machine can read.
    """
    parser.add_argument(
        "--tls-ca",
        default=os.environ.get(ENV_TLS_CA) or None,
        type=existing_file,
        metavar="FILE",
        help=f"CA certificate (PEM) to trust: talk TLS to the service (env {ENV_TLS_CA})",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get(ENV_TOKEN) or None,
        metavar="TOKEN",
        help=f"bearer token sent with every call (env {ENV_TOKEN})",
    )


def add_call_timeout(
    parser: OptionContainer, *, default: float = DEFAULT_CALL_TIMEOUT_SECONDS
) -> argparse.Action:
    """`--timeout SECONDS`: the deadline of each call to the service (positive)."""
    return parser.add_argument(
        "--timeout",
        type=positive_float,
        default=default,
        metavar="SECONDS",
        help="deadline of each call to the service, in seconds",
    )


def filter_epilog(command_args: str) -> str:
    """The `--help` epilog of a command taking a filter: what it is and two examples.

    Pass the command's own required arguments (`--user u42`) so the examples run as shown.
    """
    command = " ".join(part for part in ("%(prog)s", command_args) if part)
    return (
        "filters: --filter names a filter of the server's [filters] config (Personalize's\n"
        "filterArn); --filter-value KEY=VALUE gives its $KEY parameter (filterValues), e.g.\n"
        "for the filter expression INCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES):\n"
        f"  {command} --filter by_category --filter-value CATEGORIES=comedy,gaming\n"
        f'  {command} --filter by_category --filter-value \'CATEGORIES="comedy","gaming"\'\n'
    )


def add_filter_options(parser: OptionContainer) -> None:
    """`--filter NAME` and repeatable `--filter-value KEY=VALUE`: the call's filter.

    Values become `args.filter_values`, a list of (KEY, VALUE in Personalize's format);
    `filter_arguments` checks them against `--filter` once parsing is done.
    """
    parser.add_argument(
        "--filter",
        default="",
        metavar="NAME",
        help="apply the filter NAME of the server's [filters] config (default: the server's)",
    )
    parser.add_argument(
        "--filter-value",
        dest="filter_values",
        action="append",
        default=[],
        type=filter_entry,
        metavar="KEY=VALUE",
        help="the value of the filter's $KEY parameter (repeat for other keys): a plain list, "
        'comedy,gaming, or already in Personalize\'s format, "comedy","gaming"',
    )


def filter_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """The client's `filter_name` and `filter_values` from `--filter` and `--filter-value`.

    Values without a filter, or a key given twice, exit like any parse error (status 2,
    naming --filter-value): they are mistakes in the command line, not in the service.
    """
    from recs.client.filters import collect_filter_entries

    if args.filter_values and not args.filter:
        parser.error("argument --filter-value: needs --filter NAME, the filter it is a value of")
    try:
        values = collect_filter_entries(args.filter_values)
    except ValueError as exc:
        parser.error(f"argument --filter-value: {exc}")
    return {"filter_name": args.filter, "filter_values": values}


# Value checks for `type=` -------------------------------------------------------------------


def at_least(minimum: int, *, at_most: int | None = None) -> Callable[[str], int]:
    """An argparse `type=` accepting integers from `minimum` (to `at_most`, if given)."""

    def integer(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if at_most is not None and not minimum <= value <= at_most:
            raise argparse.ArgumentTypeError(f"must be from {minimum} to {at_most}, got {value}")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return integer


def filter_entry(text: str) -> tuple[str, str]:
    """An argparse `type=` accepting `KEY=VALUE`, VALUE made Personalize's quoted list."""
    from recs.client.filters import parse_filter_entry

    try:
        return parse_filter_entry(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def existing_file(text: str) -> Path:
    """An argparse `type=` accepting the path of a readable file."""
    path = Path(text)
    if not path.is_file() or not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text}: no such readable file")
    return path


def positive_float(text: str) -> float:
    """An argparse `type=` accepting numbers above zero."""
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse `type=` accepting zero and numbers above it."""
    value = _float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def finite_float(text: str) -> float:
    """An argparse `type=` accepting any number but nan and infinities."""
    value = _float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def non_empty(text: str) -> str:
    """An argparse `type=` accepting text that is not empty or blank (an id, a name)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


# Handler helpers ----------------------------------------------------------------------------


def fail(prog: str, message: object, status: int = 1) -> int:
    """Print `prog: message` to stderr and return `status`, for `return fail(...)`."""
    print(f"{prog}: {message}", file=sys.stderr)
    return status


def connect(args: argparse.Namespace) -> RecsClient:
    """A client of the service named by the connection options (`add_target`,
    `add_connection_security`, `add_call_timeout`); use it as a context manager."""
    from recs.client import RecsClient

    return RecsClient(args.target, timeout=args.timeout, tls_ca=args.tls_ca, token=args.token)


def load_local_model(model_dir: Path, doing: str) -> LocalModel | None:
    """The local model in `model_dir`, or None after logging `cannot <doing>: <why>`."""
    from recs.backends.errors import ModelLoadError
    from recs.backends.local.artifacts import load_model

    try:
        return load_model(model_dir)
    except ModelLoadError as exc:
        logger.error("cannot %s: %s", doing, exc)
        return None
