"""Exploration's targeting on a tiny synthetic world, measured by bench/exploration.py: new
videos (their interactions dropped, created days before the newest event) must reach users
whose hidden tastes match their topics more often than the others."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from recs.pipeline.synth import SynthConfig

SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "exploration.py"


def _bench() -> ModuleType:
    name = "bench_exploration_script"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_new_videos_reach_matching_users_more_often(tmp_path: Path) -> None:
    bench = _bench()
    config = SynthConfig(users=300, items=120, events=15_000, seed=3)
    report = bench.run(config, 10, tmp_path, weights=(0.0, 0.3))
    off, on = report["weights"]
    assert report["new_videos"] == 10
    assert off["new_slot_share"] == 0.0 and off["match_rate"] == 0.0
    assert on["new_slot_share"] > 0.0
    # Pooled over (new video, user) pairs: appearances per pair, matching taste vs not.
    assert on["matching_pairs"] > 0 and on["other_pairs"] > 0
    assert on["match_ratio"] is not None and on["match_ratio"] > 1.5, on
