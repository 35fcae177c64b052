"""Benchmark operations under load: a model swap (SIGHUP), a stop (SIGTERM), and a soak.

`recs serve` runs on the benchmark model (200k users x 50k items, 64 factors, precomputed
answers; see big_model.py) with --workers N (default 1), in its default request-log mode
(a summary every 10 s, INFO). Three parts, each on a service of its own:

1. swap: h2load at half the service's saturation (measured first, closed loop at c=64, or
   --rate) on GetRecommendations and GetPopularItems, 4 h2load processes each (different
   users), for --swap-seconds (20); the same run twice: without a swap, then with SIGHUP
   --swap-at (5) seconds in, so the service loads, checks and warms up the model again from
   its directory while it answers. Reported: failed calls (h2load's counts, the DATA bytes,
   which must be whole recorded OK answers, and the service's request log, which must show
   only OK), p99 of each run, the reload time (the log's `now serving model X (was Y;
   loaded in S s)`), and p99 of the calls started between SIGHUP and that line (h2load's
   --log-file has each call's start time), beside the same window of the run without swap.
2. sigterm: 64 grpc.aio caller loops (8 connections, random users) calling
   GetRecommendations without pause; SIGTERM after --sigterm-after (3) seconds. Every call in
   flight at SIGTERM must be answered OK; the only failures allowed are UNAVAILABLE
   (listener closed, connection refused); the request log's OK count must equal the
   callers'. Drain time (SIGTERM to exit) and exit status (0). Then a burst: 2,000 calls at
   once on one connection, SIGTERM after the first 100 answers: OK, UNAVAILABLE or
   RESOURCE_EXHAUSTED (max_concurrent_rpcs) only, nothing CANCELLED.
3. soak: --soak-seconds (600) at half saturation of the four-RPC mix, in one-minute rounds.
   Load generator: h2load, not Python. A Python generator with random ids at 2,000+/s would
   need most of a core, on a 2-core machine whose other core the service uses, and would
   time calls on its own busy event loop; h2load posts one body per process, so each round
   starts 16 h2load processes (4 per RPC, 4 connections each) with 16 fresh request
   bodies: 4 new users (or items) per RPC per minute, so 40 per RPC over 10 minutes. Per
   round: failures (as in part 1), p99, and the service's RSS and anonymous memory (from
   /proc/PID/smaps_rollup) at its end. RSS growth from the end of the first minute to the end
   must be under 5 %; 0 errors; p99 of the first and last minute.

Exit status 1 if a check fails (after printing the figures).

Usage: python bench/bench_operations.py [--workers 1] [--rate R] [--parts swap sigterm soak]
       [--swap-seconds 20] [--swap-at 5] [--soak-seconds 600] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from bench_service import (
    Server,
    build_requests,
    call_raw,
    ensure_h2load,
    free_port,
    grpc_frame,
    h2load_counts,
    logged_statuses,
)
from big_model import BENCH_BUILD, ensure_model, machine_line, recs_command
from grpc import aio

from recs.v1 import recommendation_service_pb2 as pb
from recs.v1 import recommendation_service_pb2_grpc as pb_grpc

SERVICE_PATH = "/recs.v1.RecommendationService/"
SWAP_RPCS = ("GetRecommendations", "GetPopularItems")
SOAK_RPCS = ("GetRecommendations", "GetSimilarItems", "GetPopularItems", "GetPersonalizedRanking")
BODIES_PER_RPC = 4
RELOADED = re.compile(r"now serving model (\S+) \(was (\S*); loaded in ([\d.]+)s\)")
DRAINED = re.compile(r"drained in ([\d.]+)s: (\d+) calls held back")
RSS_GROWTH_GOAL = 0.05
ALLOWED_REFUSALS = {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}


class Checks:
    """Failed checks, printed as they happen and summed up at the end."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            print(f"  CHECK FAILED: {what}", flush=True)
            self.failed.append(what)


