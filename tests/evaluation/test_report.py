"""Report renderings: lift, JSON (NaN as null), the terminal table and the PNG chart."""

from __future__ import annotations

import json
import math

import pytest
from rich.console import Console

from recs.evaluation.report import lift, plot, print_table, short_name, to_json, write_json
from recs.evaluation.run import EvaluationResult

RESULTS = [
    EvaluationResult(
        "tuned",
        {"normalized_discounted_cumulative_gain_at_10": 0.3, "ranking_auc": float("nan")},
    ),
    EvaluationResult(
        "popularity",
        {"normalized_discounted_cumulative_gain_at_10": 0.2, "ranking_auc": 0.7},
    ),
    EvaluationResult("empty", {"normalized_discounted_cumulative_gain_at_10": 0.0}),
]


def test_lift_is_relative_and_undefined_over_zero() -> None:
    assert lift(0.3, 0.2) == pytest.approx(0.5)
    assert math.isnan(lift(0.3, 0.0))


def test_json_holds_results_and_lift_with_nan_as_null(tmp_path) -> None:
    document = to_json(RESULTS, {"ks": [10]})
    assert document["system"] == "tuned"
    assert document["ks"] == [10]
    ndcg = "normalized_discounted_cumulative_gain_at_10"
    assert document["lift"]["popularity"][ndcg] == pytest.approx(0.5)
    assert document["lift"]["empty"][ndcg] is None
    write_json(tmp_path / "r.json", RESULTS, {})
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["results"]["tuned"]["metrics"]["ranking_auc"] is None


def test_table_shows_every_metric_and_the_lift() -> None:
    console = Console(record=True, width=200)
    print_table(RESULTS, "title", console=console)
    text = console.export_text()
    assert "ndcg@10" in text and "ranking_auc" in text
    assert "+50.0%" in text and "vs popularity" in text


def test_plot_writes_a_png(tmp_path) -> None:
    plot(tmp_path / "chart.png", RESULTS)
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_short_names() -> None:
    assert short_name("normalized_discounted_cumulative_gain_at_25") == "ndcg@25"
    assert short_name("mean_reciprocal_rank_at_25") == "mrr@25"
    assert short_name("coverage") == "coverage"
