"""`recs train`: options, summary line, exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recs.backends.local.artifacts import load_model
from recs.cli.main import main


def test_train_command(tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"factors": 4, "iterations": 3, "alpha": 5.0}))
    status = main(
        [
            "train",
            "--data", str(tiny_dataset),
            "--out", str(tmp_path / "model"),
            "--params", str(params),
            "--iterations", "2",
            "--event-weight", "shared=0.25",
            "--event-weight", "watched=3",
            "--no-progress",
        ]
    )  # fmt: skip
    assert status == 0
    out = capsys.readouterr().out
    assert "9 users x 9 items on 33 interactions" in out
    assert "MiB" in out
    trained = load_model(tmp_path / "model").meta["params"]
    assert (trained["factors"], trained["iterations"], trained["alpha"]) == (4, 2, 5.0)
    assert trained["event_weights"] == {
        "watched": 3.0,
        "clicked": 1.0,
        "Watch": 2.0,
        "Click": 1.0,
        "shared": 0.25,
    }


def test_missing_dataset_exits_non_zero(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    status = main(["train", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "m")])
    assert status == 1
    assert "interactions.csv" in caplog.text
    assert not (tmp_path / "m").exists()


def test_malformed_dataset_exits_non_zero(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "interactions.csv").write_text("USER_ID,ITEM_ID\nu1,a\n")
    status = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m")])
    assert status == 1
    assert "TIMESTAMP" in caplog.text


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--event-weight", "watched"], "TYPE=WEIGHT"),
        (["--event-weight", "watched=-1"], "TYPE=WEIGHT"),
        (["--event-weight", "=2"], "TYPE=WEIGHT"),
        (["--factors", "0"], "factors"),
    ],
)
def test_bad_options_exit_2(
    tiny_dataset: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    option: list[str],
    message: str,
) -> None:
    args = ["train", "--data", str(tiny_dataset), "--out", str(tmp_path / "m"), *option]
    assert main(args) == 2
    assert message in caplog.text
