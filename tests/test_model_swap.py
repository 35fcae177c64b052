"""SIGHUP swaps in the model retrained at the configured path without a failed call.

A real `recs serve` process (one worker and two), a client loop calling all the time, a
model retrained in place by `recs train`, then SIGHUP: every call succeeds, GetModelInfo
reports the new version; a broken model is refused and the old one keeps serving.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recs.client import RecsClient, RecsError
from tests.backends.contract import TINY_DATASET
from tests.test_end_to_end import ENV, RECS, free_port, run_recs, wait_serving


def train(out: Path, factors: int) -> None:
    done = run_recs(
        "train", "--data", str(TINY_DATASET), "--out", str(out), "--factors", str(factors)
    )
    assert done.returncode == 0, done.stderr


def version(target: str) -> str:
    with RecsClient(target) as client:  # a new connection: any worker may answer
        return client.model_info().details["model_version"]


class CallingLoop:
    """Calls the service without pause from a thread; counts answers and failures."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.answers = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CallingLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            with RecsClient(self.target) as client:
                for _ in range(20):
                    try:
                        client.recommend("u01", 3)
                        client.rerank("u02", ["a1", "b1", "p"])
                        client.popular(2)
                        self.answers += 3
                    except RecsError as error:
                        self.failures.append(f"{error.code.name}: {error.message}")


@pytest.fixture
def served(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    workers = getattr(request, "param", 1)
    model = tmp_path / "model"
    train(model, factors=8)
    port = free_port()
    process = subprocess.Popen(
        [
            *RECS, "serve", "--backend", "local", "--model", str(model),
            "--port", str(port), "--workers", str(workers), "--grace", "2",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    target = f"127.0.0.1:{port}"
    try:
        wait_serving(target)
        time.sleep(0.5 * (workers - 1))  # the other workers report SERVING too
        yield target, model, process
    finally:
        if process.poll() is None:
            process.terminate()
        process.communicate(timeout=30)


def wait_for_version(target: str, wanted: str, deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if all(version(target) == wanted for _ in range(6)):  # every worker, most likely
            return
        time.sleep(0.2)
    raise AssertionError(f"{target} does not serve model {wanted}")


@pytest.mark.parametrize("served", [1, 2], indirect=True, ids=["1 worker", "2 workers"])
def test_sighup_swaps_in_the_retrained_model_without_a_failed_call(served) -> None:
    target, model, process = served
    before = version(target)
    with CallingLoop(target) as calls:
        time.sleep(0.3)
        train(model, factors=4)  # replaces the directory atomically
        retrained = subprocess.run(
            [*RECS, "model-info", "--json", "--target", target], capture_output=True, text=True
        )
        assert before in retrained.stdout  # nothing changes before the signal
        process.send_signal(signal.SIGHUP)
        after = _new_version(target, before)
        wait_for_version(target, after)
        time.sleep(0.3)
    assert calls.failures == []
    assert calls.answers > 0
    process.terminate()
    _, stderr = process.communicate(timeout=30)
    assert f"now serving model {after} (was {before}" in stderr


def test_a_broken_model_is_refused_and_the_old_one_keeps_serving(served) -> None:
    target, model, process = served
    before = version(target)
    with CallingLoop(target) as calls:
        (model / "item_factors.npy").write_bytes(b"not numpy")
        process.send_signal(signal.SIGHUP)
        time.sleep(2)
        assert version(target) == before
    assert calls.failures == []
    process.terminate()
    _, stderr = process.communicate(timeout=30)
    assert f"model reload refused, still serving {before}" in stderr
    assert "item_factors.npy" in stderr


def _new_version(target: str, old: str, deadline: float = 60) -> str:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        current = version(target)
        if current != old:
            return current
        time.sleep(0.1)
    raise AssertionError("the model was not swapped")


def test_watch_model_swaps_in_a_model_written_to_its_directory(tmp_path: Path) -> None:
    model = tmp_path / "model"
    train(model, factors=8)
    port = free_port()
    config = tmp_path / "serve.toml"
    config.write_text(
        f'[server]\nport = {port}\n[local]\nmodel_dir = "{model}"\nwatch_model = true\n'
    )
    process = subprocess.Popen(
        [*RECS, "serve", "--config", str(config), "--grace", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    target = f"127.0.0.1:{port}"
    try:
        wait_serving(target)
        before = version(target)
        with CallingLoop(target) as calls:
            train(model, factors=4)  # no signal: the server notices the new files
            after = _new_version(target, before)
        assert after != before
        assert calls.failures == []
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert "the model's files changed: reloading" in stderr
