"""The query commands of `recs`: recommend, similar, popular, rerank, model-info."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from recs.cli.options import (
    add_call_timeout,
    add_connection_security,
    add_json_flag,
    add_target,
    fail,
)

if TYPE_CHECKING:
    from recs.client.sync import RecsClient


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the query subcommands."""

    def add(name: str, help_text: str, with_n: bool = True) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        add_target(parser)
        add_connection_security(parser)
        if with_n:
            parser.add_argument(
                "-n", "--num-results", type=int, default=0, help="how many (0 = 25, max 500)"
            )
        add_json_flag(parser)
        add_call_timeout(parser)
        return parser

    parser = add("recommend", "what a user should watch next")
    parser.add_argument("--user", required=True, help="user id")
    parser.set_defaults(handler=_handler(lambda c, a: c.recommend(a.user, a.num_results)))

    parser = add("similar", "videos like a given video")
    parser.add_argument("--item", required=True, help="video id")
    parser.set_defaults(handler=_handler(lambda c, a: c.similar(a.item, a.num_results)))

    parser = add("popular", "the most popular videos")
    parser.add_argument("--user", default="", help="optional user id (Personalize filters)")
    parser.set_defaults(handler=_handler(lambda c, a: c.popular(a.num_results, a.user)))

    parser = add("rerank", "order given videos best first for a user", with_n=False)
    parser.add_argument("--user", required=True, help="user id")
    parser.add_argument("--items", required=True, help="comma-separated video ids")
    parser.set_defaults(
        handler=_handler(lambda c, a: c.rerank(a.user, [i for i in a.items.split(",") if i]))
    )

    parser = add("model-info", "which backend answers and what model it serves", with_n=False)
    parser.set_defaults(handler=_handler(lambda c, a: c.model_info()))


def _handler(
    call: Callable[[RecsClient, argparse.Namespace], Any],
) -> Callable[[argparse.Namespace], int]:
    """A subcommand handler that makes one call and prints its result."""

    def run(args: argparse.Namespace) -> int:
        from recs.client import RecsClient, RecsError

        try:
            with RecsClient(
                args.target, timeout=args.timeout, tls_ca=args.tls_ca, token=args.token
            ) as client:
                result = call(client, args)
        except RecsError as exc:
            return fail(f"recs {args.command}", f"{exc.code.name}: {exc.message}")
        if args.json:
            print(json.dumps(asdict(result), indent=2))
        else:
            _print_human(result)
        return 0

    return run


def _print_human(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from recs.client.types import ModelInfo

    console = Console()
    if isinstance(result, ModelInfo):
        table = Table("key", "value", title=f"backend: {result.backend}")
        for key, value in sorted(result.details.items()):
            table.add_row(key, value)
        console.print(table)
        return
    table = Table("rank", "item_id", "score", "title", "url", title=result.recommendation_id)
    for rank, item in enumerate(result.items, start=1):
        table.add_row(str(rank), item.item_id, f"{item.score:.6f}", item.title, item.url)
    console.print(table)
