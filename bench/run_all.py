"""`make bench`: run every bench/bench_*.py script in turn and show what each prints.

Each script runs in its own process (so one's memory does not colour the next one's
figures) with single-threaded BLAS. A failing script is reported and the others still
run; the exit status is non-zero if any failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(BENCH_DIR.glob("bench_*.py"))
    if not scripts:
        print(f"no bench_*.py script in {BENCH_DIR}")
        return 1
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    failed = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        started = time.perf_counter()
        status = subprocess.run(
            [sys.executable, str(script)], cwd=BENCH_DIR.parent, env=env
        ).returncode
        seconds = time.perf_counter() - started
        print(
            f"== {script.name}: {'ok' if status == 0 else f'FAILED ({status})'} "
            f"in {seconds:.0f} s\n",
            flush=True,
        )
        if status != 0:
            failed.append(script.name)
    print(
        f"{len(scripts) - len(failed)} of {len(scripts)} benchmarks succeeded"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
