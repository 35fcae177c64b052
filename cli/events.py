"""The real-time commands of `recs`: put-event (what a user just did), put-items (catalog),
and `events export` (the local engine's stored events, for the next training).

put-event and put-items talk to a running service through the client library, with the same
connection options as the query commands (--target, --tls-ca, --token, --timeout); `events
export` reads the local engine's state directory (backends.local.export).
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from recs.cli.options import (
    add_call_timeout,
    add_connection_security,
    add_no_progress,
    add_target,
    connect,
    existing_file,
    fail,
    finite_float,
    non_empty,
)

if TYPE_CHECKING:
    from recs.client.errors import RecsError
    from recs.client.types import CatalogItem

# PutItems takes at most 10 items a call (Personalize's limit, checked by the server).
ITEMS_PER_CALL = 10

# The items.csv columns with a field of their own; every other column is a property.
ID_COLUMN = "ITEM_ID"
TITLE_COLUMN = "TITLE"
URL_COLUMN = "URL"

PUT_EVENT_EPILOG = """\
examples:
  %(prog)s --user u42 --session s-9f2 --item v7 --type watched --value 0.8
  %(prog)s --session s-9f2 --item v7 --type clicked     # an anonymous visitor
  %(prog)s --user u42 --session s-9f2 --item v7 --type watched \\
      --event-id e-1234 --recommendation-id rid-77 --sent-at 2024-05-01T12:00:00Z

Without --user the event belongs to an anonymous visitor, known by the session id:
`recs recommend --user <session>` answers from that session's events. --sent-at takes
ISO-8601 (without an offset it is UTC) or epoch seconds; without it, the event is stamped
now. Give --event-id when the command may be run twice for one event: Personalize leaves
later events with the same id out of training.
"""

PUT_ITEMS_EPILOG = """\
examples:
  %(prog)s --file data/prepared/items.csv
  %(prog)s --file new-videos.csv --target recs.internal:50051 --tls-ca ca.pem

The file is the items.csv `recs prepare` writes: a header with ITEM_ID (required), TITLE
and URL, and further columns such as CATEGORIES, DURATION and CREATION_TIMESTAMP, which
become the item's properties (empty cells are left out). Existing ids are replaced. Items
go 10 to a call; a row without ITEM_ID is reported with its line number and skipped. The
command stops at the first call the service refuses, naming the lines it held: the items
before them are stored, so fix the file and send the rest again (sending an item twice
only replaces it).
"""


EVENTS_EXPORT_EPILOG = """\
examples:
  %(prog)s --state build/serve/model-state --out build/events/interactions.csv
  %(prog)s --state build/serve/model-state --out events.csv --items-out items.csv

then retrain on the dataset plus the events, into the model directory the server watches:
  recs train --data build/serve/dataset --events build/events/interactions.csv \\
      --out build/serve/model

