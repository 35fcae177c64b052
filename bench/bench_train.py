"""Benchmark `recs train` end to end against implicit's `fit` alone on the same matrix.

Both run in child processes on the benchmark dataset (see big_model.py: 10M interactions,
200k users, 50k items) with the same parameters (the defaults, 64 factors): first
`recs train` as an operator runs it (read CSV, map ids, confidences, ALS, similar items,
save), then this script's `--fit-only` mode, which builds the same confidence matrix
untimed and times `AlternatingLeastSquares.fit` alone. Wall time, CPU time and peak RSS
come from each child's own rusage (os.wait4).

Goal: `recs train` within 1.5x of the fit alone, i.e. reading, mapping ids and saving
must not dominate. Both runs share the machine with whatever else runs (load printed).

Usage: python bench/bench_train.py [--fit-only DATASET_DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from big_model import ensure_dataset, machine_line, recs_command, recs_env

GOAL_RATIO = 1.5


def run_child(args: list[str]) -> tuple[float, float, int, str]:
    """(wall s, CPU s, peak RSS bytes, stdout) of a child process that must succeed."""
    started = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=recs_env())
    out = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, out


def fit_only(data_dir: Path) -> None:
    """Child mode: build the training matrix untimed, then time implicit's fit alone."""
    from recs.backends.local.params import TrainParams
    from recs.backends.local.train import interaction_matrix, new_als
    from recs.pipeline.dataset import read_interactions

    params = TrainParams()
    matrix, _, _ = interaction_matrix(read_interactions(data_dir), params)
    matrix.eliminate_zeros()  # what `recs train` fits on
    als = new_als(params)
    started = time.perf_counter()
    als.fit(matrix, show_progress=False)
    print(json.dumps({"fit_seconds": time.perf_counter() - started, "nnz": matrix.nnz}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fit_only:
        fit_only(args.fit_only)
        return 0

    dataset = ensure_dataset()
    print(machine_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-train-", dir=dataset.parent) as tmp:
        wall, cpu, peak, _ = run_child(
            [*recs_command(), "train", "--data", str(dataset), "--out", f"{tmp}/model",
             "--no-progress"]
        )  # fmt: skip
        meta = json.loads((Path(tmp) / "model" / "meta.json").read_text())
    print(
        f"recs train end to end: {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS "
        f"{peak / 2**20:,.0f} MiB ({meta['counts']['interactions']:,} interactions, "
        f"{meta['counts']['users']:,} users, {meta['counts']['items']:,} items, "
        f"{meta['params']['factors']} factors, {meta['params']['iterations']} iterations)",
        flush=True,
    )
    fit_wall, fit_cpu, fit_peak, out = run_child(
        [sys.executable, __file__, "--fit-only", str(dataset)]
    )
    fit_seconds = json.loads(out.strip().splitlines()[-1])["fit_seconds"]
    print(
        f"implicit ALS fit alone: {fit_seconds:.1f} s (its process: {fit_wall:.1f} s wall, "
        f"{fit_cpu:.1f} s CPU, peak RSS {fit_peak / 2**20:,.0f} MiB)"
    )
    print(
        f"ratio recs train / fit alone: {wall / fit_seconds:.2f} (goal <= {GOAL_RATIO}); "
        f"{machine_line()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
