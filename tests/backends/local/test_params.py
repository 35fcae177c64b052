"""TrainParams: defaults, files, and errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from recs.backends.local.params import ParamsError, TrainParams


def test_defaults_weigh_watched_above_clicked() -> None:
    params = TrainParams()
    assert params.factors == 64
    assert params.weight_of("watched") > params.weight_of("clicked")


def test_defaults_weigh_the_video_on_demand_types_as_watched_and_clicked() -> None:
    params = TrainParams()
    assert params.weight_of("Watch") == params.weight_of("watched") == 2.0
    assert params.weight_of("Click") == params.weight_of("clicked") == 1.0
    assert params.weight_of("WATCHED") == params.default_event_weight  # matched exactly


def test_an_unlisted_event_type_gets_the_default_weight() -> None:
    params = TrainParams(default_event_weight=0.5)
    assert params.weight_of("shared") == 0.5


def test_from_json_file(tmp_path: Path) -> None:
    path = tmp_path / "params.json"
    path.write_text('{"factors": 16, "event_weights": {"watched": 3, "clicked": 1}}')
    params = TrainParams.from_file(path)
    assert params.factors == 16
    assert params.event_weights == {"watched": 3.0, "clicked": 1.0}
    assert params.iterations == TrainParams().iterations


def test_from_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "params.toml"
    path.write_text('iterations = 3\nsimilar_method = "bm25"\n[event_weights]\nwatched = 4.0\n')
    params = TrainParams.from_file(path)
    assert (params.iterations, params.similar_method) == (3, "bm25")
    assert params.event_weights == {"watched": 4.0}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("p.json", '{"factor": 16}', "factor"),  # a typo is an error, not ignored
        ("p.json", '{"factors": 0}', "factors"),
        ("p.toml", 'similar_method = "magic"', "similar_method"),
        ("p.json", "{not json", "not valid JSON"),
        ("p.toml", "factors = = 3", "not valid TOML"),
        ("p.json", "[1, 2]", "top level"),
    ],
)
def test_bad_files_name_the_file_and_field(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ParamsError, match=message) as caught:
        TrainParams.from_file(path)
    assert str(path) in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="cannot read"):
        TrainParams.from_file(tmp_path / "absent.toml")