FILE gets interactions.csv rows (USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE; an
anonymous visitor's USER_ID is their session id) and FILE.json the last stored event it
holds ({"through_seq": K, ...}). A model trained with --events FILE records K, and the
server then replays only the events stored after K: none is lost, none counts twice.
Files appear only once complete. The server may keep running meanwhile.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add put-event, put-items and the `events` group (`events export`)."""

    help_text = "record what a user just did with a video (PutEvents)"
    parser = subparsers.add_parser(
        "put-event",
        help=help_text,
        description=help_text,
        epilog=PUT_EVENT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--user", default="", metavar="ID", help="user id (default: an anonymous visitor)"
    )
    parser.add_argument(
        "--session",
        required=True,
        type=non_empty,
        metavar="ID",
        help="session id, at most 256 characters (required)",
    )
    parser.add_argument("--item", required=True, type=non_empty, metavar="ID", help="video id")
    parser.add_argument(
        "--type",
        required=True,
        type=non_empty,
        metavar="EVENT_TYPE",
        help="event type, e.g. watched or clicked",
    )
    parser.add_argument(
        "--value",
        type=finite_float,
        metavar="NUMBER",
        help="event value, e.g. the share of the video watched",
    )
    parser.add_argument(
        "--event-id", default="", metavar="ID", help="unique id of this event (de-duplication)"
    )
    parser.add_argument(
        "--recommendation-id",
        default="",
        metavar="ID",
        help="the recommendation_id of the answer that showed the video",
    )
    parser.add_argument(
        "--impression",
        default="",
        metavar="ID,ID,...",
        help="comma-separated ids of the videos shown with it (at most 25)",
    )
    parser.add_argument(
        "--sent-at",
        type=sent_at,
        metavar="WHEN",
        help="when it happened: ISO-8601 (UTC unless it has an offset) or epoch seconds "
        "(default: now)",
    )
    add_target(parser)
    add_connection_security(parser)
    add_call_timeout(parser)
    parser.set_defaults(handler=run_put_event)

    help_text = "add or replace catalog videos from an items.csv (PutItems)"
    parser = subparsers.add_parser(
        "put-items",
        help=help_text,
        description=help_text,
        epilog=PUT_ITEMS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--file",
        required=True,
        type=existing_file,
        metavar="ITEMS_CSV",
        help="items.csv as `recs prepare` writes it",
    )
    add_target(parser)
    add_connection_security(parser)
    add_call_timeout(parser)
    add_no_progress(parser)
    parser.set_defaults(handler=run_put_items)

    _register_events_group(subparsers)


def _register_events_group(subparsers: argparse._SubParsersAction) -> None:
    help_text = "the local engine's stored real-time events (export them for training)"
    group = subparsers.add_parser("events", help=help_text, description=help_text)
    commands = group.add_subparsers(dest="events_command", metavar="COMMAND", required=True)
    help_text = (
        "write the events (and items) stored by a local server as interactions.csv "
        "(items.csv) rows, for `recs train --events` or a Personalize incremental import"
    )
    parser = commands.add_parser(
        "export",
        help=help_text,
        description=help_text,
        epilog=EVENTS_EXPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--state",
        required=True,
        type=Path,
        metavar="DIR",
        help="the server's [local] state_dir (default <model_dir>-state)",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="FILE",
        help="events file to write (interactions.csv columns), with its sidecar FILE.json",
    )
    parser.add_argument(
        "--items-out",
        type=Path,
        metavar="FILE",
        help="also write the stored items, the last version of each id (items.csv columns)",
    )
    add_no_progress(parser)
    parser.set_defaults(handler=run_events_export)


# put-event ----------------------------------------------------------------------------------


def sent_at(text: str) -> datetime | float:
    """An argparse `type=`: epoch seconds, or ISO-8601 (naive means UTC) as an aware datetime."""
    from recs.client.types import timestamp

    value: datetime | float
    try:
        value = float(text)
    except ValueError:
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected ISO-8601 (2024-05-01T12:00:00Z) or epoch seconds, got {text!r}"
            ) from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
    else:
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected epoch seconds, got {text!r}")
    try:
        timestamp(value)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{text!r} is outside the years 1 to 9999") from None
    return value


def run_put_event(args: argparse.Namespace) -> int:
    """Handler of `recs put-event`."""
    from recs.client import Event, RecsError

    event = Event(
        event_type=args.type,
        item_id=args.item,
        sent_at=args.sent_at,
        event_id=args.event_id,
        event_value=args.value,
        recommendation_id=args.recommendation_id,
        impression=[i.strip() for i in args.impression.split(",") if i.strip()],
    )
    try:
        with connect(args) as client:
            client.put_events(args.session, [event], user_id=args.user)
    except RecsError as exc:
        return fail("recs put-event", f"{exc.code.name}: {exc.message}")
    who = f"user {args.user}" if args.user else "an anonymous visitor"
    print(f"sent 1 event: {args.type} {args.item} by {who} in session {args.session}")
    return 0


# put-items ----------------------------------------------------------------------------------


class CatalogFileError(ValueError):
    """The file cannot be read as an items.csv; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class CatalogRow:
    """One item of the file and the lines it spans (a quoted field may span several)."""

    first_line: int
    last_line: int
    item: CatalogItem


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A row that is not sent, and why."""

    line: int
    reason: str


def read_catalog(file: BinaryIO, name: str) -> Iterator[CatalogRow | SkippedRow]:
    """The rows of an items.csv (opened in binary), in order: items, and the rows that
    cannot be items.

    Raises CatalogFileError (naming `name` and the line) for a file without an ITEM_ID
    column, text that is not UTF-8, or CSV that cannot be parsed.
    """
    from recs.client import CatalogItem

    reader = csv.reader(_text_lines(file, name))
    try:
        header = [column.strip() for column in next(reader, [])]
        if ID_COLUMN not in header:
            raise CatalogFileError(
                f"{name}: the header lacks {ID_COLUMN} (expected the items.csv of "
                f"`recs prepare`: ITEM_ID,TITLE,URL,CATEGORIES,...)"
            )
        while True:
            first_line = reader.line_num + 1
            row = next(reader, None)
            if row is None:
                return
            if not row:
                continue  # a blank line
            if len(row) > len(header):
                yield SkippedRow(first_line, f"{len(row)} fields, the header has {len(header)}")
                continue
            values = dict(zip(header, row, strict=False))
            item_id = values.pop(ID_COLUMN, "")
            if not item_id.strip():
                yield SkippedRow(first_line, f"no {ID_COLUMN}")
                continue
            title = values.pop(TITLE_COLUMN, "")
            url = values.pop(URL_COLUMN, "")
            properties = {column: value for column, value in values.items() if value != ""}
            yield CatalogRow(
                first_line, reader.line_num, CatalogItem(item_id, title, url, properties)
            )
    except csv.Error as exc:
        raise CatalogFileError(f"{name}: line {reader.line_num}: {exc}") from None


def _text_lines(file: BinaryIO, name: str) -> Iterator[str]:
    """The lines of `file`, with their line ends, as text; decoded one by one, so a byte
    that is not UTF-8 is reported on its own line (a UTF-8 character never holds a \\n byte).
    """
    for number, line in enumerate(file, start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CatalogFileError(
                f"{name}: line {number}: not UTF-8 text ({exc.reason})"
            ) from None
        yield text.removeprefix("\ufeff") if number == 1 else text


@dataclass(slots=True)
class PutItemsTally:
    """What put-items did so far, for its summary line."""

    items: int = 0
    calls: int = 0
    skipped: int = 0

    def summary(self) -> str:
        """`sent N items in K calls`, with the skipped rows if there were any."""
        text = f"sent {self.items:,} {_plural(self.items, 'item')} in {self.calls:,} "
        text += _plural(self.calls, "call")
        if self.skipped:
            text += f", skipped {self.skipped:,} {_plural(self.skipped, 'row')}"
        return text


def run_put_items(args: argparse.Namespace) -> int:
    """Handler of `recs put-items`."""
    from recs.client import RecsError
    from recs.pipeline.progress import byte_progress

    path: Path = args.file
    prog = "recs put-items"
    tally = PutItemsTally()
    batch: list[CatalogRow] = []
    total_bytes = path.stat().st_size
    try:
        with (
            path.open("rb") as raw,
            connect(args) as client,
            byte_progress("sending items", enabled=not args.no_progress) as update,
        ):

            def send() -> None:
                client.put_items([row.item for row in batch])
                tally.items += len(batch)
                tally.calls += 1
                batch.clear()
                update(raw.tell(), total_bytes, tally.items)

            for row in read_catalog(raw, str(path)):
                if isinstance(row, SkippedRow):
                    tally.skipped += 1
                    print(f"{path}:{row.line}: skipped: {row.reason}", file=sys.stderr)
                    continue
                batch.append(row)
                if len(batch) == ITEMS_PER_CALL:
                    send()
            if batch:
                send()
            update(total_bytes, total_bytes, tally.items)
    except CatalogFileError as exc:
        fail(prog, exc)
        print(tally.summary() + ", stopped")
        return 1
    except RecsError as exc:
        fail(prog, _refused(path, batch, exc))
        print(tally.summary() + f", stopped at line {batch[0].first_line}")
        return 1
    print(tally.summary())
    return 0


# `items[3].title: ...`: the server names the item by its index in the call.
_ITEM_INDEX = re.compile(r"^items\[(\d+)\]")


def _refused(path: Path, batch: list[CatalogRow], error: RecsError) -> str:
    """The service's refusal of `batch`, naming the lines it held (and the bad one)."""
    first, last = batch[0].first_line, batch[-1].last_line
    text = f"{path}: lines {first}-{last} were not stored: {error.code.name}: {error.message}"
    named = _ITEM_INDEX.match(error.message)
    if named and int(named.group(1)) < len(batch):
        index = int(named.group(1))
        text += f" (items[{index}] is line {batch[index].first_line})"
    return text


# events export ------------------------------------------------------------------------------


def run_events_export(args: argparse.Namespace) -> int:
    """Handler of `recs events export`."""
    import sqlite3

    from recs.backends.errors import ModelLoadError
    from recs.backends.local.export import (
        NoStateDirError,
        count_events,
        export_events,
        export_items,
        open_state,
        sidecar_path,
    )
    from recs.pipeline.progress import row_progress

    prog = "recs events export"
    out: Path = args.out
    items_out: Path | None = args.items_out
    if items_out is not None and items_out.resolve() in (
        out.resolve(),
        sidecar_path(out).resolve(),
    ):
        return fail(prog, f"--items-out {items_out}: the same file as --out or its sidecar", 2)
    try:
        store = open_state(args.state)
    except NoStateDirError as exc:
        return fail(prog, exc, 2)
    except ModelLoadError as exc:
        return fail(prog, exc)
    try:
        total = count_events(args.state) or 0
        with row_progress("exporting events", total, enabled=not args.no_progress) as advance:
            events = export_events(store, out, advance=advance)
        items = export_items(store, items_out) if items_out is not None else None
    except OSError as exc:
        return fail(prog, f"cannot write: {exc}")
    except sqlite3.Error as exc:
        return fail(prog, f"cannot read the event store in {args.state}: {exc}")
    finally:
        store.close()
    if items is not None:
        print(items.summary())
    print(events.summary())
    return 0


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"
