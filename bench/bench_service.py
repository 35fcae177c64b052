"""Benchmark the gRPC service under load from h2load, beside a do-nothing baseline.

For each worker count, `recs serve` runs on the benchmark model (see big_model.py) and
`baseline_server.py` (same stack, same options, same workers, recorded responses of the
same size) runs beside it. For each of the four RPCs and each concurrency, h2load
(nghttp2's load generator, in C, not sharing the server's interpreter) drives closed-loop
load over h2c against both, one after the other; then the service again at half of its
best throughput (h2load --rps) for the p99 a caller sees below saturation, and the baseline
at the same offered rate (the stack's own tail there: on a shared 2-core machine it is not 0).

Requests: h2load posts one body per process, so the load at concurrency C is split over
up to 4 h2load processes, each with a different user (or item) and C/4 connections.
Answers are checked: h2load counts HTTP status only, so the DATA bytes received must be
a whole number of recorded OK responses, at least one per answered request (a gRPC error
has no DATA frame; the warm-up's answers are in the byte count but not the request
count); any failed, errored or timed-out request fails the run; and at the end the
service's request log must show no status other than OK.

GetRecommendations is answered from the model's precomputed top-25 answers (big_model.py
runs `recs precompute`); --exact-scoring measures the service scoring every call instead.
"GetRecommendations filtered" (on by default with GetRecommendations; --no-filtered leaves
it out) is the same RPC naming a filter: the service's config has
`[filters] in_categories = 'INCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES)'` and
the catalog, each request asks for the catalog's two most common categories
(`filter_values = {"CATEGORIES": '"kids","travel"'}`), so every call is scored (the
precomputed table answers the default filter only); every recorded answer is checked to
hold 25 items of those categories, and the baseline answers such requests with the
recorded filtered answer.

Optional costs, each against the same baseline so that the ratio moves by what it costs:
--metrics runs the service with `--metrics-port` (the baseline has no metrics), scrapes
/metrics at the end and checks its call counts against the request log's; --tls serves
both the service (`[server.tls]`) and the baseline over TLS with one throwaway certificate
for 127.0.0.1 (made at run time, signed by a throwaway CA), h2load connecting over https
with ALPN h2; --token (with --tls) gives the service a tokens file (`[server.auth]`) and
h2load sends `authorization: Bearer ...`; the baseline checks no token.

Usage: python bench/bench_service.py [--workers 1 2] [--concurrency 1 4 16 64]
       [--duration 4] [--rpcs GetRecommendations ...] [--exact-scoring] [--no-filtered]
       [--request-log summary|each] [--metrics] [--tls [--token]]
       [--json build/bench/service.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
import numpy as np
import tomli_w
from big_model import BENCH_BUILD, ensure_model, machine_line, recs_command, recs_env
from pyarrow import csv as pa_csv

from recs.v1 import recommendation_service_pb2 as pb

BENCH_DIR = Path(__file__).resolve().parent
SERVICE_PATH = "/recs.v1.RecommendationService/"
RPCS = ("GetRecommendations", "GetSimilarItems", "GetPopularItems", "GetPersonalizedRanking")
MAX_H2LOAD_PROCESSES = 4
RERANK_ITEMS = 50
BENCH_TOKEN = "bench-token-not-a-secret"
# GetRecommendations with a category filter: a row of its own, the same RPC on the wire.
FILTERED = "GetRecommendations filtered"
FILTER_NAME = "in_categories"
FILTER_EXPRESSION = "INCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES)"
FILTER_CATEGORIES = 2  # the catalog's most common ones
NUM_RESULTS = 25
# The headers a gRPC call's POST carries; other protocols pass their own to run_load.
GRPC_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-type", "application/grpc"),
    ("te", "trailers"),
)


def method_of(case: str) -> str:
    """The RPC a measured case calls (FILTERED is GetRecommendations with a filter)."""
    return "GetRecommendations" if case == FILTERED else case


def catalog_categories(catalog: Path, count: int) -> list[str]:
    """The catalog's `count` most common CATEGORIES values (`a|b` counts for a and b)."""
    only = pa_csv.ConvertOptions(include_columns=["CATEGORIES"])
    table = pa_csv.read_csv(catalog, convert_options=only)
    counts: dict[str, int] = {}
    for value in table.column("CATEGORIES").to_pylist():
        for category in (value or "").split("|"):
            if category:
                counts[category] = counts.get(category, 0) + 1
    if len(counts) < count:
        raise SystemExit(f"{catalog}: fewer than {count} CATEGORIES values for the filter")
    return sorted(counts, key=lambda c: (-counts[c], c))[:count]


