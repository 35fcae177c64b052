"""`recs prepare` and `recs synth`: the data pipeline's subcommands.

Heavy modules (pyarrow, numpy, rich) are imported inside the handlers so `recs --help`
stays fast.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from recs.cli.options import (
    add_dataset_dir,
    add_no_progress,
    fail,
    non_negative_float,
    positive_float,
)

log = logging.getLogger(__name__)

# `--domain` values and the Personalize domain each stands for (pipeline.dataset).
DOMAINS = {"video-on-demand": "VIDEO_ON_DEMAND"}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default only when there is a meaningful one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `prepare` and `synth` subcommands."""
    _register_prepare(subparsers)
    _register_synth(subparsers)


def _register_prepare(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="turn a raw watch log (and catalog) into a Personalize-format dataset",
        description=(
            "Read a raw watch log CSV and write DIR/interactions.csv (USER_ID,ITEM_ID,"
            "TIMESTAMP,EVENT_TYPE,EVENT_VALUE) with its Avro schema; with --items, also "
            "DIR/items.csv and its schema. A row is 'watched' when watch/video duration "
            "is above the threshold (strictly), else 'clicked'. Bad rows are rejected "
            "and counted by reason, exact duplicates collapsed; the run ends with "
            "read = written + rejected + duplicates. With --domain video-on-demand the "
            "files are for Personalize's VIDEO_ON_DEMAND domain instead: event types "
            "'Watch'/'Click', the categories as items' GENRES, the domain's schemas, and "
            "DIR/dataset.json naming the domain."
        ),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--watch-log",
        required=True,
        type=Path,
        metavar="FILE",
        help="raw watch log CSV with a header row",
    )
    parser.add_argument(
        "--items",
        type=Path,
        metavar="FILE",
        help="raw catalog CSV (item_id,title,duration,categories,url,"
        "creation_time) to write as items.csv",
    )
    add_dataset_dir(parser, "--out", help="dataset directory to write (created if missing)")
    parser.add_argument(
        "--threshold",
        type=non_negative_float,
        default=0.5,
        help="watched/video duration ratio above which a view is 'watched'",
    )
    parser.add_argument(
        "--max-event-value",
        type=positive_float,
        default=5.0,
        help="cap on EVENT_VALUE for re-watches (ratio above 1.0)",
    )
    parser.add_argument(
        "--domain",
        choices=sorted(DOMAINS),
        help="write for this Personalize domain dataset group (default: a custom one): "
        "video-on-demand labels views 'Watch'/'Click', writes the categories as GENRES "
        "(a catalog row without categories is rejected) and records the domain in "
        "DIR/dataset.json",
    )
    parser.add_argument(
        "--rejects",
        type=Path,
        metavar="FILE",
        help="write every rejected watch-log row here (CSV with line and reason)",
    )
    parser.add_argument(
        "--item-rejects", type=Path, metavar="FILE", help="write every rejected catalog row here"
    )
    columns = parser.add_argument_group("watch log columns and units")
    columns.add_argument("--user-col", default="user_id", help="column holding the user id")
    columns.add_argument("--item-col", default="item_id", help="column holding the video id")
    columns.add_argument(
        "--timestamp-col",
        default="timestamp",
        help="column holding the event time (epoch or ISO-8601)",
    )
    columns.add_argument(
        "--watch-col",
        default="watch_duration",
        help="column holding how long the video was watched",
    )
    columns.add_argument(
        "--duration-col", default="video_duration", help="column holding the video's length"
    )
    columns.add_argument(
        "--duration-unit",
        choices=["s", "ms"],
        default="s",
        help="unit of the watch and video duration columns (read as seconds internally; "
        "the watch ratio, and so the output, is the same in any unit)",
    )
    columns.add_argument(
        "--timestamp-unit",
        choices=["s", "ms"],
        default="s",
        help="unit of numeric timestamps (ISO-8601 text needs none)",
    )
    columns.add_argument(
        "--default-timestamp",
        metavar="TIME",
        help="for a log WITHOUT a timestamp column only: stamp every row "
        "with this time (epoch seconds or ISO-8601); never guessed",
    )
    catalog = parser.add_argument_group("catalog")
    catalog.add_argument(
        "--item-duration-unit",
        choices=["s", "ms"],
        default="s",
        help="unit of the catalog's duration column",
    )
    catalog.add_argument(
        "--url-base",
        metavar="URL",
        help="prefix turning catalog S3 keys into URLs, e.g. "
        "https://BUCKET.s3.amazonaws.com (values with :// are kept)",
    )
    add_no_progress(parser)
    parser.set_defaults(handler=run_prepare)


