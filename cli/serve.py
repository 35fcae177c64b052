"""`recs serve`: run the gRPC service from a config file or flags."""

from __future__ import annotations

import argparse
from typing import Any

from recs.cli.options import MODEL_DIR_HELP, add_model_dir, fail


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `serve` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="run the gRPC recommendation service",
        description=(
            "Serve recommendations over gRPC. Give a TOML --config file (a `backend` key and "
            "one section per backend), or flags; flags override the file."
        ),
    )
    parser.add_argument("--config", help="TOML config file (see docs/configuration.md)")
    parser.add_argument("--backend", help="engine to serve from: local or personalize")
    add_model_dir(parser, required=False, help=f"{MODEL_DIR_HELP} (local backend)")
    parser.add_argument("--catalog", help="items.csv used to add title and url to responses")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 50051; 0 = any free)")
    parser.add_argument("--grace", type=float, help="seconds to drain in-flight calls on stop")
    parser.add_argument(
        "--request-log",
        choices=("summary", "each"),
        help="summary: per-method counts and latency percentiles every 10 s, failed calls "
        "one by one (default); each: one line per call",
    )
    parser.add_argument("--request-log-level", help="level of the request log (default INFO)")
    parser.add_argument(
        "--workers",
        type=int,
        help="server processes sharing the port via SO_REUSEPORT, e.g. one per core "
        "(default 1); the model is memory-mapped once and shared",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (default: off)",
    )
    parser.add_argument(
        "--aws-port",
        type=int,
        metavar="PORT",
        help="also answer Amazon Personalize's own API (boto3, the aws CLI) on "
        "http://HOST:PORT for the [personalize] ARNs (docs/aws-endpoint.md; default: off)",
    )
    parser.set_defaults(handler=run)


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The config values given as flags, shaped like the TOML file."""
    overrides: dict[str, Any] = {}
    server: dict[str, Any] = {}
    if args.backend:
        overrides["backend"] = args.backend
    if args.catalog:
        overrides["catalog"] = args.catalog
    if args.model:
        overrides["local"] = {"model_dir": args.model}
    for flag, key in (
        ("host", "host"),
        ("port", "port"),
        ("grace", "grace_seconds"),
        ("request_log", "request_log"),
        ("request_log_level", "request_log_level"),
        ("workers", "workers"),
        ("metrics_port", "metrics_port"),
        ("aws_port", "aws_port"),
    ):
        value = getattr(args, flag)
        if value is not None:
            server[key] = value.upper() if key == "request_log_level" else value
    if server:
        overrides["server"] = server
    return overrides


def run(args: argparse.Namespace) -> int:
    """Load the config, build the backend and serve until stopped."""
    import asyncio

    from recs.backends.errors import BackendError
    from recs.config import ConfigError, build_config, create_configured_backend, load_config

    overrides = overrides_from_args(args)
    try:
        config = load_config(args.config, overrides) if args.config else build_config(overrides)
        config.filter_set()  # a bad [filters] entry stops here, before any worker starts
        if config.server.aws_port is not None:
            config.personalize_section()  # likewise a bad ARN for the AWS-protocol endpoint
        if config.server.workers > 1:  # each worker builds its own backend (and imports gRPC)
            from recs.server.workers import serve_workers

            return serve_workers(config)
        backend = create_configured_backend(config)
    except (ConfigError, BackendError) as exc:
        return fail("recs serve", exc, 2)
    from recs.server.app import serve

    return asyncio.run(serve(config, backend))