def filter_values(categories: list[str]) -> dict[str, str]:
    """The request's filter_values in Personalize's format: {"CATEGORIES": '"a","b"'}."""
    return {"CATEGORIES": ",".join(f'"{category}"' for category in categories)}


@dataclass
class LoadResult:
    """One h2load run (summed over its processes)."""

    rpc: str
    server: str
    concurrency: int
    requests: int
    throughput: float
    p50_ms: float
    p99_ms: float
    target_rps: float | None = None


@dataclass(frozen=True)
class Transport:
    """How clients reach a server: h2c, or TLS trusting `ca` (PEM); extra request metadata."""

    ca: bytes | None = None
    metadata: tuple[tuple[str, str], ...] = field(default=())

    @property
    def scheme(self) -> str:
        return "http" if self.ca is None else "https"


PLAIN = Transport()


def ensure_h2load() -> str | None:
    """Path of h2load; installs Debian's nghttp2-client when missing and running as root."""
    found = shutil.which("h2load")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("h2load missing: apt-get install nghttp2-client", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "nghttp2-client"], check=False)
        return shutil.which("h2load")
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def grpc_frame(message: bytes) -> bytes:
    """gRPC's length-prefixed message: 1 byte 'not compressed', 4 bytes big-endian length."""
    return struct.pack(">BI", 0, len(message)) + message


def build_requests(
    model_dir: Path, count: int, categories: list[str] | None = None
) -> dict[str, list[bytes]]:
    """`count` serialized requests per case: distinct users with history, distinct items;
    FILTERED (with `categories`): GetRecommendations of the same users with the filter."""
    rng = np.random.default_rng(11)
    user_ids = np.load(model_dir / "user_ids.npy", mmap_mode="r")
    item_ids = np.load(model_dir / "item_ids.npy", mmap_mode="r")
    users = [
        str(user_ids[i]) for i in rng.choice(len(user_ids), count, replace=len(user_ids) < count)
    ]
    items = [
        str(item_ids[i]) for i in rng.choice(len(item_ids), count, replace=len(item_ids) < count)
    ]
    rerank = [
        [
            str(item_ids[i])
            for i in rng.choice(len(item_ids), min(RERANK_ITEMS, len(item_ids)), replace=False)
        ]
        for _ in range(count)
    ]
    requests = {
        "GetRecommendations": [
            pb.GetRecommendationsRequest(user_id=u, num_results=NUM_RESULTS).SerializeToString()
            for u in users
        ],
        "GetSimilarItems": [
            pb.GetSimilarItemsRequest(item_id=i, num_results=25).SerializeToString() for i in items
        ],
        "GetPopularItems": [
            pb.GetPopularItemsRequest(num_results=25, user_id=u).SerializeToString() for u in users
        ],
        "GetPersonalizedRanking": [
            pb.GetPersonalizedRankingRequest(user_id=u, item_ids=ids).SerializeToString()
            for u, ids in zip(users, rerank, strict=True)
        ],
    }
    if categories:
        requests[FILTERED] = [
            pb.GetRecommendationsRequest(
                user_id=u,
                num_results=NUM_RESULTS,
                filter_name=FILTER_NAME,
                filter_values=filter_values(categories),
            ).SerializeToString()
            for u in users
        ]
    return requests


