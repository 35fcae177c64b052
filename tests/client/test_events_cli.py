"""`recs put-event` and `recs put-items`, against a recording server."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import grpc
import pytest

from recs.cli.main import build_parser, main
from tests.client.recording import RecordingServicer

HEADER = ["ITEM_ID", "TITLE", "URL", "CATEGORIES", "DURATION", "CREATION_TIMESTAMP"]


def write_items(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    """An items.csv as `recs prepare` writes it."""
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def numbered_rows(count: int) -> list[list[str]]:
    return [
        [f"v{i}", f"Video {i}", f"https://v.example/{i}", "comedy|pets", "42.5", "1714564800"]
        for i in range(1, count + 1)
    ]


def put_items(recording: RecordingServicer, path: Path, *extra: str) -> int:
    return main(["put-items", "--file", str(path), "--target", recording.target, *extra])


# put-event ----------------------------------------------------------------------------------


def test_put_event_sends_every_option(recording: RecordingServicer, capsys) -> None:
    status = main(
        [
            "put-event", "--user", "u42", "--session", "s-1", "--item", "v7", "--type", "watched",
            "--value", "0.8", "--event-id", "e-1", "--recommendation-id", "rid-1",
            "--impression", "v7, v8,,v9", "--sent-at", "2024-05-01T12:00:00Z",
            "--target", recording.target,
        ]
    )  # fmt: skip

    assert status == 0
    assert capsys.readouterr().out.startswith("sent 1 event: watched v7 by user u42")
    (request,) = recording.requests
    assert (request.user_id, request.session_id) == ("u42", "s-1")
    (event,) = request.events
    assert (event.event_type, event.item_id, event.event_id) == ("watched", "v7", "e-1")
    assert event.HasField("event_value") and event.event_value == 0.8
    assert event.recommendation_id == "rid-1"
    assert list(event.impression) == ["v7", "v8", "v9"]
    assert (event.sent_at.seconds, event.sent_at.nanos) == (1_714_564_800, 0)


def test_put_event_without_user_is_an_anonymous_session_stamped_now(
    recording: RecordingServicer, capsys
) -> None:
    before = time.time()
    status = main(
        ["put-event", "--session", "s-9", "--item", "v1", "--type", "clicked",
         "--target", recording.target]
    )  # fmt: skip

    assert status == 0
    assert "by an anonymous visitor in session s-9" in capsys.readouterr().out
    (request,) = recording.requests
    assert request.user_id == "" and request.session_id == "s-9"
    (event,) = request.events
    assert not event.HasField("event_value") and event.event_id == ""
    assert before - 1 <= event.sent_at.seconds + event.sent_at.nanos / 1e9 <= time.time() + 1


@pytest.mark.parametrize(
    ("text", "seconds", "nanos"),
    [
        ("1714564800", 1_714_564_800, 0),
        ("1714564800.5", 1_714_564_800, 500_000_000),
        ("2024-05-01T12:00:00", 1_714_564_800, 0),  # no offset: UTC
        ("2024-05-01 12:00:00Z", 1_714_564_800, 0),
        ("2024-05-01T14:00:00+02:00", 1_714_564_800, 0),
        ("2024-05-01T12:00:00.25Z", 1_714_564_800, 250_000_000),
        ("2024-05-01", 1_714_521_600, 0),
    ],
)
def test_sent_at_takes_iso_8601_or_epoch_seconds(
    recording: RecordingServicer, text: str, seconds: int, nanos: int
) -> None:
    status = main(
        ["put-event", "--session", "s", "--item", "v1", "--type", "watched",
         "--sent-at", text, "--target", recording.target]
    )  # fmt: skip

    assert status == 0
    stamp = recording.requests[0].events[0].sent_at
    assert (stamp.seconds, stamp.nanos) == (seconds, nanos)


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["--item", "v1", "--type", "watched"], "the following arguments are required: --session"),
        (["--session", "s", "--type", "watched"], "the following arguments are required: --item"),
        (["--session", "s", "--item", "v1"], "the following arguments are required: --type"),
        (["--session", " ", "--item", "v1", "--type", "w"], "argument --session: must not be"),
        (["--session", "s", "--item", "", "--type", "w"], "argument --item: must not be empty"),
        (["--session", "s", "--item", "v", "--type", "w", "--value", "lots"], "argument --value"),
        (["--session", "s", "--item", "v", "--type", "w", "--value", "nan"], "finite number"),
        (
            ["--session", "s", "--item", "v", "--type", "w", "--sent-at", "yesterday"],
            "argument --sent-at: expected ISO-8601 (2024-05-01T12:00:00Z) or epoch seconds",
        ),
        (
            ["--session", "s", "--item", "v", "--type", "w", "--sent-at", "1e20"],
            "argument --sent-at: '1e20' is outside the years 1 to 9999",
        ),
        (["--session", "s", "--item", "v", "--type", "w", "--timeout", "0"], "must be positive"),
    ],
)
def test_put_event_argument_errors_exit_2_before_any_call(
    recording: RecordingServicer, arguments: list[str], says: str, capsys
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["put-event", *arguments, "--target", recording.target])

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "recs put-event: error:" in err and says in err
    assert recording.requests == []


def test_put_event_refused_exits_1_with_the_servers_word(
    recording: RecordingServicer, capsys
) -> None:
    recording.failures[1] = (
        grpc.StatusCode.INVALID_ARGUMENT,
        "events[0].recommendation_id: is longer than 40 characters",
    )

    status = main(
        ["put-event", "--session", "s", "--item", "v1", "--type", "watched",
         "--recommendation-id", "r" * 41, "--target", recording.target]
    )  # fmt: skip

    assert status == 1
    assert capsys.readouterr().err.strip() == (
        "recs put-event: INVALID_ARGUMENT: events[0].recommendation_id: "
        "is longer than 40 characters"
    )


# put-items ----------------------------------------------------------------------------------


def test_put_items_sends_10_a_call_in_file_order(
    recording: RecordingServicer, tmp_path: Path, capsys
) -> None:
    path = write_items(tmp_path / "items.csv", numbered_rows(25))

    assert put_items(recording, path) == 0  # with the progress display

    assert [len(r.items) for r in recording.requests] == [10, 10, 5]
    sent = [item.item_id for r in recording.requests for item in r.items]
    assert sent == [f"v{i}" for i in range(1, 26)]
    assert capsys.readouterr().out.strip().splitlines()[-1] == "sent 25 items in 3 calls"


def test_put_items_maps_columns_to_fields_and_properties(
    recording: RecordingServicer, tmp_path: Path, capsys
) -> None:
    path = write_items(
        tmp_path / "items.csv",
        [
            ["v1", "First, with a comma", "https://v.example/1", "comedy|pets", "42.5", "1", "x"],
            ["v2", "", "", "", "", "", ""],
        ],
        header=[*HEADER, "LANGUAGE"],
    )

    assert put_items(recording, path, "--no-progress") == 0

    first, second = recording.requests[0].items
    assert (first.item_id, first.title, first.url) == (
        "v1",
        "First, with a comma",
        "https://v.example/1",
    )
    assert dict(first.properties) == {
        "CATEGORIES": "comedy|pets",
        "DURATION": "42.5",
        "CREATION_TIMESTAMP": "1",
        "LANGUAGE": "x",
    }
    # Empty cells are left out, not sent as empty strings.
    assert (second.item_id, second.title, second.url, dict(second.properties)) == ("v2", "", "", {})
    assert capsys.readouterr().out.strip() == "sent 2 items in 1 call"


def test_put_items_reports_and_skips_rows_without_item_id(
    recording: RecordingServicer, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "items.csv"
    path.write_text(
        "ITEM_ID,TITLE,URL\n"  # line 1
        "v1,One,u1\n"  # 2
        ',"A title\n'  # 3: no ITEM_ID, a title spanning two lines
        'over two lines",u\n'  # 4
        "\n"  # 5: blank, ignored
        "v2,Two,u2\n"  # 6
        "  ,Blank id,u\n"  # 7: no ITEM_ID
        "v3,Three,u3,extra\n"  # 8: more fields than the header
        "v4,Four,u4\n",  # 9
        encoding="utf-8",
    )

    assert put_items(recording, path, "--no-progress") == 0

    assert [i.item_id for i in recording.requests[0].items] == ["v1", "v2", "v4"]
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"{path}:3: skipped: no ITEM_ID",
        f"{path}:7: skipped: no ITEM_ID",
        f"{path}:8: skipped: 4 fields, the header has 3",
    ]
    assert captured.out.strip() == "sent 3 items in 1 call, skipped 3 rows"


def test_put_items_stops_at_the_first_refused_call_naming_its_lines(
    recording: RecordingServicer, tmp_path: Path, capsys
) -> None:
    path = write_items(tmp_path / "items.csv", numbered_rows(25))
    recording.failures[2] = (grpc.StatusCode.INVALID_ARGUMENT, "items[3].url: is too long")

    assert put_items(recording, path, "--no-progress") == 1

    assert len(recording.requests) == 2  # the third call is not made
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"recs put-items: {path}: lines 12-21 were not stored: "
        "INVALID_ARGUMENT: items[3].url: is too long (items[3] is line 15)"
    )
    assert captured.out.strip() == "sent 10 items in 1 call, stopped at line 12"


def test_put_items_unreachable_service_fails_on_the_first_call(tmp_path: Path, capsys) -> None:
    path = write_items(tmp_path / "items.csv", numbered_rows(3))

    status = main(
        ["put-items", "--file", str(path), "--target", "127.0.0.1:1", "--timeout", "1",
         "--no-progress"]
    )  # fmt: skip

    assert status == 1
    captured = capsys.readouterr()
    assert f"{path}: lines 2-4 were not stored: UNAVAILABLE" in captured.err
    assert captured.out.strip() == "sent 0 items in 0 calls, stopped at line 2"


def test_put_items_reads_a_byte_order_mark_and_crlf(
    recording: RecordingServicer, tmp_path: Path
) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes("\ufeffITEM_ID,TITLE\r\nv1,Caf\u00e9\r\n".encode())

    assert put_items(recording, path, "--no-progress") == 0

    (item,) = recording.requests[0].items
    assert (item.item_id, item.title) == ("v1", "Caf\u00e9")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "the header lacks ITEM_ID"),
        (b"ID,TITLE\nv1,One\n", "the header lacks ITEM_ID"),
        (b"ITEM_ID,TITLE\nv1,One\nv2,\xff\n", "line 3: not UTF-8 text"),
    ],
)
def test_put_items_unreadable_file_exits_1_naming_it(
    recording: RecordingServicer, tmp_path: Path, content: bytes, says: str, capsys
) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes(content)

    assert put_items(recording, path, "--no-progress") == 1

    assert recording.requests == []
    err = capsys.readouterr().err
    assert err.startswith(f"recs put-items: {path}: ") and says in err


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ([], "the following arguments are required: --file"),
        (["--file", "/no/such/items.csv"], "argument --file: /no/such/items.csv: no such readable"),
    ],
)
def test_put_items_argument_errors_exit_2(arguments: list[str], says: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["put-items", *arguments])

    assert exited.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "example"),
    [
        ("put-event", "recs put-event --user u42 --session s-9f2 --item v7 --type watched"),
        ("put-items", "recs put-items --file data/prepared/items.csv"),
    ],
)
def test_help_shows_examples_and_the_connection_options(command: str, example: str, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])

    out = capsys.readouterr().out
    assert example in out
    for option in ("--target HOST:PORT", "--tls-ca FILE", "--token TOKEN", "--timeout SECONDS"):
        assert option in out
