"""`recs evaluate split|run|movielens` end to end on tiny data."""

from __future__ import annotations

import json

import pytest

from recs.backends.local.artifacts import save_model
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model
from recs.cli.main import main
from recs.pipeline.dataset import read_interactions
from recs.pipeline.output import write_interactions
from tests.evaluation.conftest import make_interactions


@pytest.fixture
def split_dir(tmp_path):
    data = write_interactions(make_interactions(), tmp_path / "data")
    assert main(["evaluate", "split", "--data", str(data), "--out", str(tmp_path / "split")]) == 0
    return tmp_path / "split"


def test_split_then_run_writes_table_json_and_chart(split_dir, tmp_path, capsys) -> None:
    model = fit_model(read_interactions(split_dir / "train"), TrainParams(factors=8, iterations=3))
    save_model(model, tmp_path / "model")
    status = main(
        [
            "evaluate", "run", "--split", str(split_dir), "--model", str(tmp_path / "model"),
            "--k", "5,10", "--negatives", "5", "--name", "tuned",
            "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.png"),
        ]
    )  # fmt: skip
    assert status == 0
    out = capsys.readouterr().out
    assert "ndcg@10" in out and "vs item_item_cosine" in out
    assert "evaluated 4 recommender(s) on 6 test users" in out
    document = json.loads((tmp_path / "r.json").read_text())
    assert set(document["results"]) == {"tuned", "popularity", "als_default", "item_item_cosine"}
    assert document["split"]["seed"] == 0 and document["ks"] == [5, 10]
    assert "precision_at_5" in document["results"]["tuned"]["metrics"]
    assert (tmp_path / "r.png").stat().st_size > 0


def test_run_on_a_directory_that_is_not_a_split(tmp_path, caplog) -> None:
    status = main(
        ["evaluate", "run", "--split", str(tmp_path), "--target", "127.0.0.1:1", "--no-baselines"]
    )
    assert status == 1
    assert "not a split directory" in caplog.text


def test_bad_k_is_rejected(split_dir, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["evaluate", "run", "--split", str(split_dir), "--target", "x:1", "--k", "0,5"])
    assert "each K must be between 1 and 500" in capsys.readouterr().err


def test_movielens_command(tmp_path, capsys) -> None:
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("userId,movieId,rating,timestamp\n1,10,5.0,100\n2,10,3.0,90\n")
    assert (
        main(["evaluate", "movielens", "--ratings", str(ratings), "--out", str(tmp_path / "o")])
        == 0
    )
    assert "converted 2 ratings of 2 users on 1 movies" in capsys.readouterr().out


def test_run_with_a_serve_config_file(split_dir, tmp_path, capsys) -> None:
    model = fit_model(read_interactions(split_dir / "train"), TrainParams(factors=8, iterations=3))
    save_model(model, tmp_path / "model")
    config = tmp_path / "serve.toml"
    config.write_text(f'backend = "local"\n\n[local]\nmodel_dir = "{tmp_path / "model"}"\n')
    status = main(
        ["evaluate", "run", "--split", str(split_dir), "--config", str(config), "--no-baselines"]
    )
    assert status == 0
    assert "evaluated 1 recommender(s) on 6 test users: local ndcg@10" in capsys.readouterr().out