def call_raw(target: str, rpc: str, body: bytes, transport: Transport = PLAIN) -> bytes:
    """One call with serialized bytes in and out; raises grpc.RpcError unless OK."""
    if transport.ca is None:
        channel = grpc.insecure_channel(target)
    else:  # verifies the certificate against the CA and its name against 127.0.0.1
        channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(transport.ca))
    with channel:
        method = channel.unary_unary(SERVICE_PATH + rpc)
        return method(body, timeout=30, metadata=transport.metadata or None)


def make_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it, valid one day.

    Returns (CA PEM, certificate PEM, key PEM). P-256 keys, as tests/certs.py makes them.
    """
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("recs bench CA"))
        .issuer_name(name("recs bench CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class Server:
    """A server process started with a command that prints a `ready:` line on stdout."""

    def __init__(
        self, name: str, command: list[str], log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.log = log_path.open("w")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env or recs_env()
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.startswith("ready:"):
            self.process.kill()
            raise SystemExit(f"{name} did not start (see {log_path})")
        self.start_seconds = time.perf_counter() - started

    def memory(self) -> list[tuple[int, int, int]]:
        """(pid, RSS KiB, PSS KiB) of the server process and its worker processes."""
        pids = [self.process.pid, *_children(self.process.pid)]
        return [(pid, *_rss_pss(pid)) for pid in pids]

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.status = self.stop()

    def stop(self) -> int:
        """SIGTERM, as an operator would; returns the exit status (killed after 60 s)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait()
        self.log.close()
        return status


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


def _rss_pss(pid: int) -> tuple[int, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value)
    return fields.get("Rss", 0), fields.get("Pss", 0)


def run_load(
    h2load: str,
    port: int,
    rpc: str,
    bodies: list[Path],
    expected_bytes: list[int | None],
    concurrency: int,
    duration: float,
    warm_up: float,
    server: str,
    target_rps: float | None = None,
    transport: Transport = PLAIN,
    path: str | None = None,
    headers: tuple[tuple[str, str], ...] = GRPC_HEADERS,
    http1: bool = False,
    requests: int | None = None,
    streams: int = 1,
) -> LoadResult:
    """Closed-loop (or rate-limited) load from up to 4 h2load processes; checks answers.

    gRPC by default; another protocol gives the URL `path` (default: the RPC's gRPC path),
    its request `headers` and `http1` (HTTP/1.1 instead of h2). `requests` (h2load -n,
    split over the processes) replaces `duration` and `warm_up`; `streams` is h2load -m."""
    processes = min(concurrency, len(bodies), MAX_H2LOAD_PROCESSES)
    connections = max(concurrency // processes, 1)
    with tempfile.TemporaryDirectory(prefix="h2load-") as tmp:
        runs = []
        for k in range(processes):
            log_file = Path(tmp) / f"{k}.log"
            command = h2load_command(
                h2load, connections, duration, warm_up, bodies[k], log_file, headers, http1,
                requests // processes if requests is not None else None, streams,
            )  # fmt: skip
            if target_rps is not None:
                command += ["--rps", f"{max(target_rps / (processes * connections), 0.1):.2f}"]
            for key, value in transport.metadata:
                command += ["-H", f"{key}: {value}"]
            url_path = path if path is not None else f"{SERVICE_PATH}{method_of(rpc)}"
            command.append(f"{transport.scheme}://127.0.0.1:{port}{url_path}")
            runs.append((k, log_file, subprocess.Popen(command, stdout=subprocess.PIPE, text=True)))
        throughput, done, latencies = 0.0, 0, []
        for k, log_file, process in runs:
            out, _ = process.communicate(timeout=600 if requests else duration + warm_up + 120)
            stats = _parse_h2load(
                out, f"{server} {rpc} c={concurrency}", transport.ca is not None, http1
            )
            # DATA bytes include the warm-up's answers, which h2load does not count. An
            # answer whose size varies (None: JSON scores printed to their last digit) is
            # checked by its status only.
            expected = expected_bytes[k]
            answers, extra = divmod(stats["data"], expected) if expected else (0, 0)
            if expected and (extra or answers < stats["succeeded"]):
                raise SystemExit(
                    f"{server} {rpc}: {stats['data']} DATA bytes for {stats['succeeded']} "
                    f"answers of {expected_bytes[k]} bytes: some calls did not return OK"
                )
            throughput += stats["rps"]
            done += stats["succeeded"]
            latencies.extend(_latencies_ms(log_file))
    p50, p99 = np.percentile(latencies, [50, 99]) if latencies else (float("nan"),) * 2
    return LoadResult(
        rpc, server, concurrency, done, throughput, float(p50), float(p99), target_rps
    )


def h2load_counts(out: str, what: str) -> dict[str, float]:
    """Throughput, request counts by outcome and DATA bytes from h2load's summary."""
    rps = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
    counts = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        out,
    )
    data = re.search(r"traffic: .*?, .*? headers .*?, .*?\((\d+)\) data", out)
    if not (rps and counts and data):
        raise SystemExit(f"{what}: cannot read h2load's output:\n{out}")
    return {
        "rps": float(rps.group(1)),
        "succeeded": int(counts.group(4)),
        "failed": int(counts.group(5)),
        "errored": int(counts.group(6)),
        "timeout": int(counts.group(7)),
        "data": int(data.group(1)),
    }


