"""`recs ui`: options checked up front, settings handed to the page, Streamlit on localhost."""

from __future__ import annotations

from pathlib import Path

import pytest

import recs.ui
from recs.cli import ui as cli
from recs.cli.main import build_parser, main
from recs.ui.settings import UiSettings
from tests.ui.conftest import TINY_DATASET


def parse(*argv: str):
    return build_parser().parse_args(["ui", *argv])


def test_options_become_the_pages_settings(tmp_path):
    evaluation = tmp_path / "eval.json"
    evaluation.write_text("{}")
    args = parse(
        "--target", "h:1", "--compare-target", "h:2", "--data", str(TINY_DATASET),
        "--eval-json", str(evaluation), "--timeout", "2.5",
    )  # fmt: skip

    settings = cli.settings_from_args(args)

    assert settings == UiSettings("h:1", "h:2", TINY_DATASET.resolve(), evaluation, 2.5)
    assert UiSettings.from_env(settings.to_env()) == settings


def test_the_make_serve_dataset_is_the_default_when_it_exists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.settings_from_args(parse()).data_dir is None

    dataset = tmp_path / "build" / "serve" / "dataset"
    dataset.mkdir(parents=True)
    (dataset / "interactions.csv").write_text("USER_ID,ITEM_ID,TIMESTAMP\n")
    assert cli.settings_from_args(parse()).data_dir == dataset


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data", "nowhere"], "--data nowhere: no interactions.csv there"),
        (["--eval-json", "nowhere.json"], "--eval-json nowhere.json: file not found"),
    ],
)
def test_bad_options_are_named_and_nothing_starts(argv, message, capsys, monkeypatch):
    started = []
    monkeypatch.setattr(cli.subprocess, "Popen", lambda *a, **k: started.append(a))

    assert cli.run_ui(parse(*argv)) == 2

    assert message in capsys.readouterr().err
    assert started == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "0"], "argument --port: must be from 1 to 65535, got 0"),
        (["--timeout", "0"], "argument --timeout: must be positive, got 0.0"),
    ],
)
def test_bad_numbers_are_refused_while_parsing_and_nothing_starts(
    argv, message, capsys, monkeypatch
):
    started = []
    monkeypatch.setattr(cli.subprocess, "Popen", lambda *a, **k: started.append(a))

    with pytest.raises(SystemExit) as exited:
        main(["ui", *argv])

    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert started == []


def test_streamlit_runs_headless_on_localhost_without_usage_statistics():
    command = cli.streamlit_command(8600)

    def option(name: str) -> str:
        return command[command.index(name) + 1]

    assert command[1:4] == ["-m", "streamlit", "run"]
    assert Path(command[4]) == Path(recs.ui.__file__).with_name("app.py")
    assert option("--server.headless") == "true"
    assert option("--server.address") == "127.0.0.1"
    assert option("--server.port") == "8600"
    assert option("--browser.gatherUsageStats") == "false"
    assert option("--client.showErrorDetails") == "none"


def test_environment_defaults_for_a_bare_page():
    settings = UiSettings.from_env({})
    assert settings.compare_target == "" and settings.data_dir is None
    assert settings.eval_json is None and settings.timeout > 0
