"""`recs ui`: run the Streamlit page on localhost against a running service."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from recs.cli.options import (
    add_call_timeout,
    add_connection_security,
    add_dataset_dir,
    add_target,
    at_least,
    fail,
)
from recs.ui import APP_PATH
from recs.ui.settings import DEFAULT_TIMEOUT_SECONDS, UiSettings

log = logging.getLogger("recs.ui")

DEFAULT_PORT = 8501
DEFAULT_DATA_DIR = Path("build/serve/dataset")  # what `make serve` prepares
LOCALHOST = "127.0.0.1"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `ui` subcommand."""
    description = (
        "Open a page on the service: a user's history beside their recommendations, "
        "similar, popular and trending videos, re-ranking, two services side by side, and the "
        "model. "
        "Runs `streamlit run` on 127.0.0.1 only."
    )
    parser = subparsers.add_parser(
        "ui", help="a Streamlit page on the service", description=description
    )
    add_target(parser)
    parser.add_argument(
        "--port",
        type=at_least(1, at_most=65535),
        default=DEFAULT_PORT,
        help=f"port of the page on 127.0.0.1 (default {DEFAULT_PORT})",
    )
    add_dataset_dir(
        parser,
        required=False,
        help="prepared dataset dir whose interactions.csv shows users' recent history "
        f"(the service has no history call; default {DEFAULT_DATA_DIR} when it exists)",
    )
    add_target(
        parser,
        "--compare-target",
        default="",
        help="a second service host:port to compare with (also settable on the page)",
    )
    parser.add_argument(
        "--eval-json",
        type=Path,
        default=None,
        metavar="FILE",
        help="evaluation result (recs evaluate run --json) whose metrics the page charts",
    )
    add_call_timeout(parser, default=DEFAULT_TIMEOUT_SECONDS)
    add_connection_security(parser)
    parser.set_defaults(handler=run_ui)


def settings_from_args(args: argparse.Namespace) -> UiSettings:
    """Check the options and turn them into the page's settings.

    Raises ValueError naming the option when a file the options name cannot be used
    (argparse has already checked --port and --timeout).
    """
    data_dir = args.data
    if data_dir is None and (DEFAULT_DATA_DIR / "interactions.csv").is_file():
        data_dir = DEFAULT_DATA_DIR
    if data_dir is not None and not (data_dir / "interactions.csv").is_file():
        raise ValueError(f"--data {data_dir}: no interactions.csv there (a prepared dataset)")
    if args.eval_json is not None and not args.eval_json.is_file():
        raise ValueError(f"--eval-json {args.eval_json}: file not found")
    return UiSettings(
        target=args.target,
        compare_target=args.compare_target,
        data_dir=data_dir.resolve() if data_dir is not None else None,
        eval_json=args.eval_json.resolve() if args.eval_json is not None else None,
        timeout=args.timeout,
        tls_ca=args.tls_ca.resolve() if args.tls_ca is not None else None,
        token=args.token or "",
    )


def streamlit_command(port: int) -> list[str]:
    """`streamlit run` for the page: headless, on localhost, no usage statistics sent."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP_PATH),
        "--server.headless", "true",
        "--server.address", LOCALHOST,
        "--server.port", str(port),
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--client.showErrorDetails", "none",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip


def run_ui(args: argparse.Namespace) -> int:
    """Run the page until Ctrl+C or SIGTERM; returns Streamlit's exit status."""
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        return fail("recs ui", exc, 2)
    if settings.data_dir is None:
        log.info("no prepared dataset given (--data): the page shows no user history")
    print(
        f"recs ui: http://{LOCALHOST}:{args.port}/ asking {settings.target} (Ctrl+C stops)",
        flush=True,
    )
    page = subprocess.Popen(streamlit_command(args.port), env={**os.environ, **settings.to_env()})
    signal.signal(signal.SIGTERM, lambda *_: page.terminate())
    try:
        return page.wait()
    except KeyboardInterrupt:
        # Ctrl+C reached Streamlit too (same process group): let it shut down on its own.
        return page.wait()