def h2load_command(
    h2load: str,
    connections: int,
    duration: float,
    warm_up: float,
    body: Path,
    log_file: Path,
    headers: tuple[tuple[str, str], ...] = GRPC_HEADERS,
    http1: bool = False,
    requests: int | None = None,
    streams: int = 1,
) -> list[str]:
    """One closed-loop h2load process posting `body` with `headers` (a gRPC request by
    default), over HTTP/1.1 with `http1` (the URL goes last): for `duration` seconds after
    `warm_up`, or `requests` calls in all (-n) when given; `streams` per connection (-m)."""
    command = [h2load, "-c", str(connections), "-m", str(streams), "-t", "1"]
    if requests is None:
        command += ["-D", f"{duration * 1000:.0f}ms", "--warm-up-time", f"{warm_up * 1000:.0f}ms"]
    else:
        command += ["-n", str(requests)]
    for key, value in headers:
        command += ["-H", f"{key}: {value}"]
    command += ["-d", str(body), "--log-file", str(log_file)]
    return [*command, "--h1"] if http1 else command


def _parse_h2load(out: str, what: str, tls: bool = False, http1: bool = False) -> dict[str, float]:
    if tls and not re.search(r"^Application protocol: h2$", out, re.MULTILINE):
        raise SystemExit(f"{what}: h2load did not negotiate h2 over TLS:\n{out}")
    if http1 and not re.search(r"^Application protocol: http/1\.1$", out, re.MULTILINE):
        raise SystemExit(f"{what}: h2load did not speak HTTP/1.1:\n{out}")
    counts = h2load_counts(out, what)
    failed, errored, timeout = counts["failed"], counts["errored"], counts["timeout"]
    if failed or errored or timeout:
        raise SystemExit(f"{what}: {failed} failed, {errored} errored, {timeout} timed out")
    return counts


def _latencies_ms(log_file: Path) -> list[float]:
    """Per-request latency from h2load's log (third column, microseconds)."""
    values = []
    for line in log_file.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            values.append(int(parts[2]) / 1000)
    return values


