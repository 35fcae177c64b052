"""`recs synth`: determinism, the raw formats `prepare` reads, and learnable taste signal."""

from __future__ import annotations

import csv
import re

import numpy as np
import pyarrow.csv as pacsv
import pytest

import recs.pipeline.synth as synth
from recs.cli.main import main
from recs.pipeline.prepare import PrepareOptions, prepare
from recs.pipeline.synth import SynthConfig, build_world, synthesize

SMALL = SynthConfig(users=60, items=40, events=3000, seed=3)


def test_same_seed_same_bytes_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "CHUNK_EVENTS", 700)  # several chunks
    first = synthesize(SMALL, tmp_path / "a")
    second = synthesize(SMALL, tmp_path / "b")
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
    other = synthesize(SynthConfig(users=60, items=40, events=3000, seed=4), tmp_path / "c")
    assert other[0].read_bytes() != first[0].read_bytes()


def test_raw_files_have_the_documented_columns(tmp_path):
    log, catalog = synthesize(SMALL, tmp_path)
    with log.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["user_id", "item_id", "timestamp", "watch_duration", "video_duration"]
    assert len(rows) == SMALL.events
    stamps = [int(r["timestamp"]) for r in rows]
    assert stamps == sorted(stamps)
    assert max(stamps) - min(stamps) > 7 * 86_400  # spread over weeks
    with catalog.open(newline="") as handle:
        items = list(csv.DictReader(handle))
    assert list(items[0]) == ["item_id", "title", "duration", "categories", "url", "creation_time"]
    assert len(items) == SMALL.items
    for item in items:
        assert item["url"] == (
            f"https://recs-demo-videos.s3.amazonaws.com/shortVideos/{item['item_id']}.mp4"
        )
        assert 5 <= int(item["duration"]) <= 180
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", item["creation_time"])


def test_output_prepares_cleanly_with_both_labels(tmp_path):
    log, catalog = synthesize(SMALL, tmp_path / "raw")
    result = prepare(PrepareOptions(watch_log=log, out_dir=tmp_path / "ds", items=catalog))
    assert result.rejected == 0 and result.catalog_rejected == 0
    assert result.written + result.duplicates == SMALL.events
    assert 0.2 < result.watched / result.written < 0.8
    assert result.rewatched > 0
    assert result.unknown_item_rows == 0


def test_watch_share_follows_taste(tmp_path):
    config = SynthConfig(users=200, items=100, events=20_000, seed=5)
    log, _ = synthesize(config, tmp_path)
    world = build_world(config)
    table = pacsv.read_csv(log)
    user = np.array([int(u[1:]) - 1 for u in table.column("user_id").to_pylist()])
    item = np.array([int(i[1:]) - 1 for i in table.column("item_id").to_pylist()])
    ratio = table.column("watch_duration").to_numpy() / table.column("video_duration").to_numpy()
    liking = world.user_taste[user, world.item_topic[item]]
    loved = liking > np.quantile(liking, 0.75)
    disliked = liking < np.quantile(liking, 0.25)
    assert (ratio[loved] > 0.5).mean() > (ratio[disliked] > 0.5).mean() + 0.3


def test_without_drift_the_bytes_are_those_of_a_world_without_it(tmp_path):
    """Drift draws from streams of its own: drift 0 writes what a config without it writes."""
    plain = synthesize(SMALL, tmp_path / "plain")
    zero = synthesize(
        SynthConfig(users=60, items=40, events=3000, seed=3, drift=0.0), tmp_path / "z"
    )
    assert plain[0].read_bytes() == zero[0].read_bytes()
    drifted = synthesize(
        SynthConfig(users=60, items=40, events=3000, seed=3, drift=1.0), tmp_path / "d"
    )
    assert drifted[0].read_bytes() != plain[0].read_bytes()


def _topic_picks(log, world) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = pacsv.read_csv(log)
    user = np.array([int(u[1:]) - 1 for u in table.column("user_id").to_pylist()])
    item = np.array([int(i[1:]) - 1 for i in table.column("item_id").to_pylist()])
    share = np.linspace(0.0, 1.0, len(user))  # the log is in time order
    return user, world.item_topic[item], share


def test_with_drift_late_picks_follow_the_new_taste(tmp_path):
    config = SynthConfig(users=200, items=100, events=20_000, seed=5, drift=1.0)
    log, _ = synthesize(config, tmp_path)
    world = build_world(config)
    user, topic, share = _topic_picks(log, world)
    old, new = world.user_taste[user, topic], world.user_new_taste[user, topic]
    early, late = share < 0.2, share > 0.8
    # Early picks are of topics the first taste likes; late ones of topics the new one likes.
    assert old[early].mean() > new[early].mean() + 0.1
    assert new[late].mean() > old[late].mean() + 0.1


def test_drift_must_be_a_share():
    with pytest.raises(ValueError, match="--drift must be between 0 and 1"):
        SynthConfig(drift=1.5)


def test_cli_writes_both_files(tmp_path, capsys):
    status = main(["synth", "--out", str(tmp_path), "--users", "5", "--items", "4",
                   "--events", "50", "--seed", "1", "--no-progress"])  # fmt: skip
    assert status == 0
    assert (tmp_path / "watch_log.csv").exists() and (tmp_path / "items.csv").exists()
    assert "wrote 50 events" in capsys.readouterr().out


@pytest.mark.parametrize("field", ["users", "items", "events", "days"])
def test_sizes_must_be_positive(field):
    with pytest.raises(ValueError, match=f"--{field}"):
        SynthConfig(**{field: 0})
