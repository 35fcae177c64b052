"""The page's local files: a user's history from the dataset, the figures of an evaluation."""

from __future__ import annotations

import json
import re

import pytest

from recs.pipeline.dataset import DatasetError
from recs.ui.evaluation import (
    ChartBar,
    EvaluationFileError,
    Figure,
    chart_bars,
    load_figures,
    short_metric_name,
)
from recs.ui.history import History, HistoryEntry
from tests.ui.conftest import TINY_DATASET


@pytest.fixture(scope="module")
def history() -> History:
    return History.load(TINY_DATASET)


def test_recent_history_is_newest_first_with_titles_and_events(history):
    entries, total = history.recent("u07", limit=3)

    assert total == 6
    assert entries == [
        HistoryEntry("b3", "Backflip on skis", "watched", 1700006500),
        HistoryEntry("b3", "Backflip on skis", "clicked", 1700006400),
        HistoryEntry("b3", "Backflip on skis", "watched", 1700006300),
    ]


def test_equal_timestamps_show_the_later_row_first(tmp_path):
    (tmp_path / "interactions.csv").write_text(
        "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\n"
        "u1,first,100,clicked,0.1\nu1,second,100,watched,0.9\nu1,old,50,watched,1\n"
    )
    entries, _ = History.load(tmp_path).recent("u1")

    assert [e.item_id for e in entries] == ["second", "first", "old"]
    assert entries[0].title == ""  # no items.csv: no titles


def test_unknown_user_has_no_history(history):
    assert history.recent("nobody") == ([], 0)


def test_pick_lists_rank_users_by_activity_and_videos_by_title(history):
    assert history.active_users(limit=3) == ["u07", "u01", "u02"]
    assert history.titled_items()[:3] == ["b3", "b1", "b2"]  # Backflip, Bicycle, Buzzer
    assert history.title("p") == "Everyone watches this"


def test_missing_dataset_names_the_file(tmp_path):
    with pytest.raises(DatasetError, match=r"interactions\.csv: file not found"):
        History.load(tmp_path)


def test_every_number_of_an_evaluation_is_a_figure_named_by_its_keys(tmp_path):
    path = tmp_path / "eval.json"
    path.write_text(
        json.dumps(
            {
                "ks": [5, 10],
                "system": "local",
                "complete": True,
                "split": {"test_user_fraction": 0.1},
                "results": {
                    "local": {"metrics": {"precision_at_5": 0.2, "coverage": 0.0}},
                    "popularity": {"metrics": {"precision_at_5": 0.1}, "test_users": 61},
                },
                "lift": {"popularity": {"precision_at_5": 1.0}},
            }
        )
    )

    figures = load_figures(path)

    assert [(f.name, f.value, f.whole) for f in figures] == [
        ("ks.[0]", 5.0, True),
        ("ks.[1]", 10.0, True),
        ("split.test_user_fraction", 0.1, False),
        ("results.local.metrics.precision_at_5", 0.2, False),
        ("results.local.metrics.coverage", 0.0, False),
        ("results.popularity.metrics.precision_at_5", 0.1, False),
        ("results.popularity.test_users", 61.0, True),
        ("lift.popularity.precision_at_5", 1.0, False),
    ]
    # Only the metrics are charted, one series per evaluated system.
    assert chart_bars(figures) == [
        ChartBar("local", "precision_at_5", 0.2),
        ChartBar("local", "coverage", 0.0),
        ChartBar("popularity", "precision_at_5", 0.1),
    ]


def test_a_file_without_metrics_keys_charts_its_fractions():
    figures = [
        Figure(("precision",), 0.3),
        Figure(("run", "recall"), 0.5),
        Figure(("users",), 1.0, whole=True),
        Figure(("seconds",), 12.5),
    ]

    assert chart_bars(figures) == [ChartBar("", "precision", 0.3), ChartBar("run", "recall", 0.5)]


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("normalized_discounted_cumulative_gain_at_10", "ndcg@10"),
        ("mean_reciprocal_rank_at_25", "mrr@25"),
        ("precision_at_5", "precision@5"),
        ("coverage", "coverage"),
    ],
)
def test_chart_labels_shorten_personalizes_metric_names(name, label):
    assert short_metric_name(name) == label


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        ('{"precision": 0.1,', "not JSON (line 1, column"),
        ('{"backend": "local"}', "holds no numbers"),
    ],
)
def test_unusable_evaluation_files_are_named(tmp_path, content, message):
    path = tmp_path / "eval.json"
    if content is not None:
        path.write_text(content)

    with pytest.raises(EvaluationFileError, match=re.escape(message)) as error:
        load_figures(path)
    assert str(path) in str(error.value)
