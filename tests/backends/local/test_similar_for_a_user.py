"""GetSimilarItems with a user: what that user watched is left out (the video-on-demand
recommenders' "Because you watched X" and "More like X"), events since training included."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa

from recs.backends.base import Event
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.backends.local.params import TrainParams
from recs.backends.local.train import train
from recs.pipeline.output import write_csv

NOW = 1_709_251_200
# Everyone watches a, b, c together; u1 also watched b; u2 only clicked b.
ROWS = [(f"x{k}", item, "watched") for k in range(6) for item in ("a", "b", "c", "d")] + [
    ("u1", "b", "watched"),
    ("u1", "d", "watched"),
    ("u2", "b", "clicked"),
    ("u2", "d", "watched"),
]


def _backend(tmp_path: Path) -> LocalBackend:
    data = tmp_path / "data"
    data.mkdir()
    write_csv(
        pa.table(
            {
                "USER_ID": [r[0] for r in ROWS],
                "ITEM_ID": [r[1] for r in ROWS],
                "TIMESTAMP": pa.array([NOW - k for k in range(len(ROWS))], pa.int64()),
                "EVENT_TYPE": [r[2] for r in ROWS],
            }
        ),
        data / "interactions.csv",
    )
    train(data, tmp_path / "model", TrainParams(factors=4, iterations=3, random_state=0))
    backend = LocalBackend(
        LocalBackendConfig(model_dir=tmp_path / "model", state_dir=tmp_path / "state")
    )
    backend.start()
    return backend


def test_what_the_user_watched_is_left_out_what_they_only_clicked_is_not(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    try:
        everyone = set(backend.similar_items("a", 3).item_ids)
        assert everyone == {"b", "c", "d"}
        assert set(backend.similar_items("a", 3, user_id="u1").item_ids) == {"c"}
        assert set(backend.similar_items("a", 3, user_id="u2").item_ids) == {"b", "c"}
        assert set(backend.similar_items("a", 3, user_id="stranger").item_ids) == everyone
        backend.put_events("u2", "s", [Event("watched", "c", float(NOW + 1))])
        deadline = time.monotonic() + 5
        while backend.events_applied("u2") < 1:
            assert time.monotonic() < deadline, "the event was not applied"
            time.sleep(0.01)
        assert backend.similar_items("a", 3, user_id="u2").item_ids == ["b"]
    finally:
        backend.close()
