"""The tuner: validation carved from training users only, never the holdout; usable output."""

from __future__ import annotations

import collections
import shutil

import pyarrow as pa
import pytest

import recs.evaluation.tune as tune_module
import recs.evaluation.validation as validation_module
from recs.backends.local.params import TrainParams
from recs.cli.main import main
from recs.evaluation import split as split_module
from recs.evaluation.split import read_test_users, split_interactions, write_split
from recs.evaluation.tune import tune, write_params
from recs.pipeline import dataset
from recs.pipeline.output import write_interactions
from tests.evaluation.conftest import make_interactions

FAST = TrainParams(factors=4, iterations=2, similar_neighbours=5)


@pytest.fixture(autouse=True)
def small_search_space(monkeypatch):
    """Keep every trial's ALS tiny: these tests are about the procedure, not the optimum."""
    monkeypatch.setattr(tune_module.SearchSpace, "FACTORS", (2, 6))
    monkeypatch.setattr(tune_module.SearchSpace, "ITERATIONS", (1, 3))


def rows(table: pa.Table) -> collections.Counter:
    columns = [table.column(c).to_pylist() for c in dataset.INTERACTION_COLUMNS]
    return collections.Counter(zip(*columns, strict=True))


@pytest.fixture
def split_dir(tmp_path):
    """A written split whose holdout directory has been deleted, and the holdout rows."""
    source = write_interactions(make_interactions(), tmp_path / "data")
    split = split_interactions(dataset.read_interactions(source), seed=3)
    out = write_split(split, tmp_path / "split", source, {"seed": 3})
    shutil.rmtree(out / "holdout")  # the tuner must not need it
    return out, split.holdout


@pytest.fixture
def spy(monkeypatch):
    """Records every table the tuner trains on and every user set it validates on."""
    trained: list[pa.Table] = []
    validation_users: list[set[str]] = []
    real_fit, real_split = validation_module.fit_model, validation_module.split_interactions

    def fit_model(table, params, *args, **kwargs):
        trained.append(table)
        return real_fit(table, params, *args, **kwargs)

    def split(table, *args, **kwargs):
        result = real_split(table, *args, **kwargs)
        validation_users.append(set(result.test_users))
        return result

    def no_holdout(*_args, **_kwargs):
        raise AssertionError("the tuner read the holdout")

    monkeypatch.setattr(validation_module, "fit_model", fit_model)
    monkeypatch.setattr(validation_module, "split_interactions", split)
    monkeypatch.setattr(split_module, "read_holdout", no_holdout)
    return trained, validation_users


@pytest.mark.parametrize("subdir", ["", "train"])
def test_tuner_never_sees_the_holdout_nor_validates_on_test_users(
    split_dir, spy, subdir, tmp_path
) -> None:
    out, holdout = split_dir
    trained, validation_users = spy
    base = write_params(FAST, tmp_path / "base.toml")
    status = main(
        [
            "tune", "--data", str(out / subdir), "--trials", "3", "--params", str(base),
            "--out", str(tmp_path / "p.json"),
        ]
    )  # fmt: skip
    assert status == 0
    held_out = rows(holdout)
    assert trained and all(not rows(table) & held_out for table in trained)
    test_users = set(read_test_users(out))
    assert len(validation_users) == 4  # two folds of search users, two of confirmation users
    assert all(users and not users & test_users for users in validation_users)
    all_users = [user for users in validation_users for user in users]
    assert len(all_users) == len(set(all_users))  # disjoint
    TrainParams.from_file(tmp_path / "p.json")  # `recs train --params` accepts it


def test_start_is_the_first_trial_and_the_winner_is_no_worse_on_confirmation_users() -> None:
    result = tune(make_interactions(), trials=4, base=FAST)
    assert len(result.trials) == 4
    assert result.default is result.trials[0]
    assert result.default.params == FAST
    assert result.chosen.confirm_score >= result.default.confirm_score
    best_searched = max(result.trials[1:], key=lambda t: t.score)
    assert best_searched.confirm_score is not None
    assert set(result.similar_scores) == {
        "cosine", "cosine+confidence", "bm25", "bm25+confidence", "als"
    }  # fmt: skip
    assert result.event_types == ["watched", "clicked"]


def test_same_seed_same_result() -> None:
    first = tune(make_interactions(), trials=3, base=FAST, seed=5)
    again = tune(make_interactions(), trials=3, base=FAST, seed=5)
    assert first.best == again.best
    assert [t.score for t in first.trials] == [t.score for t in again.trials]


def test_time_budget_stops_the_search() -> None:
    result = tune(make_interactions(), trials=None, time_budget=0.01, base=FAST)
    assert len(result.trials) == 2  # the defaults and one proposal, however short the budget


def test_unknown_metric_and_no_stopping_rule_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        tune(make_interactions(), trials=1, metric="ndcg")
    with pytest.raises(ValueError, match="time budget"):
        tune(make_interactions(), trials=None, time_budget=None)


@pytest.mark.parametrize("use_confidence", [False, True])
def test_neighbours_recomputed_by_the_tuner_match_training(use_confidence) -> None:
    interactions = make_interactions()
    params = FAST.model_copy(
        update={"similar_use_confidence": use_confidence, "recency_half_life": 3.0}
    )
    trained = validation_module.fit_model(interactions, params)
    matrix = validation_module.confidence_matrix(interactions, params)
    if not use_confidence:
        matrix.data[:] = 1.0
    indices, scores = validation_module.similar_neighbours(
        matrix, trained.item_factors, "cosine", params.similar_neighbours
    )
    assert (indices == trained.similar_indices).all()
    assert scores == pytest.approx(trained.similar_scores)


@pytest.mark.parametrize("name", ["best.json", "best.toml"])
def test_written_params_round_trip(tmp_path, name) -> None:
    params = TrainParams(factors=12, recency_half_life=7.5, event_weights={"liked": 0.5})
    assert TrainParams.from_file(write_params(params, tmp_path / name)) == params
    assert TrainParams.from_file(write_params(FAST, tmp_path / name)).recency_half_life is None


def test_train_with_tune_trains_the_tuned_parameters(split_dir, tmp_path, capsys) -> None:
    out, _ = split_dir
    model_dir = tmp_path / "model"
    status = main(
        [
            "train", "--data", str(out / "train"), "--out", str(model_dir), "--tune",
            "--trials", "2", "--no-progress", "--factors", "4", "--iterations", "2",
        ]
    )  # fmt: skip
    assert status == 0
    printed = capsys.readouterr().out
    assert "tuned in 2 trials" in printed and "trained" in printed
    assert (model_dir / "meta.json").is_file()
