"""The page's local files: a user's history from the dataset, the figures of an evaluation."""

from __future__ import annotations

import json
import re

import pytest

from pipeline.dataset import DatasetError
from tests.ui.conftest import TINY_DATASET
from ui.evaluation import EvaluationFileError, Figure, load_figures
from ui.history import History, HistoryEntry


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
    assert history.interaction_count == 33


def test_missing_dataset_names_the_file(tmp_path):
    with pytest.raises(DatasetError, match=r"interactions\.csv: file not found"):
        History.load(tmp_path)


def test_every_number_of_an_evaluation_is_a_figure_grouped_by_its_keys(tmp_path):
    path = tmp_path / "eval.json"
    path.write_text(
        json.dumps(
            {
                "k": [5, 10],
                "users": 61,
                "recommendations": {"precision_at_5": 0.2, "coverage": 0.0},
                "ranking": {"ranking_auc": 0.75},
                "seconds": 12.5,
                "backend": "local",
                "complete": True,
            }
        )
    )

    figures = load_figures(path)

    assert figures == [
        Figure("k", "[0]", 5.0, whole=True),
        Figure("k", "[1]", 10.0, whole=True),
        Figure("", "users", 61.0, whole=True),
        Figure("recommendations", "precision_at_5", 0.2),
        Figure("recommendations", "coverage", 0.0),
        Figure("ranking", "ranking_auc", 0.75),
        Figure("", "seconds", 12.5),
    ]
    assert [f.name for f in figures if f.is_rate] == ["precision_at_5", "coverage", "ranking_auc"]


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
