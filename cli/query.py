"""The query commands of `recs`: recommend, similar, popular, trending, rerank, model-info."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from recs.cli.options import (
    add_call_timeout,
    add_connection_security,
    add_filter_options,
    add_json_flag,
    add_target,
    connect,
    fail,
    filter_arguments,
    filter_epilog,
)

if TYPE_CHECKING:
    from recs.client.sync import RecsClient

# A query: the client, the parsed arguments and the client's filter keyword arguments.
Call = Callable[["RecsClient", argparse.Namespace, dict[str, Any]], Any]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the query subcommands."""

    def add(
        name: str, help_text: str, with_n: bool = True, filtered_example: str | None = None
    ) -> argparse.ArgumentParser:
        """A query subcommand; with `filtered_example` (its required arguments, for the
        examples in --help) it takes --filter and --filter-value."""
        extra: dict[str, Any] = {}
        if filtered_example is not None:
            extra = {
                "epilog": filter_epilog(filtered_example),
                "formatter_class": argparse.RawDescriptionHelpFormatter,
            }
        parser = subparsers.add_parser(name, help=help_text, description=help_text, **extra)
        add_target(parser)
        add_connection_security(parser)
        if with_n:
            parser.add_argument(
                "-n", "--num-results", type=int, default=0, help="how many (0 = 25, max 500)"
            )
        if filtered_example is not None:
            add_filter_options(parser)
        add_json_flag(parser)
        add_call_timeout(parser)
        return parser

    parser = add("recommend", "what a user should watch next", filtered_example="--user u42")
    parser.add_argument("--user", required=True, help="user id")
    parser.set_defaults(
        handler=_handler(lambda c, a, f: c.recommend(a.user, a.num_results, **f), parser)
    )

    parser = add("similar", "videos like a given video", filtered_example="--item v7")
    parser.add_argument("--item", required=True, help="video id")
    parser.add_argument(
        "--user", default="", help="optional user id: what they watched is left out"
    )
    parser.set_defaults(
        handler=_handler(lambda c, a, f: c.similar(a.item, a.num_results, a.user, **f), parser)
    )

    parser = add("popular", "the most popular videos", filtered_example="")
    parser.add_argument("--user", default="", help="optional user id (Personalize filters)")
    parser.set_defaults(
        handler=_handler(lambda c, a, f: c.popular(a.num_results, a.user, **f), parser)
    )

    parser = add(
        "trending", "the videos trending now (interactions rising fastest)", filtered_example=""
    )
    parser.add_argument("--user", default="", help="optional user id (Personalize filters)")
    parser.set_defaults(
        handler=_handler(lambda c, a, f: c.trending(a.num_results, a.user, **f), parser)
    )

    parser = add(
        "rerank",
        "order given videos best first for a user",
        with_n=False,
        filtered_example="--user u42 --items v1,v2,v3",
    )
    parser.add_argument("--user", required=True, help="user id")
    parser.add_argument("--items", required=True, help="comma-separated video ids")
    parser.set_defaults(
        handler=_handler(
            lambda c, a, f: c.rerank(a.user, [i for i in a.items.split(",") if i], **f), parser
        )
    )

    parser = add("model-info", "which backend answers and what model it serves", with_n=False)
    parser.set_defaults(handler=_handler(lambda c, a, f: c.model_info()))


def _handler(
    call: Call, filtered: argparse.ArgumentParser | None = None
) -> Callable[[argparse.Namespace], int]:
    """A subcommand handler that makes one call and prints its result.

    With `filtered` (the subcommand's parser), the filter options are checked first, so a
    misuse exits as a parse error before any connection is made.
    """

    def run(args: argparse.Namespace) -> int:
        from recs.client import RecsError

        filters = filter_arguments(filtered, args) if filtered is not None else {}
        try:
            with connect(args) as client:
                result = call(client, args, filters)
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
    explained = any(item.reason for item in result.items)
    columns = ["rank", "item_id", "score", "title", "url"] + (["reason"] if explained else [])
    table = Table(*columns, title=result.recommendation_id)
    for rank, item in enumerate(result.items, start=1):
        row = [str(rank), item.item_id, f"{item.score:.6f}", item.title, item.url]
        table.add_row(*row, *([", ".join(item.reason)] if explained else []))
    console.print(table)