def bench_workers(
    h2load: str, workers: int, args: argparse.Namespace, model_dir: Path, catalog: Path
) -> dict:
    """Start the service and its baseline with `workers` processes and load both."""
    work = BENCH_BUILD / f"service-w{workers}"
    work.mkdir(parents=True, exist_ok=True)
    port, base_port = free_port(), free_port()
    cases = measured_cases(args)
    categories = catalog_categories(catalog, FILTER_CATEGORIES) if FILTERED in cases else None
    # What flags cannot say: whether to use precomputed answers, and the filters.
    settings: dict = {
        "backend": "local",
        "catalog": str(catalog),
        "local": {"model_dir": str(model_dir), "precomputed_answers": not args.exact_scoring},
    }
    if categories:
        settings["filters"] = {FILTER_NAME: FILTER_EXPRESSION}
        print(
            f"{FILTERED}: filter {FILTER_NAME} = '{FILTER_EXPRESSION}', "
            f"filter_values {filter_values(categories)}",
            flush=True,
        )
    config = work / "serve.toml"
    config.write_text(tomli_w.dumps(settings))
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        transport, base_tls = PLAIN, []
        if args.tls:  # TLS and tokens have no flags: a config file of their own
            config, transport, cert, key = secure_config(Path(tmp), config, args.token)
            base_tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
        service_command = [
            *recs_command(), "serve", "--config", str(config),
            "--catalog", str(catalog), "--port", str(port),
            "--request-log", args.request_log, "--request-log-level", "INFO",
        ]  # fmt: skip
        if workers > 1:
            service_command += ["--workers", str(workers)]
        metrics_port = free_port() if args.metrics else None
        if metrics_port is not None:
            service_command += ["--metrics-port", str(metrics_port)]
        service_env = recs_env()
        if args.service_code:  # another checkout's code for the service only (before/after)
            service_env["PYTHONPATH"] = str(args.service_code)
        responses_dir = work / "responses"
        responses_dir.mkdir(exist_ok=True)
        baseline_command = [
            sys.executable, str(BENCH_DIR / "baseline_server.py"), "--port", str(base_port),
            "--workers", str(workers), "--responses", str(responses_dir), *base_tls,
        ]  # fmt: skip
        with Server("service", service_command, work / "service.log", service_env) as service:
            print(f"workers={workers}: service SERVING after {service.start_seconds:.2f} s")
            bodies, service_bytes = record_calls(
                f"127.0.0.1:{port}", cases, model_dir, work, transport, categories
            )
            baseline_bytes = {rpc: [sizes[0]] * len(sizes) for rpc, sizes in service_bytes.items()}
            if metrics_port is not None:
                scrape_calls(metrics_port)  # served before the load, not only after
            with Server("baseline", baseline_command, work / "baseline.log") as baseline:
                results, memory = [], []
                for rpc in cases:
                    for concurrency in args.concurrency:
                        for name, target, expected in (
                            ("service", port, service_bytes[rpc]),
                            ("baseline", base_port, baseline_bytes[rpc]),
                        ):
                            results.append(
                                run_load(
                                    h2load,
                                    target,
                                    rpc,
                                    bodies[rpc],
                                    expected,
                                    concurrency,
                                    args.duration,
                                    args.warm_up,
                                    name,
                                    transport=transport,
                                )
                            )
                        if rpc == "GetRecommendations" and concurrency == max(args.concurrency):
                            memory = service.memory()
                        _print_pair(results[-2], results[-1])
                    results.extend(
                        half_saturation(
                            h2load, (port, base_port), rpc, bodies,
                            (service_bytes, baseline_bytes), results, args, transport,
                        )
                    )  # fmt: skip
            counted = None
            if metrics_port is not None:
                time.sleep(1.0)  # calls h2load hung up on finish being cancelled
                counted = scrape_calls(metrics_port)
    print(f"  stopped: service exit {service.status}, baseline exit {baseline.status}")
    statuses = logged_statuses(work / "service.log")
    print(f"  request log: {', '.join(f'{n:,} {s}' for s, n in statuses.items()) or 'off'}")
    if set(statuses) - {"OK", "CANCELLED"}:  # CANCELLED: h2load hung up at the end
        raise SystemExit("the service answered some calls with an error: see service.log")
    if counted is not None:
        print(f"  metrics: recs_calls_total {', '.join(f'{n:,} {s}' for s, n in counted.items())}")
        if counted != statuses:
            raise SystemExit("the metrics did not count the calls the request log shows")
    for pid, rss, pss in memory:
        print(f"  service process {pid}: RSS {rss / 1024:,.0f} MiB, PSS {pss / 1024:,.0f} MiB")
    return {
        "workers": workers,
        "start_seconds": service.start_seconds,
        "memory_kib": [{"pid": p, "rss": r, "pss": s} for p, r, s in memory],
        "results": [asdict(r) for r in results],
    }


