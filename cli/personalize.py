"""`recs personalize provision|metrics|teardown` and `recs catalog --from-s3`.

Handlers import boto3 and rich lazily, so `recs --help` stays fast. AWS clients come from
`make_client` (the standard credential chain; `AWS_ENDPOINT_URL_PERSONALIZE` and
`AWS_ENDPOINT_URL_S3` point them elsewhere), which tests replace with stubbed clients.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from recs.cli.options import add_dataset_dir, add_json_flag, fail

PROG = "recs personalize"


def make_client(service: str, region: str | None) -> Any:
    """A boto3 client for the control plane or S3 (replaced in tests).

    S3 signs with SigV4, also in presigned URLs (whose 7-day limit is SigV4's).
    """
    from botocore.config import Config

    from recs.backends.personalize.client import USER_AGENT_EXTRA, create_client

    settings = Config(user_agent_extra=USER_AGENT_EXTRA)
    if service == "s3":
        settings = settings.merge(Config(signature_version="s3v4"))
    return create_client(service, region=region, botocore_config=settings)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `personalize` (with its own subcommands) and `catalog`."""
    parser = subparsers.add_parser(
        "personalize",
        help="provision, inspect and tear down the Amazon Personalize resources",
        description="Manage the Amazon Personalize resources the personalize backend serves "
        "from. Uses the standard AWS credential chain.",
    )
    commands = parser.add_subparsers(dest="personalize_command", metavar="COMMAND", required=True)
    _register_provision(commands)
    _register_metrics(commands)
    _register_teardown(commands)
    _register_catalog(subparsers)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--name",
        required=True,
        help="base name of every resource (dataset group NAME, campaign NAME-sims, ...); "
        "letters, digits, '-', '_', at most 41 characters",
    )
    parser.add_argument(
        "--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / profile)"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="seconds between status checks while waiting (default 30)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="give up waiting after this long (default: wait as long as it takes; "
        "a re-run resumes)",
    )


def _register_provision(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "provision",
        help="upload a prepared dataset and build campaigns for the five recipes",
        description="Upload DIR to S3, create (or reuse, by name) the dataset group, "
        "schemas, datasets, one filter NAME-<filter> per [filters] expression of the serve "
        "config (and its default filter, exclude_interacted unless [server] default_filter "
        "says otherwise), the event tracker NAME-events, import jobs, solutions, solution "
        "versions and campaigns for aws-user-personalization (its campaign's item exploration "
        "from the serve config's [local] exploration_weight, 0.3 by default, and "
        "exploration_item_age_cutoff, 30 days by default), aws-sims, aws-popularity-count, "
        "aws-trending-now (its trend discovery frequency from the serve config's [local] "
        "trend_interval, 3h by default) and aws-personalized-ranking, wait for each to be "
        "ACTIVE, then write the serve config "
        "with their ARNs, the tracker's tracking id and the Items dataset's ARN. Re-running is "
        "safe: existing resources are reused; new data is imported and trained on again; a "
        "campaign whose exploration differs is updated. With --domain video-on-demand the "
        "dataset group and schemas are VIDEO_ON_DEMAND domain ones and, instead of solutions "
        "and campaigns, five recommenders are created (aws-vod-top-picks, with the item "
        "exploration, aws-vod-because-you-watched-x, aws-vod-more-like-x, "
        "aws-vod-most-popular, aws-vod-trending-now) and written to "
        "[personalize.recommender_arns] as recommendations, similar_items, more_like_x, "
        "popular_items and trending_items; DIR must come from `recs prepare --domain "
        "video-on-demand`.",
    )
    add_dataset_dir(parser)
    parser.add_argument("--bucket", required=True, help="S3 bucket Personalize imports from")
    parser.add_argument(
        "--prefix", default="", help="key prefix of the uploaded CSV files (default: none)"
    )
    parser.add_argument(
        "--role-arn",
        required=True,
        help="IAM role Personalize assumes to read the bucket (import jobs)",
    )
    parser.add_argument(
        "--config-out",
        required=True,
        type=Path,
        metavar="FILE",
        help="serve config (TOML) to write or update with the campaign (or recommender) and "
        "filter ARNs, "
        "event_tracking_id and items_dataset_arn; its [filters] say which filters to create",
    )
    parser.add_argument(
        "--catalog",
        type=Path,
        metavar="FILE",
        help="catalog recorded in the serve config (default: DIR/items.csv if it exists)",
    )
    parser.add_argument(
        "--event-type",
        help="train only on interactions of this EVENT_TYPE (e.g. watched; default: all)",
    )
    parser.add_argument(
        "--domain",
        choices=("video-on-demand",),
        help="create a domain dataset group (VIDEO_ON_DEMAND) with one recommender per use "
        "case instead of solutions and campaigns (default: a custom dataset group); "
        "--event-type, --min-tps and [local] trend_interval then do not apply",
    )
    parser.add_argument(
        "--min-tps",
        type=int,
        default=1,
        metavar="N",
        help="minProvisionedTPS of new campaigns: the billed floor (default 1)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="only look up what exists and print the plan; create and write nothing",
    )
    _add_common(parser)
    parser.set_defaults(handler=run_provision)


def _register_metrics(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "metrics",
        help="print each solution's offline metrics",
        description="Print the offline metrics (coverage, precision, NDCG, MRR) of the "
        "newest ACTIVE solution version of each of the five solutions.",
    )
    add_json_flag(parser)
    _add_common(parser)
    parser.set_defaults(handler=run_metrics)


def _register_teardown(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "teardown",
        help="delete the campaigns and recommenders (they bill while idle); --all deletes "
        "everything",
        description="Delete the campaigns and recommenders of dataset group NAME. With --all "
        "also delete "
        "its solutions, filters, event tracker, datasets, the dataset group and the NAME-* "
        "schemas.",
    )
    parser.add_argument(
        "--all",
        dest="everything",
        action="store_true",
        help="delete everything provision created, not just the campaigns and recommenders",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    _add_common(parser)
    parser.set_defaults(handler=run_teardown)


def _register_catalog(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "catalog",
        help="build the catalog CSV (item id, url) from an S3 listing of the videos",
        description="List s3://BUCKET/PREFIX and write one row per <item_id>.mp4 object: "
        "ITEM_ID,TITLE,URL (TITLE empty). URLs are public-style unless --presign or "
        "--base-url is given.",
    )
    parser.add_argument(
        "--from-s3",
        required=True,
        metavar="URI",
        help="where the videos are, e.g. s3://bucket/shortVideos/",
    )
    parser.add_argument(
        "--out", required=True, type=Path, metavar="FILE", help="catalog CSV to write"
    )
    parser.add_argument(
        "--suffix", default=".mp4", help="object name suffix of a video (default .mp4)"
    )
    urls = parser.add_mutually_exclusive_group()
    urls.add_argument(
        "--presign",
        action="store_true",
        help="presigned GET URLs (for a private bucket) instead of public-style ones",
    )
    urls.add_argument(
        "--base-url",
        help="prefix of the URLs instead of the bucket's, e.g. https://cdn.example.com/",
    )
    parser.add_argument(
        "--expires-in",
        type=int,
        default=7 * 24 * 3600,
        metavar="SECONDS",
        help="lifetime of presigned URLs (default and maximum 604800, 7 days)",
    )
    parser.add_argument(
        "--region", help="AWS region of the bucket (default: the standard AWS chain)"
    )
    parser.set_defaults(handler=run_catalog)


def _aws_failure(prog: str, exc: Exception) -> int:
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        message = f"AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message')}"
    elif isinstance(exc, NoCredentialsError):
        message = "no AWS credentials (set AWS_PROFILE, AWS_ACCESS_KEY_ID... or use a role)"
    else:
        message = str(exc)
    return fail(prog, message)


def _print_steps(title: str, steps: list[Any], *, dry_run: bool = False) -> None:
    """The steps as a table, then what each update changes and each step's note (what the
    operator must act on)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("resource", "name", "action", "ARN / location"):
        table.add_column(column)
    for step in steps:
        table.add_row(step.kind, step.name, step.action, step.arn or "-")
    console = Console()
    console.print(table)
    for step in steps:
        if step.change:  # what an update changes (plain text, like notes)
            verb = f"would {step.action}" if dry_run else step.action
            console.print(f"{step.kind} {step.name}: {verb} {step.change}", markup=False)
    for step in steps:
        if step.note:  # plain text: a note quotes [filters] and expressions
            console.print(f"warning: {step.kind} {step.name} {step.note}", markup=False)


def run_provision(args: argparse.Namespace) -> int:
    """Handler of `recs personalize provision`."""
    from botocore.exceptions import BotoCoreError, ClientError
    from rich.console import Console

    from recs.ops.plan import DOMAINS
    from recs.ops.provisioning import Provisioner, ProvisionRequest
    from recs.ops.resources import ProvisioningError
    from recs.ops.s3 import S3Location
    from recs.ops.serve_config import (
        exploration_to_provision,
        filters_to_provision,
        trend_interval_to_provision,
        write_serve_config,
    )
    from recs.ops.waiting import Waiter

    prog = f"{PROG} provision"
    started = time.monotonic()
    console = Console(stderr=True)
    try:
        personalize = make_client("personalize", args.region)
        s3 = make_client("s3", args.region)
        weight, cutoff_days = exploration_to_provision(args.config_out)
        request = ProvisionRequest(
            data_dir=args.data,
            s3_prefix=S3Location(args.bucket, args.prefix),
            name=args.name,
            role_arn=args.role_arn,
            event_type=args.event_type,
            min_provisioned_tps=args.min_tps,
            filters=filters_to_provision(args.config_out),
            trend_interval=trend_interval_to_provision(args.config_out),
            exploration_weight=weight,
            exploration_item_age_cutoff=cutoff_days,
            domain=DOMAINS[args.domain] if args.domain else None,
        )
        waiter = Waiter(
            personalize, poll_interval=args.poll_interval, timeout=args.timeout, console=console
        )
        provisioner = Provisioner(personalize, s3, waiter, dry_run=args.dry_run, console=console)
        result = provisioner.run(request)
    except (ProvisioningError, ValueError) as exc:
        return fail(prog, exc)
    except (BotoCoreError, ClientError) as exc:
        return _aws_failure(prog, exc)
    _print_steps(
        "plan (dry run)" if args.dry_run else "provisioned", result.steps, dry_run=args.dry_run
    )
    counts = ", ".join(
        f"{result.count(action)} {action}"
        for action in ("create", "update", "reuse", "upload", "unchanged")
        if result.count(action)
    )
    if args.dry_run:
        print(f"dry run of {args.name}: {counts}; would write {args.config_out}")
        return 0
    catalog = args.catalog
    if catalog is None and (args.data / "items.csv").is_file():
        catalog = args.data / "items.csv"
    section: dict[str, Any] = {
        "region": personalize.meta.region_name,
        **result.serve_config_keys(),
    }
    try:
        write_serve_config(args.config_out, section, catalog=catalog)
    except ValueError as exc:
        return fail(prog, exc)
    elapsed = time.monotonic() - started
    served = (
        f"{len(result.recommender_arns)} recommenders"
        if result.recommender_arns
        else f"{len(result.campaign_arns)} campaigns"
    )
    print(
        f"provisioned {args.name}: {served} and "
        f"{len(result.filter_arns)} filters ACTIVE ({counts}) in {elapsed:.0f}s; "
        f"serve config written to {args.config_out}"
    )
    return 0


def run_metrics(args: argparse.Namespace) -> int:
    """Handler of `recs personalize metrics`."""
    from botocore.exceptions import BotoCoreError, ClientError
    from rich.console import Console
    from rich.table import Table

    from recs.ops.resources import ProvisioningError
    from recs.ops.solution_metrics import collect_metrics

    prog = f"{PROG} metrics"
    try:
        results = collect_metrics(make_client("personalize", args.region), args.name)
    except (ProvisioningError, ValueError) as exc:
        return fail(prog, exc)
    except (BotoCoreError, ClientError) as exc:
        return _aws_failure(prog, exc)
    if args.json:
        print(json.dumps([vars_of(result) for result in results], indent=2))
        return 0
    table = Table(title=f"offline metrics of {args.name}")
    table.add_column("metric")
    for result in results:
        table.add_column(result.recipe, justify="right")
    metric_names = sorted({name for result in results for name in result.metrics})
    table.add_row("status", *(result.status for result in results))
    for metric in metric_names:
        table.add_row(
            metric,
            *(
                f"{result.metrics[metric]:.4f}" if metric in result.metrics else "-"
                for result in results
            ),
        )
    Console().print(table)
    with_metrics = sum(bool(result.metrics) for result in results)
    print(f"metrics of {with_metrics} of {len(results)} solutions of {args.name}")
    return 0


def vars_of(result: Any) -> dict[str, Any]:
    """A metrics result as JSON-ready data."""
    return {
        "solution": result.solution,
        "recipe": result.recipe,
        "solution_version_arn": result.version_arn,
        "status": result.status,
        "metrics": result.metrics,
    }


def run_teardown(args: argparse.Namespace) -> int:
    """Handler of `recs personalize teardown`."""
    from botocore.exceptions import BotoCoreError, ClientError
    from rich.console import Console

    from recs.ops.resources import ProvisioningError
    from recs.ops.teardown import Teardown
    from recs.ops.waiting import Waiter

    prog = f"{PROG} teardown"
    if not (args.yes or args.dry_run) and not _confirmed(args):
        print(f"{prog}: not confirmed; nothing deleted (pass --yes to skip the question)")
        return 1
    try:
        personalize = make_client("personalize", args.region)
        waiter = Waiter(
            personalize,
            poll_interval=args.poll_interval,
            timeout=args.timeout,
            console=Console(stderr=True),
        )
        steps = Teardown(personalize, waiter, dry_run=args.dry_run).run(
            args.name, everything=args.everything
        )
    except (ProvisioningError, ValueError) as exc:
        return fail(prog, exc)
    except (BotoCoreError, ClientError) as exc:
        return _aws_failure(prog, exc)
    _print_steps("would delete (dry run)" if args.dry_run else "deleted", steps)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"teardown of {args.name}: {verb} {len(steps)} resources")
    return 0


def _confirmed(args: argparse.Namespace) -> bool:
    if not sys.stdin.isatty():
        return False
    scope = (
        "EVERYTHING (data, solutions, campaigns, recommenders)"
        if args.everything
        else "the campaigns and recommenders"
    )
    answer = input(f"Delete {scope} of {args.name} in Amazon Personalize? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def run_catalog(args: argparse.Namespace) -> int:
    """Handler of `recs catalog --from-s3`."""
    from botocore.exceptions import BotoCoreError, ClientError
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from recs.ops.s3 import parse_s3_uri
    from recs.ops.s3_catalog import CatalogError, build_catalog

    prog = "recs catalog"
    try:
        location = parse_s3_uri(args.from_s3)
        s3 = make_client("s3", args.region)
        columns = (SpinnerColumn(), TextColumn("listed {task.completed} objects"))
        with Progress(*columns, console=Console(stderr=True)) as progress:
            task = progress.add_task("list", total=None)
            summary = build_catalog(
                s3,
                location,
                args.out,
                suffix=args.suffix,
                presign_seconds=args.expires_in if args.presign else None,
                base_url=args.base_url,
                on_object=lambda: progress.advance(task),
            )
    except (CatalogError, ValueError) as exc:
        return fail(prog, exc)
    except (BotoCoreError, ClientError) as exc:
        return _aws_failure(prog, exc)
    print(
        f"catalog {summary.path}: {summary.items} videos from {args.from_s3}"
        f" ({summary.skipped} other objects skipped)"
    )
    return 0
