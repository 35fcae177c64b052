"""The product as a user runs it: `recs train`, `recs serve` in its own process, the CLI.

Covers start-up (NOT_SERVING until loaded, then SERVING), refusal to start on a missing or
corrupt model, one request log line per call, and SIGTERM draining to exit status 0.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from recs.client import RecsClient
from tests.backends.contract import TINY_DATASET

RECS = [str(Path(sys.executable).parent / "recs")]  # the installed console command
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_recs(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*RECS, *args], capture_output=True, text=True, env=ENV, timeout=timeout)


def wait_serving(target: str, deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < end:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"{target} did not report SERVING within {deadline}s")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "model"
    done = run_recs("train", "--data", str(TINY_DATASET), "--out", str(out), "--factors", "8")
    assert done.returncode == 0, done.stderr
    assert (out / "meta.json").is_file()
    return out


@pytest.fixture(scope="module")
def served(model_dir: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    process = subprocess.Popen(
        [
            *RECS,
            "serve",
            "--backend",
            "local",
            "--model",
            str(model_dir),
            "--catalog",
            str(TINY_DATASET / "items.csv"),
            "--port",
            str(port),
            "--grace",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    target = f"127.0.0.1:{port}"
    try:
        wait_serving(target)
        yield target, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_queries_against_a_served_model(served: tuple[str, subprocess.Popen]) -> None:
    target, _ = served
    done = run_recs("recommend", "--user", "u01", "-n", "3", "--json", "--target", target)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert len(answer["items"]) == 3
    assert answer["recommendation_id"]
    with RecsClient(target) as client:
        seen = {"a1", "a2", "a3", "p"}
        recommended = client.recommend("u01", 25)
        assert seen.isdisjoint(recommended.item_ids)
        assert client.similar("a1", 5).item_ids[0] != "a1"
        assert client.popular(3).items[0].title  # enriched from items.csv

    done = run_recs("popular", "-n", "2", "--target", target)
    assert done.returncode == 0
    assert "rank" in done.stdout and "item_id" in done.stdout

    done = run_recs("recommend", "--user", "", "--target", target)
    assert done.returncode == 1
    assert "INVALID_ARGUMENT: user_id: is required" in done.stderr


def test_sigterm_drains_and_exits_zero(served: tuple[str, subprocess.Popen]) -> None:
    target, process = served
    with RecsClient(target) as client:
        client.popular(1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "stopped" in stderr
    # the request log's last summary, written on the way out: calls per status, latency
    summaries = [line for line in stderr.splitlines() if "recs.requests: GetPopularItems" in line]
    assert summaries, stderr
    summary = re.compile(r"GetPopularItems [1-9][\d,]* calls in .* OK [1-9].*p99 [\d.]+ ms")
    assert summary.search(summaries[-1]), summaries


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_bad_model_stops_start_up(model_dir: Path, tmp_path: Path, damage: str) -> None:
    broken = tmp_path / "model"
    if damage == "corrupt":
        subprocess.run(["cp", "-r", str(model_dir), str(broken)], check=True)
        victim = next(p for p in sorted(broken.iterdir()) if p.suffix in (".npy", ".npz"))
        victim.write_bytes(b"not numpy")
    done = run_recs("serve", "--backend", "local", "--model", str(broken), "--port", "0")
    assert done.returncode == 2
    assert str(broken) in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreadable_catalog_stops_start_up(model_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "items.csv"
    done = run_recs(
        "serve", "--backend", "local", "--model", str(model_dir), "--catalog", str(missing),
        "--port", "0",
    )  # fmt: skip
    assert done.returncode == 2
    assert str(missing) in done.stderr
    assert "Traceback" not in done.stderr