@dataclass
class MixResult:
    """One mixed h2load run, summed over its processes; per-request start (s) and ms."""

    throughput: float = 0.0
    succeeded: int = 0
    failed: int = 0
    errored: int = 0
    timeout: int = 0
    not_ok_bytes: list[str] = field(default_factory=list)
    started_at: float = 0.0  # time.time() when the processes were launched
    starts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    latencies_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def bad(self) -> int:
        return self.failed + self.errored + self.timeout

    def p99(self, start: float | None = None, end: float | None = None) -> tuple[float, int]:
        """p99 (ms) of the calls started in [start, end) (epoch seconds), and their count."""
        keep = np.ones(len(self.starts), dtype=bool)
        if start is not None:
            keep &= self.starts >= start
        if end is not None:
            keep &= self.starts < end
        chosen = self.latencies_ms[keep]
        return (float(np.percentile(chosen, 99)) if len(chosen) else float("nan")), len(chosen)

    def p99_by_second(self) -> list[float]:
        """p99 (ms) of the calls started in each whole second of the run."""
        if not len(self.starts):
            return []
        first = self.starts.min()
        return [
            self.p99(first + k, first + k + 1)[0] for k in range(int(self.starts.max() - first) + 1)
        ]


class Bodies:
    """Request bodies (gRPC frames on disk) and the size of each one's recorded OK answer."""

    def __init__(self, target: str, model_dir: Path, rpcs: tuple[str, ...], rounds: int,
                 directory: Path) -> None:  # fmt: skip
        requests = build_requests(model_dir, BODIES_PER_RPC * rounds)
        self.files: dict[str, list[Path]] = {}
        self.sizes: dict[str, list[int]] = {}
        for rpc in rpcs:
            self.files[rpc], self.sizes[rpc] = [], []
            for k, body in enumerate(requests[rpc]):
                path = directory / f"{rpc}-{k}.body"
                path.write_bytes(grpc_frame(body))
                self.files[rpc].append(path)
                self.sizes[rpc].append(len(grpc_frame(call_raw(target, rpc, body))))

    def round(self, index: int) -> dict[str, list[tuple[Path, int]]]:
        """The bodies of round `index` (4 per RPC) with their answers' sizes."""
        window = slice(BODIES_PER_RPC * index, BODIES_PER_RPC * (index + 1))
        return {
            rpc: list(zip(files[window], self.sizes[rpc][window], strict=True))
            for rpc, files in self.files.items()
        }


class Mix:
    """h2load processes, one per body (4 per RPC), run together; `collect` checks answers."""

    def __init__(self, h2load: str, port: int, bodies: dict[str, list[tuple[Path, int]]],
                 connections: int, duration: float, rate: float | None, warm_up: float,
                 tmp: Path) -> None:  # fmt: skip
        processes = sum(len(b) for b in bodies.values())
        self.runs = []
        self.duration = duration + warm_up
        self.result = MixResult(started_at=time.time())
        tmp = Path(tempfile.mkdtemp(prefix="mix-", dir=tmp))  # h2load appends to its log file
        for rpc, pairs in bodies.items():
            for k, (body, size) in enumerate(pairs):
                log_file = tmp / f"{rpc}-{k}.log"
                command = [
                    h2load, "-c", str(connections), "-m", "1", "-t", "1",
                    "-D", f"{duration * 1000:.0f}ms", "--warm-up-time", f"{warm_up * 1000:.0f}ms",
                    "-H", "content-type: application/grpc", "-H", "te: trailers",
                    "-d", str(body), "--log-file", str(log_file),
                ]  # fmt: skip
                if rate is not None:
                    command += ["--rps", f"{max(rate / (processes * connections), 0.1):.2f}"]
                command.append(f"http://127.0.0.1:{port}{SERVICE_PATH}{rpc}")
                process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
                self.runs.append((f"{rpc}[{k}]", size, log_file, process))

    def collect(self) -> MixResult:
        result = self.result
        starts, latencies = [], []
        for name, size, log_file, process in self.runs:
            out, _ = process.communicate(timeout=self.duration + 120)
            stats = h2load_counts(out, name)
            result.throughput += stats["rps"]
            result.succeeded += stats["succeeded"]
            result.failed += stats["failed"]
            result.errored += stats["errored"]
            result.timeout += stats["timeout"]
            # DATA bytes include the warm-up's answers, which h2load does not count; an
            # error status has no DATA frame, so fewer whole answers than calls = errors.
            answers, extra = divmod(stats["data"], size)
            if extra or answers < stats["succeeded"]:
                result.not_ok_bytes.append(
                    f"{name}: {stats['data']} DATA bytes for {stats['succeeded']} answers of {size}"
                )
            for line in log_file.read_text().splitlines():
                parts = line.split("\t")
                if len(parts) >= 3:
                    starts.append(int(parts[0]) / 1e6)
                    latencies.append(int(parts[2]) / 1000)
        result.starts = np.asarray(starts)
        result.latencies_ms = np.asarray(latencies)
        return result


