"""The benchmark model: `recs synth` data with 200k users, 50k items, 10M events, 64 factors.

Built once under build/bench/ (raw log, prepared dataset, trained model, its precomputed
top-25 answers) by the real commands and reused while present; `make clean` removes it.
Each step's wall time is printed when it runs, so the first `make bench` says where its
minutes went.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_BUILD = ROOT / "build" / "bench"
USERS, ITEMS, EVENTS, FACTORS = 200_000, 50_000, 10_000_000, 64

RAW_DIR = BENCH_BUILD / "raw"
DATASET_DIR = BENCH_BUILD / "dataset"
MODEL_DIR = BENCH_BUILD / "model"


def recs_command() -> list[str]:
    """The `recs` console command of the interpreter running the benchmark."""
    return [str(Path(sys.executable).parent / "recs")]


def recs_env() -> dict[str, str]:
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _step(name: str, args: list[str]) -> None:
    started = time.perf_counter()
    subprocess.run([*recs_command(), *args], check=True, env=recs_env(), stdout=subprocess.DEVNULL)
    print(f"  built {name} in {time.perf_counter() - started:.0f} s", flush=True)


def ensure_dataset() -> Path:
    """The prepared dataset directory (interactions.csv, items.csv), built if missing."""
    if not (RAW_DIR / "watch_log.csv").is_file():
        _step(
            "raw watch log",
            [
                "synth", "--out", str(RAW_DIR), "--users", str(USERS), "--items", str(ITEMS),
                "--events", str(EVENTS), "--seed", "7", "--no-progress",
            ],
        )  # fmt: skip
    if not (DATASET_DIR / "interactions.csv").is_file():
        _step(
            "dataset",
            [
                "prepare", "--watch-log", str(RAW_DIR / "watch_log.csv"),
                "--items", str(RAW_DIR / "items.csv"), "--out", str(DATASET_DIR), "--no-progress",
            ],
        )  # fmt: skip
    return DATASET_DIR


def stored_format_version(model_dir: Path) -> object:
    """The format_version in model_dir's meta.json; None when missing or unreadable."""
    try:
        return json.loads((model_dir / "meta.json").read_text()).get("format_version")
    except (OSError, ValueError, AttributeError):
        return None


def ensure_model() -> tuple[Path, Path]:
    """(model directory, catalog items.csv) of the benchmark model, built if missing or if
    stored in another format_version than this code reads (retrained and precomputed anew:
    `recs train` replaces the whole directory, precomputed answers included)."""
    from recs.backends.local.answers import NORMALIZERS_FILE
    from recs.backends.local.artifacts import FORMAT_VERSION

    dataset = ensure_dataset()
    stored = stored_format_version(MODEL_DIR)
    if stored != FORMAT_VERSION:
        if (MODEL_DIR / "meta.json").is_file():
            print(
                f"  benchmark model is format_version {stored!r}, this code reads "
                f"{FORMAT_VERSION}: retraining",
                flush=True,
            )
        _step(
            "model",
            [
                "train", "--data", str(dataset), "--out", str(MODEL_DIR),
                "--factors", str(FACTORS), "--no-progress",
            ],
        )  # fmt: skip
    # answers_normalizers.npy: tables precomputed before it existed are computed again.
    if not all((MODEL_DIR / name).is_file() for name in ("answers.json", NORMALIZERS_FILE)):
        _step("precomputed answers", ["precompute", "--model", str(MODEL_DIR)])
    return MODEL_DIR, dataset / "items.csv"


def machine_line() -> str:
    """nproc, CPU model and current load average, printed above every figure table."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"machine: {os.cpu_count()} cores, {model}; load average {load}"