def secure_config(directory: Path, config: Path, token: bool) -> tuple[Path, Transport, Path, Path]:
    """`config` plus `[server.tls]` (and with `token`, `[server.auth]`), written in `directory`
    with a throwaway certificate (and tokens file). Returns (config, how clients connect,
    certificate, key): the baseline serves the same certificate.

    Clients send the token to the baseline too (same requests, ignored there), so a token
    run's ratio holds the check, not the header's bytes."""
    ca, cert, key = make_certificate(directory)
    text = config.read_text()
    text += tomli_w.dumps({"server": {"tls": {"cert_file": str(cert), "key_file": str(key)}}})
    metadata: tuple[tuple[str, str], ...] = ()
    if token:
        tokens = directory / "tokens"
        tokens.write_text(f"# bench_service.py, this run only\n{BENCH_TOKEN}\n")
        text += tomli_w.dumps({"server": {"auth": {"tokens_file": str(tokens)}}})
        metadata = (("authorization", f"Bearer {BENCH_TOKEN}"),)
    secure = directory / "serve.toml"
    secure.write_text(text)
    return secure, Transport(ca.read_bytes(), metadata), cert, key


def scrape_calls(port: int) -> dict[str, int]:
    """recs_calls_total from the service's /metrics, summed over methods, per status code."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    counts: dict[str, int] = {}
    for found in re.finditer(r"^recs_calls_total\{([^}]*)\} ([\d.e+]+)$", text, re.MULTILINE):
        code = re.search(r'code="(\w+)"', found.group(1))
        if code:
            counts[code.group(1)] = counts.get(code.group(1), 0) + int(float(found.group(2)))
    return counts


def measured_cases(args: argparse.Namespace) -> list[str]:
    """The RPCs asked for, with FILTERED after GetRecommendations unless --no-filtered."""
    cases = []
    for rpc in args.rpcs:
        cases.append(rpc)
        if rpc == "GetRecommendations" and args.filtered:
            cases.append(FILTERED)
    return cases


def record_calls(
    target: str,
    cases: list[str],
    model_dir: Path,
    work: Path,
    transport: Transport = PLAIN,
    categories: list[str] | None = None,
) -> tuple[dict[str, list[Path]], dict[str, list[int]]]:
    """Write the request bodies, call each once; the baseline answers with the first reply
    (`<Rpc>.bin`; FILTERED's as `GetRecommendations.<filter>.bin`).

    Returns (body files per case, expected response frame length per body).
    """
    requests = build_requests(model_dir, MAX_H2LOAD_PROCESSES, categories)
    bodies: dict[str, list[Path]] = {}
    sizes: dict[str, list[int]] = {}
    for case in cases:
        bodies[case], sizes[case] = [], []
        for k, body in enumerate(requests[case]):
            path = work / f"{case.replace(' ', '-')}-{k}.body"
            path.write_bytes(grpc_frame(body))
            bodies[case].append(path)
            answer = call_raw(target, method_of(case), body, transport)
            sizes[case].append(len(grpc_frame(answer)))
            if case == FILTERED:
                check_filtered(answer, categories or [])
            if k == 0:
                name = f"GetRecommendations.{FILTER_NAME}" if case == FILTERED else case
                (work / "responses" / f"{name}.bin").write_bytes(answer)
    return bodies, sizes


def check_filtered(answer: bytes, categories: list[str]) -> None:
    """A filtered answer must be NUM_RESULTS items, each in one of `categories`."""
    items = pb.GetRecommendationsResponse.FromString(answer).items
    outside = [
        item.item_id
        for item in items
        if not set(item.metadata.get("categories", "").split("|")) & set(categories)
    ]
    if len(items) != NUM_RESULTS or outside:
        raise SystemExit(
            f"{FILTERED}: {len(items)} items, {len(outside)} outside {categories} "
            f"(e.g. {outside[:3]}): the filter was not applied"
        )


def half_saturation(
    h2load: str,
    ports: tuple[int, int],
    rpc: str,
    bodies: dict[str, list[Path]],
    sizes: tuple[dict[str, list[int]], dict[str, list[int]]],
    results: list[LoadResult],
    args: argparse.Namespace,
    transport: Transport = PLAIN,
) -> list[LoadResult]:
    """The service at half its best closed-loop throughput: the p99 below saturation; then
    the baseline at the same offered rate, for the stack's own tail at that rate."""
    best = max(r.throughput for r in results if r.rpc == rpc and r.server == "service")
    runs = [
        run_load(
            h2load, port, rpc, bodies[rpc], expected[rpc], args.half_concurrency,
            args.duration, args.warm_up, server, target_rps=best / 2, transport=transport,
        )
        for server, port, expected in zip(("service", "baseline"), ports, sizes, strict=True)
    ]  # fmt: skip
    service, baseline = runs
    print(
        f"  {rpc} at half saturation ({best / 2:,.0f} req/s offered, "
        f"{service.throughput:,.0f} served, c={args.half_concurrency}): "
        f"p50 {service.p50_ms:.2f} ms, p99 {service.p99_ms:.2f} ms | "
        f"baseline at that rate: p50 {baseline.p50_ms:.2f} ms, p99 {baseline.p99_ms:.2f} ms",
        flush=True,
    )
    return runs


def logged_statuses(log_path: Path, method: str | None = None) -> dict[str, int]:
    """Calls per status in the service's request log: its summaries (`<Method> N calls in
    T s (R/s): OK n, ...`) or, with --request-log each, its `<Method> <STATUS> <ms>ms` lines;
    of every method, or of `method` only (e.g. `aws:GetRecommendations`)."""
    name = re.escape(method) if method is not None else r"\w+"
    prefix = rf"recs\.requests(?:\[worker \d+\])?: {name} "
    summary = re.compile(prefix + r"[\d,]+ calls in [\d.]+ s \([\d,.]+/s\): ([^;]+)")
    each = re.compile(prefix + r"(\w+) [\d.]+ms")
    counts: dict[str, int] = {}
    for line in log_path.read_text().splitlines():
        if found := summary.search(line):
            for part in found.group(1).split(", "):
                status, calls = part.rsplit(" ", 1)
                counts[status] = counts.get(status, 0) + int(calls.replace(",", ""))
        elif found := each.search(line):
            counts[found.group(1)] = counts.get(found.group(1), 0) + 1
    return counts


def _print_pair(service: LoadResult, baseline: LoadResult) -> None:
    ratio = service.throughput / baseline.throughput if baseline.throughput else float("nan")
    print(
        f"  {service.rpc:<27} c={service.concurrency:<3} "
        f"service {service.throughput:>7,.0f}/s p50 {service.p50_ms:6.2f} p99 {service.p99_ms:6.2f}"
        f" | baseline {baseline.throughput:>7,.0f}/s p50 {baseline.p50_ms:6.2f} "
        f"p99 {baseline.p99_ms:6.2f} | ratio {ratio:4.2f}",
        flush=True,
    )


def summary_table(runs: list[dict]) -> str:
    """Markdown: per workers and RPC, best throughput of service and baseline, and ratio."""
    lines = [
        "| workers | RPC | service req/s | baseline req/s | ratio | p99 at half saturation "
        "| baseline p99 at that rate |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        results = [LoadResult(**r) for r in run["results"]]
        for rpc in dict.fromkeys(r.rpc for r in results):
            closed = [r for r in results if r.rpc == rpc and r.target_rps is None]
            best_service = max(r.throughput for r in closed if r.server == "service")
            best_base = max(r.throughput for r in closed if r.server == "baseline")
            half, base_half = (
                next(r for r in results if r.rpc == rpc and r.target_rps and r.server == server)
                for server in ("service", "baseline")
            )
            lines.append(
                f"| {run['workers']} | {rpc} | {best_service:,.0f} | {best_base:,.0f} | "
                f"{best_service / best_base:.2f} | "
                f"{half.p99_ms:.1f} ms at {half.throughput:,.0f}/s | {base_half.p99_ms:.1f} ms |"
            )
    return "\n".join(lines)


def variant_name(args: argparse.Namespace) -> str:
    """What this run adds to the default (h2c, no metrics), e.g. "metrics on, TLS"; or ""."""
    parts = ["metrics on"] if args.metrics else []
    if args.tls:
        parts.append(
            "TLS (both), bearer token checked by the service" if args.token else "TLS (both)"
        )
    return ", ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--half-concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds measured per run")
    parser.add_argument("--warm-up", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--rpcs", nargs="+", default=list(RPCS), choices=RPCS)
    parser.add_argument(
        "--request-log", default="summary", choices=("summary", "each"), help="as recs serve's"
    )
    parser.add_argument(
        "--exact-scoring",
        action="store_true",
        help="score every GetRecommendations call (precomputed_answers = false)",
    )
    parser.add_argument(
        "--filtered",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"with GetRecommendations, also measure it with the {FILTER_NAME} category "
        "filter (scored per call); on by default",
    )
    parser.add_argument("--model", type=Path, help="model dir (default: the benchmark model)")
    parser.add_argument(
        "--service-code",
        type=Path,
        help="run the service from this checkout (e.g. a `git worktree` of an older commit) "
        "to measure a change against the same baseline",
    )
    parser.add_argument("--catalog", type=Path, help="items.csv for --model")
    parser.add_argument(
        "--metrics", action="store_true", help="the service with --metrics-port (a free port)"
    )
    parser.add_argument(
        "--tls", action="store_true", help="service and baseline over TLS (throwaway cert)"
    )
    parser.add_argument(
        "--token", action="store_true", help="with --tls: the service checks a bearer token"
    )
    parser.add_argument("--json", type=Path, default=BENCH_BUILD / "service.json")
    args = parser.parse_args()
    if args.token and not args.tls:
        parser.error("--token needs --tls (a bearer token is sent over TLS only)")

    h2load = ensure_h2load()
    if h2load is None:
        print(
            "bench_service: h2load not found; install it with "
            "`sudo apt-get install nghttp2-client` and run again (skipped)"
        )
        return 0
    model_dir, catalog = (args.model, args.catalog) if args.model else ensure_model()
    print(machine_line())
    print(
        f"closed loop, {args.duration:g} s per run after {args.warm_up:g} s warm-up; "
        "latencies in ms; ratio = service / baseline throughput at the same concurrency",
        flush=True,
    )
    variant = variant_name(args)
    if variant:
        print(f"variant: {variant}", flush=True)
    runs = [bench_workers(h2load, w, args, model_dir, catalog) for w in args.workers]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    saved = {"machine": machine_line(), "runs": runs}
    if variant:
        saved["variant"] = variant
    args.json.write_text(json.dumps(saved, indent=1))
    print(summary_table(runs))
    if variant:
        print(f"variant: {variant}")
    print(machine_line())
    print(f"figures saved to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
