"""`recs events export` and `recs train --events`: summary lines, files, exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recs.backends.base import CatalogItem, Event
from recs.backends.local.artifacts import load_model
from recs.backends.local.event_store import DB_FILE, EventStore
from recs.cli.main import build_parser, main
from tests.backends.contract import TINY_DATASET

FAST = ["--factors", "4", "--iterations", "2", "--no-progress"]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A state directory holding three events (one anonymous) and two versions of an item."""
    state = tmp_path / "model-state"
    store = EventStore(state).open()
    try:
        store.append_events(
            "newbie",
            "s-1",
            [Event("watched", "a1", 1_700_300_000.5, event_value=0.9), Event("clicked", "b1", 2e9)],
        )
        store.append_events(None, "anon-1", [Event("watched", "p", 1_700_300_002)])
        store.append_items([CatalogItem("v1", "Old"), CatalogItem("v1", "New")])
    finally:
        store.close()
    return state


def export(state: Path, out: Path, *extra: str) -> int:
    return main(["events", "export", "--state", str(state), "--out", str(out), *extra])


def test_export_writes_the_events_the_sidecar_and_a_summary(
    state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out, items = tmp_path / "out" / "events.csv", tmp_path / "out" / "items.csv"

    status = export(state_dir, out, "--items-out", str(items), "--no-progress")

    assert status == 0
    assert capsys.readouterr().out.splitlines() == [
        f"exported 1 item (2 stored versions) -> {items}",
        f"exported 3 events (seq 1..3) -> {out}",
    ]
    assert out.read_text().splitlines() == [
        "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE",
        '"newbie","a1",1700300000,"watched",0.9',
        '"newbie","b1",2000000000,"clicked",',
        '"anon-1","p",1700300002,"watched",',
    ]
    sidecar = json.loads((tmp_path / "out" / "events.csv.json").read_text())
    assert sidecar == {"through_seq": 3, "state_dir": str(state_dir.resolve()), "events": 3}
    assert items.read_text().splitlines()[1].startswith('"v1","New"')


def test_export_of_a_missing_state_dir_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    missing = tmp_path / "nowhere"
    assert export(missing, tmp_path / "e.csv") == 2
    assert f"recs events export: {missing}: no such state directory" in capsys.readouterr().err
    assert not missing.exists()
    assert not (tmp_path / "e.csv").exists()


def test_export_of_a_dir_without_store_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert export(tmp_path, tmp_path / "e.csv") == 2
    assert DB_FILE in capsys.readouterr().err
    assert not (tmp_path / DB_FILE).exists()


def test_items_out_must_differ_from_out(state_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "e.csv"
    assert export(state_dir, out, "--items-out", str(out)) == 2
    assert export(state_dir, out, "--items-out", str(tmp_path / "e.csv.json")) == 2
    assert not out.exists()


def test_events_needs_a_subcommand() -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["events"])
    assert exited.value.code == 2


def test_train_with_exported_events(
    state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "events.csv"
    assert export(state_dir, out, "--no-progress") == 0
    capsys.readouterr()

    args = ["train", "--data", str(TINY_DATASET), "--out", str(tmp_path / "m")]
    status = main([*args, "--events", str(out), *FAST])

    assert status == 0
    assert (
        "on 36 interactions (of which 3 exported events, through seq 3)" in capsys.readouterr().out
    )
    model = load_model(tmp_path / "m")
    assert model.meta["events"] == {"through_seq": 3, "files": [str(out)], "count": 3}
    assert {"newbie", "anon-1"} <= set(model.user_ids.tolist())


def test_train_refuses_events_without_sidecar(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "events.csv"
    out.write_text("USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\nu1,a1,1,watched,\n")
    args = ["train", "--data", str(TINY_DATASET), "--out", str(tmp_path / "m"), "--events"]
    assert main([*args, str(out), *FAST]) == 1
    assert f"{out}: no sidecar events.csv.json" in caplog.text
    assert not (tmp_path / "m").exists()


def test_train_with_a_missing_events_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ["train", "--data", str(TINY_DATASET), "--out", str(tmp_path / "m")]
    with pytest.raises(SystemExit) as exited:
        main([*args, "--events", str(tmp_path / "nope.csv")])
    assert exited.value.code == 2
    assert "nope.csv: no such readable file" in capsys.readouterr().err
