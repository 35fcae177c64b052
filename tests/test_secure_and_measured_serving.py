"""`recs serve` as operators run it in production: TLS and tokens, Prometheus metrics.

A real `recs serve` process on real ports, real certificates made for the test, a real
scrape of /metrics parsed with prometheus-client's own parser, one and two workers.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from recs.client import RecsClient, RecsError
from tests.backends.contract import TINY_DATASET
from tests.certs import Pki, make_pki
from tests.prometheus import scrape
from tests.test_end_to_end import ENV, RECS, free_port, model_dir, run_recs, wait_serving

__all__ = ["model_dir"]  # the module-scoped model fixture, shared with test_end_to_end

TOKEN = "token-of-the-recs-tests"


def start(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*RECS, "serve", "--config", str(config), "--grace", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.terminate()
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    return stderr


def write_config(tmp_path: Path, model: Path, port: int, server: str = "") -> Path:
    path = tmp_path / "serve.toml"
    path.write_text(
        f'backend = "local"\ncatalog = "{TINY_DATASET / "items.csv"}"\n'
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n{server}\n'
        f'[local]\nmodel_dir = "{model}"\n'
    )
    return path


def wait_for_metrics(url: str, deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            scrape(url)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


@dataclass(frozen=True)
class Secured:
    """A service with TLS, tokens and metrics: its gRPC target and its /metrics URL."""

    target: str
    metrics_url: str


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def secured(model_dir: Path, pki: Pki, tmp_path: Path) -> Iterator[Secured]:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# the tests\n{TOKEN}\n")
    port = free_port()
    metrics_port = free_port()
    server = (
        f"metrics_port = {metrics_port}\n"
        f'[server.tls]\ncert_file = "{pki.server_cert}"\nkey_file = "{pki.server_key}"\n'
        f'[server.auth]\ntokens_file = "{tokens}"\n'
    )
    process = start(write_config(tmp_path, model_dir, port, server))
    target = f"127.0.0.1:{port}"
    try:
        end = time.monotonic() + 60
        credentials = grpc.ssl_channel_credentials(pki.ca.read_bytes())
        with grpc.secure_channel(target, credentials) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:  # health needs no token
                try:
                    answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                assert time.monotonic() < end and process.poll() is None, stop(process)
                time.sleep(0.1)
        yield Secured(target, f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        stop(process)


def test_the_cli_and_the_client_talk_tls_with_a_token(secured: Secured, pki: Pki) -> None:
    done = run_recs(
        "popular", "-n", "2", "--json", "--target", secured.target,
        "--tls-ca", str(pki.ca), "--token", TOKEN,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["items"]) == 2
    with RecsClient(secured.target, tls_ca=pki.ca, token=TOKEN) as client:
        info = client.model_info()
        assert info.backend == "local"
        assert not any("/" in value for value in info.details.values())  # no paths


def test_without_a_token_every_call_but_health_is_refused(secured: Secured, pki: Pki) -> None:
    done = run_recs("model-info", "--target", secured.target, "--tls-ca", str(pki.ca))
    assert done.returncode == 1
    assert "UNAUTHENTICATED" in done.stderr
    client = RecsClient(secured.target, tls_ca=pki.ca, token="not-it")
    with client, pytest.raises(RecsError) as refused:
        client.recommend("u01")
    assert refused.value.code is grpc.StatusCode.UNAUTHENTICATED
    samples = scrape(secured.metrics_url)
    assert samples[("recs_calls_refused_total", (("reason", "unauthenticated"),))] == 2


def test_a_missing_certificate_stops_start_up_naming_it(model_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "server.pem"
    server = f'[server.tls]\ncert_file = "{missing}"\nkey_file = "{tmp_path / "k"}"\n'
    config = write_config(tmp_path, model_dir, free_port(), server)
    done = run_recs("serve", "--config", str(config))
    assert done.returncode == 2
    assert f"[server.tls] cert_file {missing}: cannot read" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_count_every_call_across_workers(
    model_dir: Path, tmp_path: Path, workers: int
) -> None:
    port, metrics_port = free_port(), free_port()
    server = f"metrics_port = {metrics_port}\nworkers = {workers}\n"
    process = start(write_config(tmp_path, model_dir, port, server))
    target = f"127.0.0.1:{port}"
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        wait_serving(target)
        # the ready line means every worker serves
        while "ready:" not in (process.stdout.readline() if process.stdout else "ready:"):
            assert process.poll() is None
        wait_for_metrics(url)
        calls = 40
        with RecsClient(target) as client:
            for _ in range(calls):  # new connections spread the calls over the workers
                client.popular(2)
            with pytest.raises(RecsError):
                client.recommend("")
        # Each worker counts its calls into the shared files every 0.25 s (server.metrics).
        invalid = (("code", "INVALID_ARGUMENT"), ("method", "GetRecommendations"))
        ok = (("code", "OK"), ("method", "GetPopularItems"))
        end = time.monotonic() + 5
        while ("recs_calls_total", invalid) not in (samples := scrape(url)) or samples.get(
            ("recs_calls_total", ok)
        ) != calls:
            assert time.monotonic() < end, [key for key in samples if "calls" in key[0]]
            time.sleep(0.05)
    finally:
        stderr = stop(process)
    assert samples[("recs_calls_total", ok)] == calls, stderr
    assert samples[("recs_calls_total", invalid)] == 1
    histogram = samples[("recs_call_duration_seconds_count", (("method", "GetPopularItems"),))]
    assert histogram == calls
    served = [v for (name, labels), v in samples.items() if name == "recs_model_info" and v == 1]
    assert len(served) == workers  # one series per worker process (multiprocess mode)


def test_a_missing_ca_file_is_refused_by_the_cli_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    done = run_recs("popular", "--tls-ca", str(missing), "--target", "127.0.0.1:1")
    assert done.returncode == 2
    assert f"argument --tls-ca: {missing}: no such readable file" in done.stderr
