"""`recs prepare`: rejections, duplicates, accounting, remapped columns, errors, outputs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import recs.pipeline.watchlog as watchlog
from recs.cli.main import main
from recs.pipeline.dataset import ITEM_COLUMNS, read_interactions, read_items
from recs.pipeline.items import CatalogFormat
from recs.pipeline.prepare import PrepareError, PrepareOptions, prepare
from recs.pipeline.watchlog import WatchLogColumns, WatchLogError, WatchLogFormat

GOOD = "u1,v1,1700000000,20,30"
LONG_ID = "u" * 257


WATCH_LOG_HEADER = "user_id,item_id,timestamp,watch_duration,video_duration"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "pipeline"


@pytest.fixture
def write_log(tmp_path: Path):
    """write_log(*rows, header=..., name=...) -> path of a CSV file with those lines."""

    def write(*rows: str, header: str = WATCH_LOG_HEADER, name: str = "log.csv") -> Path:
        path = tmp_path / name
        path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
        return path

    return write


def run(log: Path, out: Path, **kwargs) -> object:
    return prepare(PrepareOptions(watch_log=log, out_dir=out, **kwargs))


@pytest.mark.parametrize(
    ("bad_row", "reason"),
    [
        ("u9,v9,1700000000,20", "wrong number of fields"),
        (",,,,", "empty row"),
        (",v9,1700000000,20,30", "missing user_id"),
        ("u9,,1700000000,20,30", "missing item_id"),
        (f"{LONG_ID},v9,1700000000,20,30", "user_id longer than 256 characters"),
        ("u9,v9,,20,30", "missing timestamp"),
        ("u9,v9,yesterday,20,30", "unparseable timestamp"),
        ("u9,v9,1700000000000,20,30", "timestamp out of range (before 1970 or after 2100)"),
        ("u9,v9,1700000000,,30", "missing watch_duration"),
        ("u9,v9,1700000000,twenty,30", "non-numeric watch_duration"),
        ("u9,v9,1700000000,nan,30", "non-numeric watch_duration"),
        ("u9,v9,1700000000,-1,30", "negative watch_duration"),
        ("u9,v9,1700000000,20,", "missing video_duration"),
        ("u9,v9,1700000000,20,30s", "non-numeric video_duration"),
        ("u9,v9,1700000000,20,-30", "negative video_duration"),
        ("u9,v9,1700000000,20,0", "zero video_duration"),
    ],
)
def test_each_bad_row_is_rejected_with_its_reason_and_line(write_log, tmp_path, bad_row, reason):
    log = write_log(GOOD, bad_row, "u2,v1,1700000001,5,30")
    result = run(log, tmp_path / "out")
    assert dict(result.rejects.counts) == {reason: 1}
    assert [r.line for r in result.rejects.first] == [3]
    assert (result.rows_read, result.written, result.rejected) == (3, 2, 1)


def test_line_numbers_count_malformed_and_blank_lines(write_log, tmp_path):
    log = write_log(
        GOOD,  # line 2
        "u2,v2,1700000000",  # line 3: too few fields
        "",  # line 4: blank
        "u3,v3,1700000000,20,0",  # line 5: zero duration
        "u4,v4,1700000000,20,30,extra",  # line 6: too many fields
        "u5,v5,soon,20,30",  # line 7
    )
    rejects = tmp_path / "rejects.csv"
    result = run(log, tmp_path / "out", rejects_file=rejects)
    assert [(r.line, r.reason) for r in result.rejects.first] == [
        (3, "wrong number of fields"),
        (4, "empty row"),
        (5, "zero video_duration"),
        (6, "wrong number of fields"),
        (7, "unparseable timestamp"),
    ]
    with rejects.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["line"] for row in rows] == ["3", "4", "5", "6", "7"]
    assert rows[2]["video_duration"] == "0" and rows[2]["user_id"] == "u3"
    assert "u4,v4,1700000000,20,30,extra" in rows[3]["raw"]


def test_rejects_file_holds_every_rejected_row_beyond_those_shown(write_log, tmp_path):
    bad = [f"u{i},v1,1700000000,x,30" for i in range(12)]
    rejects = tmp_path / "rejects.csv"
    result = run(write_log(GOOD, *bad), tmp_path / "out", rejects_file=rejects)
    assert len(result.rejects.first) == 5
    with rejects.open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 12


def test_duplicates_collapse_across_blocks_and_the_books_balance(write_log, tmp_path, monkeypatch):
    monkeypatch.setattr(watchlog, "BLOCK_BYTES", 64)  # a few rows per block
    rows = [f"u{i % 7},v{i % 5},{1700000000 + i},{i % 30},30" for i in range(40)]
    duplicates = [rows[0], rows[3], rows[39], "u0,v0,1700000000,0.0,30.0", rows[3]]
    bad = ["u1,v1,bad,1,30", "u1,v1"]
    result = run(write_log(*rows, *duplicates, *bad), tmp_path / "out")
    assert result.duplicates == 5  # "0.0"/"30.0" equal "0"/"30" once parsed
    assert result.rejected == 2
    assert result.rows_read == 47
    assert result.rows_read == result.written + result.rejected + result.duplicates
    assert read_interactions(tmp_path / "out").num_rows == 40


def test_timestamps_in_iso_8601_and_milliseconds(write_log, tmp_path):
    log = write_log(
        "u1,v1,2024-01-02T03:04:05Z,20,30",
        "u1,v2,2024-01-02 03:04:05.999,20,30",
        "u1,v3,2024-01-02T05:04:05+02:00,20,30",
        "u1,v4,2024-01-02,20,30",
        "u1,v5,1704164645,20,30",
    )
    run(log, tmp_path / "out")
    stamps = read_interactions(tmp_path / "out").column("TIMESTAMP").to_pylist()
    assert stamps == [1704164645, 1704164645, 1704164645, 1704153600, 1704164645]

    millis = write_log("u1,v1,1704164645123,20,30", name="ms.csv")
    run(millis, tmp_path / "ms", log_format=WatchLogFormat(timestamp_unit="ms"))
    assert read_interactions(tmp_path / "ms").column("TIMESTAMP").to_pylist() == [1704164645]


def test_kuairand_shaped_log_reads_with_remapped_columns(tmp_path):
    fmt = WatchLogFormat(
        columns=WatchLogColumns(item="video_id", watch="play_time_ms", duration="duration_ms"),
        duration_unit="ms",
        default_timestamp=1714521600,
    )
    result = run(FIXTURES / "kuairand_shaped.csv", tmp_path / "out", log_format=fmt)
    assert dict(result.rejects.counts) == {"zero duration_ms": 2}
    assert [r.line for r in result.rejects.first] == [6, 10]
    table = read_interactions(tmp_path / "out")
    assert table.column("EVENT_TYPE").to_pylist() == [
        "clicked", "watched", "clicked", "watched", "watched",
        "clicked", "watched", "watched", "watched", "clicked",
    ]  # fmt: skip
    assert set(table.column("TIMESTAMP").to_pylist()) == {1714521600}
    assert table.column("EVENT_VALUE").to_pylist()[3] == 3.0  # a re-watch keeps its ratio


def test_duration_unit_does_not_change_the_ratio(write_log, tmp_path):
    log = write_log("u1,v1,1700000000,20000,30000")
    run(log, tmp_path / "ms", log_format=WatchLogFormat(duration_unit="ms"))
    value = read_interactions(tmp_path / "ms").column("EVENT_VALUE").to_pylist()
    assert value == pytest.approx([2 / 3])


def test_cli_remaps_kuairand_columns(tmp_path, capsys):
    status = main(
        ["prepare", "--watch-log", str(FIXTURES / "kuairand_shaped.csv"),
         "--out", str(tmp_path / "out"), "--item-col", "video_id",
         "--watch-col", "play_time_ms", "--duration-col", "duration_ms",
         "--duration-unit", "ms", "--default-timestamp", "2024-05-01T00:00:00Z",
         "--no-progress"]
    )  # fmt: skip
    out = capsys.readouterr().out.strip().splitlines()
    assert status == 0
    assert out[-1].startswith("read 12 = written 10 + rejected 2 + duplicates 0;")
    assert any("line 6: zero duration_ms" in line for line in out)


def test_log_without_timestamps_needs_an_explicit_default(tmp_path, capsys):
    status = main(
        ["prepare", "--watch-log", str(FIXTURES / "kuairand_shaped.csv"),
         "--out", str(tmp_path / "out"), "--item-col", "video_id",
         "--watch-col", "play_time_ms", "--duration-col", "duration_ms", "--no-progress"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1
    assert "lacks required column(s) timestamp" in err
    assert "--default-timestamp" in err


def test_default_timestamp_is_refused_when_the_log_has_timestamps(write_log, tmp_path):
    fmt = WatchLogFormat(default_timestamp=1700000000)
    with pytest.raises(WatchLogError, match="drop --default-timestamp"):
        run(write_log(GOOD), tmp_path / "out", log_format=fmt)


def test_missing_column_is_named(write_log, tmp_path, capsys):
    log = write_log("u1,v1,1700000000,20", header="user_id,item_id,timestamp,watch_duration")
    status = main(["prepare", "--watch-log", str(log), "--out", str(tmp_path / "o"),
                   "--no-progress"])  # fmt: skip
    assert status == 1
    assert "lacks required column(s) video_duration" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        (b"", "empty file"),
        (b"user_id,item_id,timestamp,watch_duration,video_duration\nu1,v\xff,1,2,3\n", "cannot"),
    ],
)
def test_unreadable_input_fails_with_a_message(tmp_path, capsys, content, message):
    log = tmp_path / "log.csv"
    if content is not None:
        log.write_bytes(content)
    status = main(["prepare", "--watch-log", str(log), "--out", str(tmp_path / "o"),
                   "--no-progress"])  # fmt: skip
    assert status == 1
    assert message in capsys.readouterr().err


def test_no_surviving_row_fails_and_leaves_no_dataset(write_log, tmp_path, capsys):
    log = write_log("u1,v1,1700000000,20,0", "u2,v2,never,1,2")
    with pytest.raises(PrepareError, match="no row survived"):
        run(log, tmp_path / "out")
    assert not (tmp_path / "out" / "interactions.csv").exists()
    status = main(["prepare", "--watch-log", str(log), "--out", str(tmp_path / "o"),
                   "--no-progress"])  # fmt: skip
    assert status == 1
    assert "no row survived" in capsys.readouterr().err


def test_output_is_personalize_csv_with_an_unquoted_header(write_log, tmp_path):
    run(write_log(GOOD, 'u2,"v,2",1700000001,1,30'), tmp_path / "out")
    text = (tmp_path / "out" / "interactions.csv").read_text().splitlines()
    assert text[0] == "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE"
    table = read_interactions(tmp_path / "out")
    assert table.column("ITEM_ID").to_pylist() == ["v1", "v,2"]
    assert table.column("TIMESTAMP").type == "int64"


def test_minimum_data_warnings(write_log, tmp_path):
    result = run(write_log(GOOD, "u1,v2,1700000001,1,30"), tmp_path / "out")
    assert any("Personalize needs at least 1,000" in w for w in result.warnings)
    assert any("1 users have 2 or more interactions" in w for w in result.warnings)
    assert (result.users, result.items, result.repeat_users) == (1, 2, 1)


def test_catalog_becomes_items_csv(write_log, tmp_path):
    catalog = write_log(
        'v1,"Cats, again",12.5,pets | comedy||,shortVideos/v1.mp4,2024-01-01T00:00:00Z',
        "v2,Song,30,music,https://cdn.example/v2.mp4,1704067200",
        "v2,Song again,30,music,,1704067200",  # duplicate id
        "v3,No time,30,music,,",  # missing creation time
        "v4,Bad length,-3,music,,1704067200",
        header="item_id,title,duration,categories,url,creation_time",
        name="catalog.csv",
    )
    log = write_log(GOOD, "u1,v9,1700000001,1,30")
    item_rejects = tmp_path / "item_rejects.csv"
    result = run(
        log,
        tmp_path / "out",
        items=catalog,
        item_rejects_file=item_rejects,
        catalog_format=CatalogFormat(url_base="https://bucket.s3.amazonaws.com/"),
    )
    items = read_items(tmp_path / "out")
    assert items.column_names == ITEM_COLUMNS
    assert items.to_pylist() == [
        {"ITEM_ID": "v1", "TITLE": "Cats, again",
         "URL": "https://bucket.s3.amazonaws.com/shortVideos/v1.mp4",
         "CATEGORIES": "pets|comedy", "DURATION": 12.5, "CREATION_TIMESTAMP": 1704067200},
        {"ITEM_ID": "v2", "TITLE": "Song", "URL": "https://cdn.example/v2.mp4",
         "CATEGORIES": "music", "DURATION": 30.0, "CREATION_TIMESTAMP": 1704067200},
    ]  # fmt: skip
    assert dict(result.catalog_rejects.counts) == {
        "duplicate item_id": 1,
        "missing creation_time": 1,
        "negative duration": 1,
    }
    assert [r.line for r in result.catalog_rejects.first] == [4, 5, 6]
    assert (result.catalog_rows, result.catalog_items) == (5, 2)
    assert len(item_rejects.read_text().splitlines()) == 4
    assert result.unknown_item_rows == 1  # v9 is not in the catalog
    assert (tmp_path / "out" / "items.schema.json").exists()
