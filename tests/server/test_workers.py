"""`recs serve --workers 2`: two processes on one port, ready once, clean stop on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from recs.client import RecsClient
from tests.backends.contract import TINY_DATASET
from tests.test_end_to_end import ENV, RECS, free_port, run_recs, wait_serving


def worker_pids(pid: int) -> list[int]:
    """Child processes of `pid` that are spawned workers (not multiprocessing's tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    commands = {int(c): Path(f"/proc/{c}/cmdline").read_bytes().decode() for c in children}
    return [c for c, command in commands.items() if "spawn_main" in command]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "model"
    done = run_recs("train", "--data", str(TINY_DATASET), "--out", str(out), "--factors", "8")
    assert done.returncode == 0, done.stderr
    return out


def test_two_workers_serve_one_port_and_stop_cleanly(model_dir: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*RECS, "serve", "--backend", "local", "--model", str(model_dir), "--port", str(port),
         "--workers", "2", "--grace", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    try:
        ready = process.stdout.readline() if process.stdout else ""
        assert ready.startswith(f"ready: 127.0.0.1:{port}") and "workers=2" in ready
        wait_serving(f"127.0.0.1:{port}")
        assert len(worker_pids(process.pid)) == 2
        for _ in range(2):  # one channel per client: connections spread over the workers
            with RecsClient(f"127.0.0.1:{port}") as client:
                assert len(client.recommend("u01", 3).items) == 3
                assert client.popular(2).item_ids
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert stderr.count("stopped") >= 2  # each worker drained and stopped
    assert "[worker 0]" in stderr and "[worker 1]" in stderr


def test_a_worker_that_cannot_start_stops_the_service(tmp_path: Path) -> None:
    done = run_recs(
        "serve", "--backend", "local", "--model", str(tmp_path / "missing"),
        "--port", str(free_port()), "--workers", "2",
    )  # fmt: skip
    assert done.returncode == 2
    assert "model directory not found" in done.stderr
    assert "ready:" not in done.stdout
