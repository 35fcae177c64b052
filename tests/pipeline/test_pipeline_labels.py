"""The watched/clicked rule at its boundaries, alone and through `prepare`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recs.pipeline.dataset import read_interactions
from recs.pipeline.labels import label
from recs.pipeline.prepare import PrepareOptions, prepare

WATCH_LOG_HEADER = "user_id,item_id,timestamp,watch_duration,video_duration"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "pipeline"


@pytest.fixture
def write_log(tmp_path: Path):
    """write_log(*rows, header=..., name=...) -> path of a CSV file with those lines."""

    def write(*rows: str, header: str = WATCH_LOG_HEADER, name: str = "log.csv") -> Path:
        path = tmp_path / name
        path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
        return path

    return write


def test_exactly_at_threshold_is_clicked_and_just_above_is_watched():
    labels = label(np.array([0.5, np.nextafter(0.5, 1.0), 0.0, 0.49]), threshold=0.5)
    assert labels.event_type.to_pylist() == ["clicked", "watched", "clicked", "clicked"]
    assert labels.watched == 1


def test_threshold_is_configurable():
    labels = label(np.array([0.3, 0.7]), threshold=0.25)
    assert labels.event_type.to_pylist() == ["watched", "watched"]


def test_rewatches_are_watched_keep_their_ratio_and_are_capped():
    labels = label(np.array([1.0, 3.0, 12.0]), threshold=0.5, max_event_value=5.0)
    assert labels.event_type.to_pylist() == ["watched", "watched", "watched"]
    assert labels.event_value.tolist() == [1.0, 3.0, 5.0]
    assert labels.rewatched == 2
    assert labels.capped == 1


def test_prepare_applies_the_rule_and_rejects_zero_duration(write_log, tmp_path):
    log = write_log(
        "u1,v1,1700000000,15,30",  # exactly half: clicked
        "u1,v2,1700000001,15.03,30",  # just above: watched
        "u2,v1,1700000002,90,30",  # re-watched three times
        "u2,v3,1700000003,5,0",  # zero duration: no ratio
    )
    result = prepare(PrepareOptions(watch_log=log, out_dir=tmp_path / "out"))
    table = read_interactions(tmp_path / "out")
    assert table.column("EVENT_TYPE").to_pylist() == ["clicked", "watched", "watched"]
    assert table.column("EVENT_VALUE").to_pylist() == pytest.approx([0.5, 0.501, 3.0])
    assert result.rejects.counts == {"zero video_duration": 1}
    assert result.rewatched == 1
