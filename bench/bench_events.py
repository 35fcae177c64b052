"""Benchmark real-time events (issue 15): durable PutEvents, event-to-visible latency, and
GetRecommendations for users with fresh events, beside the do-nothing baseline.

On the benchmark model (big_model.py: 200k users x 50k items), with an event store of its own
(wiped at the start of each server's run), for each worker count:

1. **PutEvents throughput**, one event per call, durable (the service answers OK once the row
   is committed, `synchronous = FULL`, group commit): h2load (nghttp2's load generator, in C)
   posts length-prefixed PutEventsRequest bodies (4 users, one h2load process each; the same
   body again and again, so the same event_id: the store keeps every call) at concurrency
   1/4/16/64 against the service and then against `baseline_server.py` (same stack, same
   workers, answers PutEventsResponse at once); ratio = service / baseline throughput. Checked:
   no failed call, every answer an empty OK message (5 DATA bytes), and the store holds as many
   new events as the service answered OK (the warm-up's answers included; calls h2load hung up
   on at the end may be stored unanswered: at most the concurrency).
2. **Event-to-visible latency** (with two workers or more): for N users spread over time, one
   `watched` event for the first video of their current answer; from its OK, GetRecommendations
   is polled on several connections (each channel its own connection; which worker holds each
   is read from /proc, and there are connections to every worker) until no connection's answer
   holds the video any more. Reported: p50/p99 on the worker that took the PutEvents (woken at
   once), on the other workers (which poll the store every `event_poll_interval`, 0.1 s) and on
   every worker (the later of the two), and the poll round's duration (the resolution).
3. **GetRecommendations for users with fresh events**: 4 users each send 3 watched events, and
   once the answers exclude them (their vector re-solved, the precomputed answer bypassed, so
   every call is scored with the live vector) h2load asks for their top 25 at concurrency
   16/64, against the baseline answering the recorded response (the same size).

At the end the service's request log must show no status other than OK (and CANCELLED: h2load
hanging up at the end).

Usage: python bench/bench_events.py [--quick] [--workers 1 2] [--events 200]
       [--duration 4] [--json build/bench/events.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
import numpy as np
import tomli_w
from bench_service import (
    BENCH_DIR,
    SERVICE_PATH,
    Server,
    _children,
    _latencies_ms,
    _parse_h2load,
    ensure_h2load,
    free_port,
    grpc_frame,
    h2load_command,
    logged_statuses,
)
from big_model import BENCH_BUILD, ensure_model, machine_line, recs_command
from google.protobuf.timestamp_pb2 import Timestamp

from recs.v1 import recommendation_service_pb2 as pb
from recs.v1 import recommendation_service_pb2_grpc as pb_grpc

NUM_RESULTS = 25
LOAD_USERS = 4  # one h2load process (and body) per user
FRESH_EVENTS = 3  # events per user before measuring their GetRecommendations
EMPTY_ANSWER = len(grpc_frame(b""))  # PutEventsResponse{}: a 5-byte frame
VISIBLE_WITHIN = 10.0  # seconds before an event counts as never visible (the run fails)
PROBES = 6  # polling connections; more are opened until every worker holds two
# One connection per channel (gRPC otherwise shares a subchannel between equal channels).
OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)


@dataclass
class Load:
    """One h2load run (summed over its processes)."""

    case: str
    server: str
    concurrency: int
    requests: int  # succeeded within the measured time
    answers: int  # OK answers received, the warm-up's included (from the DATA bytes)
    throughput: float
    p50_ms: float
    p99_ms: float
    stored: int | None = None  # new rows in the event store (PutEvents on the service)


# --- h2load -------------------------------------------------------------------------------------


def h2load_run(
    h2load: str, port: int, rpc: str, bodies: list[Path], sizes: list[int],
    concurrency: int, duration: float, warm_up: float, case: str, server: str,
) -> Load:  # fmt: skip
    """Closed-loop load from up to len(bodies) h2load processes, one body each; every answer
    must be a whole number of OK responses of the body's expected size."""
    processes = min(concurrency, len(bodies))
    connections = max(concurrency // processes, 1)
    with tempfile.TemporaryDirectory(prefix="h2load-") as tmp:
        runs = []
        for k in range(processes):
            log_file = Path(tmp) / f"{k}.log"
            command = [
                *h2load_command(h2load, connections, duration, warm_up, bodies[k], log_file),
                f"http://127.0.0.1:{port}{SERVICE_PATH}{rpc}",
            ]
            runs.append((k, log_file, subprocess.Popen(command, stdout=subprocess.PIPE, text=True)))
        throughput, done, answers, latencies = 0.0, 0, 0, []
        for k, log_file, process in runs:
            out, _ = process.communicate(timeout=duration + warm_up + 120)
            stats = _parse_h2load(out, f"{server} {case} c={concurrency}")
            count, extra = divmod(stats["data"], sizes[k])
            if extra or count < stats["succeeded"]:
                raise SystemExit(
                    f"{server} {case}: {stats['data']} DATA bytes for {stats['succeeded']} "
                    f"answers of {sizes[k]} bytes: some calls did not return OK"
                )
            throughput += stats["rps"]
            done += stats["succeeded"]
            answers += count
            latencies.extend(_latencies_ms(log_file))
    p50, p99 = np.percentile(latencies, [50, 99]) if latencies else (float("nan"),) * 2
    return Load(case, server, concurrency, done, answers, throughput, float(p50), float(p99))


def stored_events(state_dir: Path) -> int:
    """Rows in the event store (read beside the running service: WAL lets readers in)."""
    with sqlite3.connect(state_dir / "events.sqlite3", timeout=30) as connection:
        return connection.execute("SELECT count(*) FROM events").fetchone()[0]


# --- requests -----------------------------------------------------------------------------------


def now_timestamp() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


def put_request(user: str, item: str, event_id: str) -> pb.PutEventsRequest:
    return pb.PutEventsRequest(
        user_id=user,
        session_id=f"bench-{user}",
        events=[
            pb.Event(
                event_id=event_id, event_type="watched", event_value=1.0, item_id=item,
                sent_at=now_timestamp(),
            )
        ],
    )  # fmt: skip


def pick_users(model_dir: Path, count: int, seed: int) -> list[str]:
    """`count` distinct users of the model (each part of the bench draws its own)."""
    user_ids = np.load(model_dir / "user_ids.npy", mmap_mode="r")
    rng = np.random.default_rng(seed)
    return [str(user_ids[i]) for i in rng.choice(len(user_ids), count, replace=False)]


def recommend(stub: pb_grpc.RecommendationServiceStub, user: str) -> list[str]:
    request = pb.GetRecommendationsRequest(user_id=user, num_results=NUM_RESULTS)
    return [item.item_id for item in stub.GetRecommendations(request, timeout=30).items]


# --- which worker holds a connection ------------------------------------------------------------


def established_on(pid: int, port: int) -> int:
    """Established TCP connections to `port` whose server end process `pid` holds."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                link = fd.readlink().as_posix()
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return 0
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


class Probe:
    """A channel with a connection of its own, and the worker process that holds it."""

    def __init__(self, target: str, port: int, workers: list[int], warm_user: str) -> None:
        before = {pid: established_on(pid, port) for pid in workers}
        self.channel = grpc.insecure_channel(target, options=OWN_CONNECTION)
        self.stub = pb_grpc.RecommendationServiceStub(self.channel)
        recommend(self.stub, warm_user)  # connects
        after = {pid: established_on(pid, port) for pid in workers}
        grown = [pid for pid in workers if after[pid] > before[pid]]
        self.worker = grown[0] if len(grown) == 1 else None


def probes_on_every_worker(
    target: str, port: int, workers: list[int], warm_user: str
) -> list[Probe]:
    """At least PROBES connections, and at least two on each worker (up to 64 tries)."""
    probes: list[Probe] = []
    for _ in range(64):
        per_worker = [sum(p.worker == pid for p in probes) for pid in workers]
        if len(probes) >= PROBES and min(per_worker) >= 2:
            break
        probe = Probe(target, port, workers, warm_user)
        if probe.worker is None:
            probe.channel.close()
            continue
        if len(probes) >= PROBES and sum(p.worker == probe.worker for p in probes) >= 2:
            probe.channel.close()  # that worker has enough: keep the polling round short
            continue
        probes.append(probe)
    if {p.worker for p in probes} != set(workers):
        raise SystemExit(f"could not open connections to every worker {workers}")
    return probes


# --- event-to-visible latency --------------------------------------------------------------------


def measure_latency(
    target: str, port: int, workers: list[int], users: list[str], seed: int
) -> dict:
    """For each user: PutEvents of the first video of their answer (alternately on each
    worker), then poll every probe until none answers it. Times from the OK, in ms."""
    probes = probes_on_every_worker(target, port, workers, users[0])
    putters = {}
    while set(putters) != set(workers):
        probe = Probe(target, port, workers, users[0])
        if probe.worker is not None and probe.worker not in putters:
            putters[probe.worker] = probe
        else:
            probe.channel.close()
    rng = np.random.default_rng(seed)
    own, other, everywhere, rounds = [], [], [], []
    for n, user in enumerate(users):
        time.sleep(float(rng.uniform(0.0, 0.05)))  # spread over time
        putter = putters[workers[n % len(workers)]]
        item = recommend(putter.stub, user)[0]
        putter.stub.PutEvents(put_request(user, item, f"visible-{n}"), timeout=30)
        acknowledged = time.perf_counter()
        visible: dict[int, float] = {}  # probe index -> ms after the OK
        while len(visible) < len(probes):
            started = time.perf_counter()
            for k, probe in enumerate(probes):
                if k not in visible and item not in recommend(probe.stub, user):
                    visible[k] = (time.perf_counter() - acknowledged) * 1000
            rounds.append((time.perf_counter() - started) * 1000)
            if time.perf_counter() - acknowledged > VISIBLE_WITHIN:
                raise SystemExit(f"{user}: {item} still recommended {VISIBLE_WITHIN} s after OK")
        on_own = max(v for k, v in visible.items() if probes[k].worker == putter.worker)
        on_other = max(v for k, v in visible.items() if probes[k].worker != putter.worker)
        own.append(on_own)
        other.append(on_other)
        everywhere.append(max(on_own, on_other))
    for probe in [*probes, *putters.values()]:
        probe.channel.close()

    def percentiles(values: list[float]) -> dict[str, float]:
        p50, p99, top = np.percentile(values, [50, 99, 100])
        return {"p50_ms": float(p50), "p99_ms": float(p99), "max_ms": float(top)}

    per_worker = {pid: sum(p.worker == pid for p in probes) for pid in workers}
    return {
        "events": len(users),
        "probes_per_worker": list(per_worker.values()),
        "own_worker": percentiles(own),
        "other_workers": percentiles(other),
        "every_worker": percentiles(everywhere),
        "poll_round_ms": float(np.mean(rounds)),
    }


# --- fresh users' GetRecommendations -------------------------------------------------------------


def make_fresh(target: str, users: list[str], work: Path) -> tuple[list[Path], list[int]]:
    """FRESH_EVENTS watched events for each user, wait until the answers exclude them; returns
    (GetRecommendations body per user, its answer's frame length); the first answer is the
    baseline's recorded GetRecommendations response."""
    bodies, sizes = [], []
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.RecommendationServiceStub(channel)
        for k, user in enumerate(users):
            watched = recommend(stub, user)[:FRESH_EVENTS]
            for n, item in enumerate(watched):
                stub.PutEvents(put_request(user, item, f"fresh-{k}-{n}"), timeout=30)
            deadline = time.monotonic() + VISIBLE_WITHIN
            while set(watched) & set(recommend(stub, user)):
                if time.monotonic() > deadline:
                    raise SystemExit(f"{user}: fresh events not visible within {VISIBLE_WITHIN} s")
                time.sleep(0.05)
            body = pb.GetRecommendationsRequest(user_id=user, num_results=NUM_RESULTS)
            path = work / f"GetRecommendations-fresh-{k}.body"
            path.write_bytes(grpc_frame(body.SerializeToString()))
            answer = stub.GetRecommendations(body, timeout=30)
            if len(answer.items) != NUM_RESULTS:
                raise SystemExit(f"{user}: {len(answer.items)} items, not {NUM_RESULTS}")
            bodies.append(path)
            sizes.append(len(grpc_frame(answer.SerializeToString())))
            if k == 0:
                (work / "responses" / "GetRecommendations.bin").write_bytes(
                    answer.SerializeToString()
                )
    return bodies, sizes


# --- one worker count ---------------------------------------------------------------------------


def bench_workers(h2load: str, workers: int, args: argparse.Namespace, model_dir: Path) -> dict:
    work = BENCH_BUILD / f"events-w{workers}"
    if work.exists():
        shutil.rmtree(work)  # the event store too: every run starts empty
    (work / "responses").mkdir(parents=True)
    state_dir = work / "state"
    config = work / "serve.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "backend": "local",
                "local": {"model_dir": str(model_dir), "state_dir": str(state_dir)},
            }
        )
    )
    port, base_port = free_port(), free_port()
    target = f"127.0.0.1:{port}"
    command = [*recs_command(), "serve", "--config", str(config), "--port", str(port),
               "--request-log", "summary", "--request-log-level", "INFO"]  # fmt: skip
    if workers > 1:
        command += ["--workers", str(workers)]
    baseline_command = [
        sys.executable, str(BENCH_DIR / "baseline_server.py"), "--port", str(base_port),
        "--workers", str(workers), "--responses", str(work / "responses"),
    ]  # fmt: skip
    result: dict = {"workers": workers}
    loads: list[Load] = []
    with Server("service", command, work / "service.log") as service:
        print(f"workers={workers}: service SERVING after {service.start_seconds:.2f} s", flush=True)
        if workers > 1:
            children = _children(service.process.pid)  # the workers, not multiprocessing's tracker
            pids = [p for p in children if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
            latency = measure_latency(
                target, port, pids, pick_users(model_dir, args.events, 101), seed=5
            )
            result["latency"] = latency
            print(f"  {machine_line()}")
            print(
                f"  event to visible, {latency['events']} events, "
                f"{'/'.join(map(str, latency['probes_per_worker']))} polling connections per "
                f"worker, poll round {latency['poll_round_ms']:.1f} ms: "
                + "; ".join(
                    f"{name.replace('_', ' ')} p50 {v['p50_ms']:.0f} ms p99 {v['p99_ms']:.0f} ms "
                    f"max {v['max_ms']:.0f} ms"
                    for name, v in latency.items()
                    if name in ("own_worker", "other_workers", "every_worker")
                ),
                flush=True,
            )
        fresh_bodies, fresh_sizes = make_fresh(target, pick_users(model_dir, LOAD_USERS, 202), work)
        put_bodies = []
        for k, user in enumerate(pick_users(model_dir, LOAD_USERS, 303)):
            with grpc.insecure_channel(target) as channel:
                item = recommend(pb_grpc.RecommendationServiceStub(channel), user)[0]
            path = work / f"PutEvents-{k}.body"
            path.write_bytes(grpc_frame(put_request(user, item, f"load-{k}").SerializeToString()))
            put_bodies.append(path)
        with Server("baseline", baseline_command, work / "baseline.log") as _:
            print(f"  {machine_line()}", flush=True)
            for concurrency in args.concurrency:
                pair = []
                for name, at in (("service", port), ("baseline", base_port)):
                    before = stored_events(state_dir)
                    load = h2load_run(
                        h2load, at, "PutEvents", put_bodies, [EMPTY_ANSWER] * LOAD_USERS,
                        concurrency, args.duration, args.warm_up, "PutEvents", name,
                    )  # fmt: skip
                    time.sleep(0.5)  # calls h2load hung up on finish committing
                    load.stored = stored_events(state_dir) - before
                    if name == "service" and not (
                        load.answers <= load.stored <= load.answers + concurrency
                    ):
                        raise SystemExit(
                            f"PutEvents c={concurrency}: {load.answers} OK answers but "
                            f"{load.stored} events stored"
                        )
                    if name == "baseline" and load.stored:
                        raise SystemExit("the baseline's calls reached the event store")
                    pair.append(load)
                _print_pair(*pair)
                loads.extend(pair)
            for concurrency in args.fresh_concurrency:
                pair = []
                for name, at, sizes in (
                    ("service", port, fresh_sizes),
                    ("baseline", base_port, [fresh_sizes[0]] * LOAD_USERS),
                ):
                    load = h2load_run(
                        h2load, at, "GetRecommendations", fresh_bodies, sizes, concurrency,
                        args.duration, args.warm_up, "GetRecommendations fresh", name,
                    )  # fmt: skip
                    pair.append(load)
                _print_pair(*pair)
                loads.extend(pair)
        result["stored_total"] = stored_events(state_dir)
    statuses = logged_statuses(work / "service.log")
    print(f"  request log: {', '.join(f'{n:,} {s}' for s, n in statuses.items()) or 'off'}")
    if set(statuses) - {"OK", "CANCELLED"}:
        raise SystemExit(f"the service answered some calls with an error: see {work}/service.log")
    result["statuses"] = statuses
    result["loads"] = [asdict(load) for load in loads]
    return result


def _print_pair(service: Load, baseline: Load) -> None:
    ratio = service.throughput / baseline.throughput if baseline.throughput else float("nan")
    stored = f" stored {service.stored:,} for {service.answers:,} OK" if service.stored else ""
    print(
        f"  {service.case:<25} c={service.concurrency:<3} service {service.throughput:>7,.0f}/s "
        f"p50 {service.p50_ms:6.2f} p99 {service.p99_ms:6.2f} | baseline "
        f"{baseline.throughput:>7,.0f}/s p50 {baseline.p50_ms:6.2f} p99 {baseline.p99_ms:6.2f} "
        f"| ratio {ratio:4.2f}{stored}",
        flush=True,
    )


def best_ratio(loads: list[Load], case: str) -> tuple[Load, Load, list[float]]:
    """(service, baseline) at the concurrency with the best ratio, and every ratio."""
    pairs = [
        (s, b)
        for s in loads
        for b in loads
        if s.case == b.case == case
        and s.concurrency == b.concurrency
        and (s.server, b.server) == ("service", "baseline")
    ]
    ratios = [s.throughput / b.throughput for s, b in pairs]
    service, baseline = pairs[int(np.argmax(ratios))]
    return service, baseline, ratios


def summary_table(runs: list[dict], store: list[dict]) -> str:
    lines = [
        "| workers | measure | service | baseline | ratio |",
        "|---|---|---|---|---|",
    ]
    for run in runs:
        loads = [Load(**load) for load in run["loads"]]
        for case in dict.fromkeys(load.case for load in loads):
            service, baseline, ratios = best_ratio(loads, case)
            lines.append(
                f"| {run['workers']} | {case} req/s, best ratio (c={service.concurrency}) | "
                f"{service.throughput:,.0f} | {baseline.throughput:,.0f} | "
                f"{service.throughput / baseline.throughput:.2f} "
                f"(all: {', '.join(f'{r:.2f}' for r in ratios)}) |"
            )
        if "latency" in run:
            latency = run["latency"]
            for name in ("own_worker", "other_workers", "every_worker"):
                v = latency[name]
                lines.append(
                    f"| {run['workers']} | event to visible, {name.replace('_', ' ')} "
                    f"({latency['events']} events) | p50 {v['p50_ms']:.0f} ms, "
                    f"p99 {v['p99_ms']:.0f} ms, max {v['max_ms']:.0f} ms | | |"
                )
    for row in store:
        lines.append(
            f"| - | EventStore alone, {row['threads']} threads | {row['calls_per_s']:,.0f} "
            f"calls/s, {row['calls_per_commit']:.1f} calls per commit | | |"
        )
    return "\n".join(lines)


def store_alone(directory: Path, threads: int, duration: float) -> dict:
    """The event store by itself (no gRPC, no fold-in): `threads` callers appending one event
    per call for `duration` s, in this process. The ceiling durable PutEvents can reach."""
    from recs.backends.base import Event
    from recs.backends.local.event_store import EventStore

    if directory.exists():
        shutil.rmtree(directory)
    store = EventStore(directory).open()
    calls = [0] * threads
    end = time.perf_counter() + duration

    def append(k: int) -> None:
        event = Event(event_type="watched", item_id="i1", sent_at=time.time(), event_id="e")
        while time.perf_counter() < end:
            store.append_events(f"u{k}", f"s{k}", [event])
            calls[k] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=append, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    commits = store.commits
    store.close()
    shutil.rmtree(directory)
    return {
        "threads": threads,
        "calls_per_s": sum(calls) / seconds,
        "calls_per_commit": sum(calls) / max(commits, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two workers only, short runs")
    parser.add_argument("--workers", type=int, nargs="+", help="default 1 2 (--quick: 2)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--fresh-concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--events", type=int, help="latency samples (default 200, --quick 60)")
    parser.add_argument("--duration", type=float, help="seconds measured per run (4, quick 2)")
    parser.add_argument("--warm-up", type=float, help="seconds before measuring (1, quick 0.5)")
    parser.add_argument("--model", type=Path, help="model dir (default: the benchmark model)")
    parser.add_argument("--json", type=Path, default=BENCH_BUILD / "events.json")
    args = parser.parse_args()
    args.workers = args.workers or ([2] if args.quick else [1, 2])
    args.events = args.events or (60 if args.quick else 200)
    args.duration = args.duration or (2.0 if args.quick else 4.0)
    args.warm_up = args.warm_up or (0.5 if args.quick else 1.0)

    h2load = ensure_h2load()
    if h2load is None:
        print(
            "bench_events: h2load not found; install it with "
            "`sudo apt-get install nghttp2-client` and run again (skipped)"
        )
        return 0
    model_dir = args.model or ensure_model()[0]
    print(machine_line())
    print(
        f"closed loop, {args.duration:g} s per run after {args.warm_up:g} s warm-up; latencies "
        "in ms; ratio = service / baseline throughput at the same concurrency",
        flush=True,
    )
    store = []
    for threads in args.concurrency:
        store.append(store_alone(BENCH_BUILD / "events-store-alone", threads, args.duration))
        print(
            f"  EventStore alone, {threads:>2} threads: {store[-1]['calls_per_s']:,.0f} calls/s, "
            f"{store[-1]['calls_per_commit']:.1f} calls per commit",
            flush=True,
        )
    runs = [bench_workers(h2load, w, args, model_dir) for w in args.workers]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    saved = {"machine": machine_line(), "store_alone": store, "runs": runs}
    args.json.write_text(json.dumps(saved, indent=1))
    print(summary_table(runs, store))
    print(machine_line())
    print(f"figures saved to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