def start_service(model_dir: Path, catalog: Path, workers: int, name: str) -> tuple[Server, int]:
    work = BENCH_BUILD / "operations"
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = work / "serve.toml"
    config.write_text(
        f'backend = "local"\n[local]\nmodel_dir = "{model_dir}"\nprecomputed_answers = true\n'
    )
    command = [
        *recs_command(), "serve", "--config", str(config), "--catalog", str(catalog),
        "--port", str(port), "--request-log", "summary", "--request-log-level", "INFO",
    ]  # fmt: skip
    if workers > 1:
        command += ["--workers", str(workers)]
    server = Server("service", command, work / f"{name}.log")
    print(f"  service ({name}) SERVING after {server.start_seconds:.2f} s", flush=True)
    return server, port


def memory_kib(server: Server) -> tuple[int, int]:
    """(RSS, anonymous) KiB summed over the service's processes, from smaps_rollup."""
    pids = [server.process.pid, *_children(server.process.pid)]
    rss = anon = 0
    for pid in pids:
        fields = {}
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, value, *_ = line.split()
            fields[key.rstrip(":")] = int(value)
        rss += fields.get("Rss", 0)
        anon += fields.get("Anonymous", 0)
    return rss, anon


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def check_request_log(server: Server, checks: Checks, what: str) -> dict[str, int]:
    statuses = logged_statuses(Path(server.log.name))
    print(f"  request log ({what}): {', '.join(f'{n:,} {s}' for s, n in statuses.items())}")
    checks.check(
        not set(statuses) - {"OK", "CANCELLED"},  # CANCELLED: h2load hanging up at its end
        f"{what}: the request log shows statuses other than OK: {statuses}",
    )
    return statuses


def check_mix(result: MixResult, checks: Checks, what: str) -> None:
    checks.check(
        result.bad == 0,
        f"{what}: h2load {result.failed} failed, {result.errored} errored, "
        f"{result.timeout} timed out",
    )
    checks.check(not result.not_ok_bytes, f"{what}: answers not OK: {result.not_ok_bytes}")


