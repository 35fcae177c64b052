"""Benchmark `recs prepare`: rows per second and peak memory on 1M and 10M generated rows.

For each size, `recs synth` (in this process) writes a raw watch log into a temporary
directory, then `recs prepare` runs in a child process; its wall time, CPU time and peak
resident memory (the child's own getrusage, via os.wait4) are printed. Start-up time
(`recs prepare --help`) is measured once and shown apart: it is paid once per run.

Goal: at least 1,000,000 rows/s and under 2 GiB peak on a 10M-row log (2-core machine).
The machine's load average is printed too: other jobs sharing the cores slow wall time,
not CPU time.

Usage: python bench/bench_prepare.py [--sizes 1000000 10000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from recs.pipeline.synth import SynthConfig, synthesize

GOAL_ROWS_PER_SECOND = 1_000_000
GOAL_PEAK_BYTES = 2 << 30


def run_child(args: list[str]) -> tuple[float, float, int]:
    """Run a command; returns (wall seconds, CPU seconds, peak RSS bytes) of that child."""
    started = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed with status {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--keep", type=Path, help="work here and keep the files")
    args = parser.parse_args()
    recs = [sys.executable, "-m", "recs.cli.main"]

    startup, startup_cpu, _ = run_child([*recs, "prepare", "--help"])
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
        f"recs start-up {startup:.2f} s"
    )
    print(
        f"{'rows':>12} {'synth s':>8} {'MB':>6} {'wall s':>7} {'rows/s':>11} "
        f"{'rows/s*':>11} {'cpu s':>7} {'rows/cpu-s*':>12} {'peak MiB':>9}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        work = args.keep or Path(tmp)
        for rows in args.sizes:
            raw = work / f"raw-{rows}"
            started = time.perf_counter()
            config = SynthConfig(
                users=max(rows // 20, 10), items=max(rows // 50, 10), events=rows, seed=1
            )
            log, _ = synthesize(config, raw)
            synth_seconds = time.perf_counter() - started
            wall, cpu, peak = run_child(
                [
                    *recs,
                    "prepare",
                    "--watch-log",
                    str(log),
                    "--out",
                    str(work / f"ds-{rows}"),
                    "--no-progress",
                ]
            )
            print(
                f"{rows:>12,} {synth_seconds:>8.1f} {log.stat().st_size / 1e6:>6.0f} "
                f"{wall:>7.2f} {rows / wall:>11,.0f} {rows / max(wall - startup, 1e-9):>11,.0f} "
                f"{cpu:>7.2f} {rows / max(cpu - startup_cpu, 1e-9):>12,.0f} {peak / 2**20:>9,.0f}"
            )
    print(
        "* excludes start-up; rows/cpu-s counts every thread's CPU time, which other jobs "
        "on the machine do not inflate. "
        f"Goals: {GOAL_ROWS_PER_SECOND:,} rows/s, peak under {GOAL_PEAK_BYTES / 2**30:.0f} GiB."
    )


if __name__ == "__main__":
    main()