def _register_synth(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="generate a synthetic short-video watch log and catalog",
        description=(
            "Write DIR/watch_log.csv (user_id,item_id,timestamp,watch_duration,"
            "video_duration) and DIR/items.csv (item_id,title,duration,categories,url,"
            "creation_time) for a plausible short-video platform: users with tastes over "
            "categories, long-tail popularity, watch time driven by taste. Same seed, same "
            "bytes."
        ),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="directory to write (created if missing)",
    )
    parser.add_argument("--users", type=int, default=2000, help="number of users")
    parser.add_argument("--items", type=int, default=1000, help="number of videos")
    parser.add_argument("--events", type=int, default=100_000, help="number of watch events")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument(
        "--days", type=int, default=56, help="the log spans this many days, ending 2024-03-01"
    )
    parser.add_argument(
        "--bucket", default="recs-demo-videos", help="S3 bucket named in the video URLs"
    )
    parser.add_argument(
        "--drift",
        type=float,
        default=0.0,
        help="interest drift, 0 to 1: each user's second taste takes over this share of "
        "their topic picks by the end of the log (0: tastes fixed)",
    )
    add_no_progress(parser)
    parser.set_defaults(handler=run_synth)


def run_prepare(args: argparse.Namespace) -> int:
    """Handler of `recs prepare`."""
    from recs.pipeline.items import CatalogFormat
    from recs.pipeline.prepare import PrepareError, PrepareOptions, prepare
    from recs.pipeline.progress import byte_progress
    from recs.pipeline.watchlog import WatchLogColumns, WatchLogError, WatchLogFormat

    try:
        default_time = _parse_time(args.default_timestamp, "--default-timestamp")
    except ValueError as exc:
        return fail("recs prepare", exc, 2)
    options = PrepareOptions(
        watch_log=args.watch_log,
        out_dir=args.out,
        items=args.items,
        threshold=args.threshold,
        max_event_value=args.max_event_value,
        log_format=WatchLogFormat(
            columns=WatchLogColumns(
                user=args.user_col,
                item=args.item_col,
                timestamp=args.timestamp_col,
                watch=args.watch_col,
                duration=args.duration_col,
            ),
            duration_unit=args.duration_unit,
            timestamp_unit=args.timestamp_unit,
            default_timestamp=default_time,
        ),
        catalog_format=CatalogFormat(duration_unit=args.item_duration_unit, url_base=args.url_base),
        rejects_file=args.rejects,
        item_rejects_file=args.item_rejects,
        domain=DOMAINS[args.domain] if args.domain else None,
    )
    try:
        with byte_progress("preparing", enabled=not args.no_progress) as advance:
            result = prepare(options, progress=advance)
    except (WatchLogError, PrepareError) as exc:
        return fail("recs prepare", exc)
    for title, rejects in (("catalog", result.catalog_rejects), ("watch log", result.rejects)):
        if rejects is not None and rejects.total:
            print(f"rejected {title} rows by reason:")
            for line in rejects.describe():
                print(line)
    if result.rewatched:
        print(
            f"re-watches (ratio above 1.0): {result.rewatched:,}, "
            f"of which capped at {args.max_event_value}: {result.capped:,}"
        )
    print("wrote " + ", ".join(str(path) for path in result.files))
    print(result.summary())
    return 0


def run_synth(args: argparse.Namespace) -> int:
    """Handler of `recs synth`."""
    from recs.pipeline.progress import row_progress
    from recs.pipeline.synth import SynthConfig, synthesize

    try:
        config = SynthConfig(
            users=args.users,
            items=args.items,
            events=args.events,
            seed=args.seed,
            days=args.days,
            bucket=args.bucket,
            drift=args.drift,
        )
    except ValueError as exc:
        return fail("recs synth", exc, 2)
    with row_progress("synthesizing", total=args.events, enabled=not args.no_progress) as add:
        paths = synthesize(config, args.out, progress=add)
    print(
        f"wrote {args.events:,} events by {args.users:,} users over {args.items:,} videos: "
        + ", ".join(str(p) for p in paths)
    )
    return 0


def _parse_time(text: str | None, option: str) -> int | None:
    """Epoch seconds from epoch or ISO-8601 text; ValueError naming the option."""
    if text is None:
        return None
    import pyarrow as pa

    from recs.pipeline.parsing import parse_epoch_seconds

    parsed = parse_epoch_seconds(pa.array([text]))
    if not parsed.ok[0]:
        raise ValueError(f"{option}: '{text}' is neither epoch seconds nor ISO-8601")
    return int(parsed.values[0])