def saturation(h2load: str, port: int, bodies: dict, tmp: Path, rate: float | None) -> float:
    """Half the mix's closed-loop throughput at c=64 over 4 s (or --rate)."""
    if rate is not None:
        return rate
    processes = sum(len(b) for b in bodies.values())
    closed = Mix(h2load, port, bodies, max(64 // processes, 1), 4.0, None, 1.0, tmp).collect()
    print(f"  saturation (closed loop, c=64): {closed.throughput:,.0f} req/s", flush=True)
    return closed.throughput / 2


# -- part 1: model swap under load -----------------------------------------------------------


def part_swap(h2load: str, args: argparse.Namespace, model_dir: Path, catalog: Path,
              checks: Checks) -> dict:  # fmt: skip
    print(f"part 1: model swap (SIGHUP) under load, workers={args.workers}", flush=True)
    server, port = start_service(model_dir, catalog, args.workers, "swap")
    warm_up = 0.5
    with server, tempfile.TemporaryDirectory(prefix="bench-ops-") as tmp_name:
        tmp = Path(tmp_name)
        bodies = Bodies(f"127.0.0.1:{port}", model_dir, SWAP_RPCS, 1, tmp).round(0)
        rate = saturation(h2load, port, bodies, tmp, args.rate) if args.rate is None else args.rate
        runs: dict[str, MixResult] = {}
        hup_at = reload_seen_at = float("nan")
        reload = None
        for name in ("no swap", "swap"):
            before = Path(server.log.name).read_text()
            mix = Mix(h2load, port, bodies, 4, args.swap_seconds, rate, warm_up, tmp)
            if name == "swap":
                time.sleep(max(0.0, mix.result.started_at + warm_up + args.swap_at - time.time()))
                hup_at = time.time()
                server.process.send_signal(signal.SIGHUP)
                reload, reload_seen_at = _wait_reloaded(server, len(before), args.workers)
            runs[name] = mix.collect()
            result = runs[name]
            print(
                f"  {name}: {result.succeeded:,} calls at {result.throughput:,.0f}/s "
                f"({rate:,.0f}/s offered), p99 {result.p99()[0]:.2f} ms",
                flush=True,
            )
            print(f"    p99 per second: {' '.join(f'{v:.0f}' for v in result.p99_by_second())}")
            check_mix(result, checks, f"swap part, {name}")
        memory = memory_kib(server)
    checks.check(server.status == 0, f"swap part: service exit status {server.status}")
    statuses = check_request_log(server, checks, "swap part")
    checks.check(reload is not None, "swap part: no `now serving model` line after SIGHUP")
    reload_seconds = max((float(r.group(3)) for r in reload or []), default=float("nan"))
    window = reload_seen_at - hup_at
    swap, plain = runs["swap"], runs["no swap"]
    offset = hup_at - swap.started_at  # the same window of the run without swap
    p99_window, in_window = swap.p99(hup_at, reload_seen_at)
    p99_plain_window, _ = plain.p99(plain.started_at + offset, plain.started_at + offset + window)
    p99_after, _ = swap.p99(reload_seen_at, None)
    if reload:
        first = reload[0]
        print(f"  reload: model {first.group(1)} (was {first.group(2)}), loaded in "
              f"{reload_seconds:.2f} s; SIGHUP to log line {window:.2f} s")  # fmt: skip
    return {
        "rate": rate,
        "no_swap": {"calls": plain.succeeded, "bad": plain.bad + len(plain.not_ok_bytes),
                    "p99_ms": plain.p99()[0], "p99_window_ms": p99_plain_window},
        "swap": {"calls": swap.succeeded, "bad": swap.bad + len(swap.not_ok_bytes),
                 "p99_ms": swap.p99()[0], "p99_window_ms": p99_window,
                 "calls_in_window": in_window, "p99_after_ms": p99_after},
        "reload_seconds": reload_seconds,
        "window_seconds": window,
        "request_log": statuses,
        "memory_mib_at_end": memory[0] / 1024,
    }  # fmt: skip


def _wait_reloaded(server: Server, offset: int, workers: int) -> tuple[list | None, float]:
    """The `now serving model` lines (one per worker) after `offset`, and when seen."""
    deadline = time.time() + 120
    while time.time() < deadline:
        found = list(RELOADED.finditer(Path(server.log.name).read_text()[offset:]))
        if len(found) >= workers:
            return found, time.time()
        if "model reload refused" in Path(server.log.name).read_text()[offset:]:
            return None, time.time()
        time.sleep(0.02)
    return None, float("nan")


# -- part 2: SIGTERM under load ----------------------------------------------------------------


def part_sigterm(args: argparse.Namespace, model_dir: Path, catalog: Path, checks: Checks) -> dict:
    print(f"part 2: SIGTERM under load, workers={args.workers}", flush=True)
    user_ids = np.load(model_dir / "user_ids.npy", mmap_mode="r")
    users = [str(user_ids[i]) for i in np.random.default_rng(3).choice(len(user_ids), 20_000)]
    figures = {}
    server, port = start_service(model_dir, catalog, args.workers, "sigterm-loops")
    loops = asyncio.run(_loops(server, f"127.0.0.1:{port}", users, args.sigterm_after))
    figures["loops"] = _stop_figures(server, loops, checks, "64 loops")
    checks.check(
        loops["in_flight"] == {"OK": 64},
        f"64 loops: calls in flight at SIGTERM not all OK: {dict(loops['in_flight'])}",
    )
    server, port = start_service(model_dir, catalog, args.workers, "sigterm-burst")
    burst = asyncio.run(_burst(server, f"127.0.0.1:{port}", users))
    figures["burst"] = _stop_figures(server, burst, checks, "burst of 2,000")
    return figures


async def _loops(server: Server, target: str, users: list[str], after: float) -> dict:
    """64 loops over 8 connections; SIGTERM after `after` s; each loop ends when refused."""
    channels = [
        aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(8)
    ]
    stubs = [pb_grpc.RecommendationServiceStub(channel) for channel in channels]
    statuses: collections.Counter[str] = collections.Counter()
    in_flight: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    term_at: float | None = None
    last_ok = 0.0
    rng = random.Random(7)

    async def caller(index: int) -> None:
        nonlocal last_ok
        stub = stubs[index % len(stubs)]
        while True:
            sent_before = term_at is None
            request = pb.GetRecommendationsRequest(user_id=rng.choice(users), num_results=25)
            status = await _status(stub.GetRecommendations(request, timeout=30), errors)
            statuses[status] += 1
            if status == "OK":
                last_ok = time.monotonic()
            if sent_before and term_at is not None:
                in_flight[status] += 1
            if status != "OK":
                return  # refused (or failed): this caller's connection is gone

    tasks = [asyncio.create_task(caller(i)) for i in range(64)]
    await asyncio.sleep(after)
    before_term = statuses["OK"]
    exited = asyncio.create_task(_signal_and_wait(server))
    term_at = time.monotonic()
    await asyncio.gather(*tasks)
    status, exit_at = await exited
    for channel in channels:
        await channel.close()
    return {"statuses": statuses, "in_flight": in_flight, "errors": errors, "exit": status,
            "drain_seconds": exit_at - term_at, "last_ok_after": last_ok - term_at,
            "ok_before_term": before_term}  # fmt: skip


async def _burst(server: Server, target: str, users: list[str]) -> dict:
    """2,000 calls at once on one connection; SIGTERM once 100 are answered."""
    statuses: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    answered = asyncio.Event()
    async with aio.insecure_channel(target) as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)

        async def one(index: int) -> None:
            request = pb.GetRecommendationsRequest(user_id=users[index], num_results=25)
            status = await _status(stub.GetRecommendations(request, timeout=30), errors)
            statuses[status] += 1
            if statuses["OK"] >= 100:
                answered.set()

        tasks = [asyncio.create_task(one(i)) for i in range(2000)]
        await answered.wait()
        before_term = statuses["OK"]
        exited = asyncio.create_task(_signal_and_wait(server))
        term_at = time.monotonic()
        await asyncio.gather(*tasks)
        last_answer = time.monotonic()
        status, exit_at = await exited
    return {"statuses": statuses, "in_flight": None, "errors": errors, "exit": status,
            "drain_seconds": exit_at - term_at, "last_ok_after": last_answer - term_at,
            "ok_before_term": before_term}  # fmt: skip


async def _signal_and_wait(server: Server) -> tuple[int, float]:
    server.process.send_signal(signal.SIGTERM)
    status = await asyncio.to_thread(server.process.wait, 60)
    return status, time.monotonic()


async def _status(call, errors: collections.Counter[str]) -> str:
    try:
        await call
    except grpc.RpcError as error:
        name = error.code().name
        errors[f"{name}: {(error.details() or '')[:90]}"] += 1
        return name
    return "OK"


def _stop_figures(server: Server, run: dict, checks: Checks, what: str) -> dict:
    server.log.close()
    log = Path(server.log.name).read_text()
    statuses = run["statuses"]
    logged = logged_statuses(Path(server.log.name))
    drained = DRAINED.search(log)
    print(
        f"  {what}: {statuses['OK']:,} OK ({run['ok_before_term']:,} before SIGTERM), "
        f"failed: {', '.join(f'{n:,} {s}' for s, n in statuses.items() if s != 'OK') or 'none'}"
        f"; in flight at SIGTERM: {dict(run['in_flight']) if run['in_flight'] else 'n/a'}; "
        f"exit {run['exit']} after {run['drain_seconds']:.2f} s "
        f"(server: drained in {drained.group(1) if drained else '?'} s, "
        f"{drained.group(2) if drained else '?'} held); last answer "
        f"{run['last_ok_after']:.2f} s after SIGTERM",
        flush=True,
    )
    for error, count in run["errors"].most_common(4):
        print(f"    {count:,} x {error}")
    print(f"  request log: {', '.join(f'{n:,} {s}' for s, n in logged.items())}")
    checks.check(run["exit"] == 0, f"{what}: exit status {run['exit']}")
    checks.check(
        set(statuses) <= {"OK"} | ALLOWED_REFUSALS,
        f"{what}: statuses other than OK and refusals: {dict(statuses)}",
    )
    checks.check(
        logged.get("OK", 0) == statuses["OK"] and "CANCELLED" not in logged,
        f"{what}: request log {logged} against {statuses['OK']} OK answers seen by the callers",
    )
    checks.check("stopped" in log, f"{what}: no `stopped` line in the log")
    return {
        "ok": statuses["OK"],
        "refused": {s: n for s, n in statuses.items() if s != "OK"},
        "in_flight": dict(run["in_flight"]) if run["in_flight"] else None,
        "exit": run["exit"],
        "drain_seconds": run["drain_seconds"],
        "server_drained_seconds": float(drained.group(1)) if drained else None,
        "errors": dict(run["errors"]),
        "request_log": logged,
    }


# -- part 3: soak ------------------------------------------------------------------------------


def part_soak(h2load: str, args: argparse.Namespace, model_dir: Path, catalog: Path,
              checks: Checks) -> dict:  # fmt: skip
    rounds = max(1, int(np.ceil(args.soak_seconds / 60)))
    print(f"part 3: soak, {args.soak_seconds:g} s in {rounds} rounds, all four RPCs", flush=True)
    server, port = start_service(model_dir, catalog, args.workers, "soak")
    per_round = []
    with server, tempfile.TemporaryDirectory(prefix="bench-ops-") as tmp_name:
        tmp = Path(tmp_name)
        bodies = Bodies(f"127.0.0.1:{port}", model_dir, SOAK_RPCS, rounds + 1, tmp)
        rate = saturation(h2load, port, bodies.round(rounds), tmp, args.rate)
        start_memory = memory_kib(server)
        print(f"  RSS before the soak {start_memory[0] / 1024:,.0f} MiB", flush=True)
        for index in range(rounds):
            seconds = min(60.0, args.soak_seconds - 60 * index)
            result = Mix(h2load, port, bodies.round(index), 4, seconds, rate, 0.0, tmp).collect()
            rss, anon = memory_kib(server)
            p99 = result.p99()[0]
            per_round.append({"calls": result.succeeded, "throughput": result.throughput,
                              "p99_ms": p99, "rss_mib": rss / 1024, "anon_mib": anon / 1024,
                              "bad": result.bad + len(result.not_ok_bytes)})  # fmt: skip
            print(
                f"  minute {index + 1}: {result.succeeded:,} calls at {result.throughput:,.0f}/s,"
                f" p99 {p99:.2f} ms, RSS {rss / 1024:,.0f} MiB (anonymous {anon / 1024:,.0f})",
                flush=True,
            )
            check_mix(result, checks, f"soak minute {index + 1}")
    checks.check(server.status == 0, f"soak: service exit status {server.status}")
    statuses = check_request_log(server, checks, "soak")
    first, last = per_round[0], per_round[-1]
    growth = last["rss_mib"] / first["rss_mib"] - 1
    print(f"  RSS after the first minute {first['rss_mib']:,.0f} MiB, at the end "
          f"{last['rss_mib']:,.0f} MiB: {growth:+.1%}")  # fmt: skip
    checks.check(
        len(per_round) < 2 or growth < RSS_GROWTH_GOAL,
        f"soak: RSS grew {growth:+.1%} after the first minute",
    )
    return {"rate": rate, "rounds": per_round, "rss_growth": growth, "request_log": statuses,
            "rss_before_mib": start_memory[0] / 1024}  # fmt: skip


# -- summary -----------------------------------------------------------------------------------


def summary(figures: dict, args: argparse.Namespace) -> None:
    print(machine_line())
    if swap := figures.get("swap"):
        plain, swapped = swap["no_swap"], swap["swap"]
        print(f"\nmodel swap, {args.workers} worker(s), {swap['rate']:,.0f} req/s offered "
              f"(GetRecommendations + GetPopularItems), {args.swap_seconds:g} s runs:")  # fmt: skip
        print("| run | calls | failed | p99 whole run | p99 in the reload window | reload |")
        print("|---|---|---|---|---|---|")
        print(f"| no swap | {plain['calls']:,} | {plain['bad']} | {plain['p99_ms']:.2f} ms | "
              f"{plain['p99_window_ms']:.2f} ms (same window) | |")  # fmt: skip
        print(f"| SIGHUP at {args.swap_at:g} s | {swapped['calls']:,} | {swapped['bad']} | "
              f"{swapped['p99_ms']:.2f} ms | {swapped['p99_window_ms']:.2f} ms "
              f"({swapped['calls_in_window']:,} calls in {swap['window_seconds']:.2f} s) | "
              f"loaded in {swap['reload_seconds']:.2f} s |")  # fmt: skip
    if stop := figures.get("sigterm"):
        print(f"\nSIGTERM under load, {args.workers} worker(s), GetRecommendations:")
        print("| load | OK | refused | in flight at SIGTERM | drain (SIGTERM to exit) | exit |")
        print("|---|---|---|---|---|---|")
        for name, key in (("64 loops", "loops"), ("burst of 2,000", "burst")):
            run = stop[key]
            refused = ", ".join(f"{n:,} {s}" for s, n in run["refused"].items()) or "0"
            in_flight = ", ".join(f"{n} {s}" for s, n in (run["in_flight"] or {}).items()) or "n/a"
            print(f"| {name} | {run['ok']:,} | {refused} | {in_flight} | "
                  f"{run['drain_seconds']:.2f} s | {run['exit']} |")  # fmt: skip
    if soak := figures.get("soak"):
        rounds = soak["rounds"]
        print(f"\nsoak, {args.workers} worker(s), {soak['rate']:,.0f} req/s offered, four RPCs, "
              f"{args.soak_seconds:g} s:")  # fmt: skip
        print("| calls | failed | p99 first minute | p99 last minute | RSS after 1 min | "
              "RSS at end | growth | anonymous after 1 min / end |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        print(f"| {sum(r['calls'] for r in rounds):,} | {sum(r['bad'] for r in rounds)} | "
              f"{rounds[0]['p99_ms']:.2f} ms | {rounds[-1]['p99_ms']:.2f} ms | "
              f"{rounds[0]['rss_mib']:,.0f} MiB | {rounds[-1]['rss_mib']:,.0f} MiB | "
              f"{soak['rss_growth']:+.1%} | {rounds[0]['anon_mib']:,.0f} / "
              f"{rounds[-1]['anon_mib']:,.0f} MiB |")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rate", type=float, help="req/s offered (default: half saturation)")
    parser.add_argument("--parts", nargs="+", default=["swap", "sigterm", "soak"],
                        choices=("swap", "sigterm", "soak"))  # fmt: skip
    parser.add_argument("--swap-seconds", type=float, default=20.0)
    parser.add_argument("--swap-at", type=float, default=5.0, help="SIGHUP this far into the run")
    parser.add_argument("--sigterm-after", type=float, default=3.0)
    parser.add_argument("--soak-seconds", type=float, default=600.0)
    parser.add_argument("--json", type=Path, default=BENCH_BUILD / "operations.json")
    args = parser.parse_args()
    h2load = ensure_h2load()
    if h2load is None:
        print("bench_operations: h2load not found; `sudo apt-get install nghttp2-client` (skipped)")
        return 0
    model_dir, catalog = ensure_model()
    print(machine_line(), flush=True)
    checks, figures = Checks(), {}
    if "swap" in args.parts:
        figures["swap"] = part_swap(h2load, args, model_dir, catalog, checks)
    if "sigterm" in args.parts:
        figures["sigterm"] = part_sigterm(args, model_dir, catalog, checks)
    if "soak" in args.parts:
        figures["soak"] = part_soak(h2load, args, model_dir, catalog, checks)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine_line(), **figures}, indent=1))
    summary(figures, args)
    if checks.failed:
        print(f"\n{len(checks.failed)} check(s) failed:")
        for what in checks.failed:
            print(f"  - {what}")
        return 1
    print(f"\nall checks passed; figures saved to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
