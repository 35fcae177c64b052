"""`recs recommend|similar|popular|trending|rerank --filter NAME --filter-value KEY=VALUE`, and
`recs trending` against a real server."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from recs.cli.main import build_parser, main
from tests.client.recording import RecordingServicer

# Each query command with its own required arguments.
COMMANDS = {
    "recommend": ["--user", "u1"],
    "similar": ["--item", "v7"],
    "popular": [],
    "trending": [],
    "rerank": ["--user", "u1", "--items", "v1,v2"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_filter_options_reach_the_service(
    recording: RecordingServicer, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            command, *COMMANDS[command], "--target", recording.target, "--json",
            "--filter", "by_category",
            "--filter-value", "CATEGORIES=comedy, gaming",
            "--filter-value", 'MOODS="calm","happy"',
        ]
    )  # fmt: skip

    assert status == 0
    assert json.loads(capsys.readouterr().out)["items"][0]["item_id"] == "v1"
    (request,) = recording.requests
    assert request.filter_name == "by_category"
    assert dict(request.filter_values) == {
        "CATEGORIES": '"comedy","gaming"',  # a plain list is quoted
        "MOODS": '"calm","happy"',  # Personalize's format is passed as is
    }


def test_without_filter_options_no_filter_is_sent(recording: RecordingServicer, capsys) -> None:
    assert main(["recommend", "--user", "u1", "--target", recording.target, "--json"]) == 0

    (request,) = recording.requests
    assert request.filter_name == "" and dict(request.filter_values) == {}


def test_filter_values_parse_into_key_and_personalize_value() -> None:
    args = build_parser().parse_args(
        ["popular", "--filter", "f", "--filter-value", "A=x", "--filter-value", 'B=x\\y,"z']
    )

    assert args.filter == "f"
    assert args.filter_values == [("A", '"x"'), ("B", r'"x\\y","\"z"')]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("CATEGORIES", "'CATEGORIES' is not KEY=VALUE"),
        ("=comedy", "'=comedy' has no KEY"),
        ("CATEGORIES=", "CATEGORIES= has no value"),
    ],
)
def test_a_malformed_filter_value_is_a_usage_error_naming_it(value, says, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["popular", "--filter", "f", "--filter-value", value])

    assert exited.value.code == 2
    assert f"recs popular: error: argument --filter-value: {says}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--filter-value", "A=x"], "argument --filter-value: needs --filter NAME"),
        (
            ["--filter", "f", "--filter-value", "A=x", "--filter-value", "A=y"],
            "argument --filter-value: A is given twice",
        ),
    ],
)
def test_filter_value_misuse_is_a_usage_error_before_any_call(
    recording: RecordingServicer, extra: list[str], says: str, capsys
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["rerank", "--user", "u1", "--items", "v1", "--target", recording.target, *extra])

    assert exited.value.code == 2
    assert f"recs rerank: error: {says}" in capsys.readouterr().err
    assert recording.requests == []


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_explains_filters_with_an_example(command: str, capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])

    out = capsys.readouterr().out
    assert "--filter NAME" in out and "--filter-value KEY=VALUE" in out
    examples = [line.strip() for line in out.splitlines() if "--filter by_category" in line]
    assert examples and all(line.startswith(f"recs {command} ") for line in examples)
    assert examples[0].endswith("--filter by_category --filter-value CATEGORIES=comedy,gaming")


def test_model_info_takes_no_filter(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["model-info", "--filter", "f"])

    assert exited.value.code == 2


# --- recs trending ----------------------------------------------------------------------------


def test_trending_sends_count_and_user(recording: RecordingServicer, capsys) -> None:
    status = main(["trending", "-n", "7", "--user", "u9", "--target", recording.target, "--json"])

    assert status == 0
    assert json.loads(capsys.readouterr().out)["items"][0]["item_id"] == "v1"
    (request,) = recording.requests
    assert type(request).__name__ == "GetTrendingItemsRequest"
    assert (request.num_results, request.user_id) == (7, "u9")
    assert request.filter_name == "" and dict(request.filter_values) == {}


def test_trending_defaults_to_the_servers_count_and_no_user(
    recording: RecordingServicer, capsys
) -> None:
    assert main(["trending", "--target", recording.target, "--json"]) == 0

    (request,) = recording.requests
    assert (request.num_results, request.user_id) == (0, "")  # 0 = the server's 25


async def test_trending_prints_the_servers_answer(target: str, capsys) -> None:
    # In a thread: the server answers on this test's event loop while the command runs.
    status = await asyncio.to_thread(main, ["trending", "-n", "3", "--target", target, "--json"])

    assert status == 0
    answer = json.loads(capsys.readouterr().out)
    assert [item["item_id"] for item in answer["items"]] == ["v4", "v3", "v2"]
    assert answer["recommendation_id"] == "rid-1"

    status = await asyncio.to_thread(main, ["trending", "-n", "2", "--target", target])

    assert status == 0
    table = capsys.readouterr().out
    assert "rid-1" in table and "v4" in table and "v3" in table and "v2" not in table


def test_a_trending_error_is_said_with_its_status(recording: RecordingServicer, capsys) -> None:
    recording.failures[1] = (
        grpc.StatusCode.FAILED_PRECONDITION,
        "the local backend has no trending recipe",
    )

    status = main(["trending", "--target", recording.target])

    assert status == 1
    assert capsys.readouterr().err.strip() == (
        "recs trending: FAILED_PRECONDITION: the local backend has no trending recipe"
    )
