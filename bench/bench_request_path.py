"""Issue #18's request-path harness: one `recs serve` worker against a do-nothing baseline.

Exactly the issue's configuration: a 50,000-user x 20,000-item `recs synth` model (2.5M
events, 64 factors, `recs precompute` run; built once under build/bench/request-path/ by
the real commands and reused while present), one `recs serve` worker as shipped (request
log on, summary; `--metrics-port` set) and `baseline_server.py` (the same grpc.aio stack
answering the same recorded response bytes, see bench_service.py). Per case, one h2load
process posts one length-prefixed body: `h2load -n 20000 -c 4 -m 16 -t 1`, the service
then the baseline, alternated three times; each alternation's ratio (service / baseline
throughput) is printed and the median is the figure. A short unmeasured h2load run warms
both servers before each case.

Cases: GetRecommendations answered from the precomputed table; the same scored per call
(a second service with `[local] precomputed_answers = false`); the same with the
bench_service.py category filter (scored per call; every recorded answer checked);
GetSimilarItems; GetPopularItems; GetPersonalizedRanking of 50 ids. The baseline answers
the scored case with the table case's recorded answer (same size).

Then the p99 below saturation: per case, the service at half of its best throughput above
(h2load --rps, same -c 4 -m 16, for a fixed time), and the baseline at the same offered
rate, alternated as many times as the throughput runs (one stall moves a 5-second run's
tail by milliseconds); the goal is a median p99 within 5 ms of the baseline's.

The table gives the issue's goals beside the figures. Answers are checked as in
bench_service.py (DATA bytes a whole number of recorded answers; no failed, errored or
timed-out request; the request log and /metrics show only OK calls, and the same counts).

--quick: -n 5000, one alternation, 3 s rate-limited runs, every case (about 70 s once the
model exists; the full mode takes about 6 minutes). --profile: after the runs, py-spy (if
found) records the table service for 10 s under the same load: a flame graph and the top
self-time functions.

Usage: python bench/bench_request_path.py [--quick] [--cases ...] [--profile]
       [--json build/bench/request_path.json (--quick: request_path_quick.json)]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import tomli_w
from bench_service import (
    BENCH_DIR,
    FILTER_CATEGORIES,
    FILTER_EXPRESSION,
    FILTER_NAME,
    FILTERED,
    GRPC_HEADERS,
    SERVICE_PATH,
    LoadResult,
    Server,
    catalog_categories,
    ensure_h2load,
    filter_values,
    free_port,
    h2load_command,
    logged_statuses,
    record_calls,
    run_load,
    scrape_calls,
)
from big_model import BENCH_BUILD, _step, machine_line, recs_command, stored_format_version

USERS, ITEMS, EVENTS, FACTORS = 50_000, 20_000, 2_500_000, 64
WORK = BENCH_BUILD / "request-path"
RAW_DIR, DATASET_DIR, MODEL_DIR = WORK / "raw", WORK / "dataset", WORK / "model"

CONNECTIONS, STREAMS = 4, 16  # h2load -c 4 -m 16 -t 1, one process
TABLE = "GetRecommendations"
SCORED = "GetRecommendations scored"
CASES = (
    TABLE,
    SCORED,
    FILTERED,
    "GetSimilarItems",
    "GetPopularItems",
    "GetPersonalizedRanking",
)
GOALS = {  # minimum ratio to the baseline, from the issue
    TABLE: 0.85,
    "GetSimilarItems": 0.85,
    "GetPopularItems": 0.85,
    SCORED: 0.6,
    FILTERED: 0.6,
    "GetPersonalizedRanking": 0.7,
}
P99_GOAL_MS = 5.0


def ensure_model() -> tuple[Path, Path]:
    """(model directory, catalog items.csv), built by the real commands if missing (or in
    another format_version than this code reads), as big_model.py builds its own."""
    from recs.backends.local.answers import NORMALIZERS_FILE
    from recs.backends.local.artifacts import FORMAT_VERSION

    started = time.perf_counter()
    built = False
    if not (RAW_DIR / "watch_log.csv").is_file():
        _step(
            "raw watch log",
            [
                "synth", "--out", str(RAW_DIR), "--users", str(USERS), "--items", str(ITEMS),
                "--events", str(EVENTS), "--seed", "7", "--no-progress",
            ],
        )  # fmt: skip
        built = True
    if not (DATASET_DIR / "interactions.csv").is_file():
        _step(
            "dataset",
            [
                "prepare", "--watch-log", str(RAW_DIR / "watch_log.csv"),
                "--items", str(RAW_DIR / "items.csv"), "--out", str(DATASET_DIR), "--no-progress",
            ],
        )  # fmt: skip
        built = True
    if stored_format_version(MODEL_DIR) != FORMAT_VERSION:
        _step(
            "model",
            [
                "train", "--data", str(DATASET_DIR), "--out", str(MODEL_DIR),
                "--factors", str(FACTORS), "--no-progress",
            ],
        )  # fmt: skip
        built = True
    if not all((MODEL_DIR / name).is_file() for name in ("answers.json", NORMALIZERS_FILE)):
        _step("precomputed answers", ["precompute", "--model", str(MODEL_DIR)])
        built = True
    if built:
        print(f"  model built in {time.perf_counter() - started:.0f} s", flush=True)
    else:
        print(f"model: {MODEL_DIR} (reused)", flush=True)
    return MODEL_DIR, DATASET_DIR / "items.csv"


def service_command(config: Path, catalog: Path, port: int, metrics_port: int) -> list[str]:
    """`recs serve` as shipped: one worker, request log (summary), metrics on."""
    return [
        *recs_command(), "serve", "--config", str(config), "--catalog", str(catalog),
        "--port", str(port), "--request-log", "summary", "--request-log-level", "INFO",
        "--metrics-port", str(metrics_port),
    ]  # fmt: skip


def write_config(path: Path, model_dir: Path, catalog: Path, precomputed: bool) -> Path:
    settings = {
        "backend": "local",
        "catalog": str(catalog),
        "local": {"model_dir": str(model_dir), "precomputed_answers": precomputed},
        "filters": {FILTER_NAME: FILTER_EXPRESSION},
    }
    path.write_text(tomli_w.dumps(settings))
    return path


def bench(h2load: str, args: argparse.Namespace, model_dir: Path, catalog: Path) -> dict:
    WORK.mkdir(parents=True, exist_ok=True)
    cases = args.cases
    categories = catalog_categories(catalog, FILTER_CATEGORIES)
    ports = {"service": free_port(), "scored": free_port(), "baseline": free_port()}
    metrics = {"service": free_port(), "scored": free_port()}
    print(
        f"{FILTERED}: filter {FILTER_NAME} = '{FILTER_EXPRESSION}', "
        f"filter_values {filter_values(categories)}",
        flush=True,
    )
    table_dir, scored_dir = WORK / "service", WORK / "scored"
    for directory in (table_dir, scored_dir):
        (directory / "responses").mkdir(parents=True, exist_ok=True)
    servers: dict[str, Server] = {}
    try:
        servers["service"] = Server(
            "service",
            service_command(
                write_config(table_dir / "serve.toml", model_dir, catalog, True),
                catalog, ports["service"], metrics["service"],
            ),
            table_dir / "service.log",
        )  # fmt: skip
        print(f"service (table) SERVING after {servers['service'].start_seconds:.2f} s")
        plain = [c for c in cases if c != SCORED]
        bodies, sizes = record_calls(
            f"127.0.0.1:{ports['service']}", plain, model_dir, table_dir, categories=categories
        )
        base_sizes = {case: [s[0]] * len(s) for case, s in sizes.items()}
        if SCORED in cases:
            servers["scored"] = Server(
                "scored",
                service_command(
                    write_config(scored_dir / "serve.toml", model_dir, catalog, False),
                    catalog, ports["scored"], metrics["scored"],
                ),
                scored_dir / "service.log",
            )  # fmt: skip
            print(
                f"service (scored per call) SERVING after {servers['scored'].start_seconds:.2f} s"
            )
            scored_bodies, scored_sizes = record_calls(
                f"127.0.0.1:{ports['scored']}", [TABLE], model_dir, scored_dir
            )
            bodies[SCORED], sizes[SCORED] = scored_bodies[TABLE], scored_sizes[TABLE]
            # The baseline answers the table case's recorded answer (the same size).
            table_answer = (table_dir / "responses" / f"{TABLE}.bin").read_bytes()
            base_sizes[SCORED] = [len(table_answer) + 5] * len(sizes[SCORED])
        for name in metrics:
            if name in servers:
                scrape_calls(metrics[name])  # served before the load, not only after
        servers["baseline"] = Server(
            "baseline",
            [
                sys.executable, str(BENCH_DIR / "baseline_server.py"),
                "--port", str(ports["baseline"]), "--workers", "1",
                "--responses", str(table_dir / "responses"),
            ],
            WORK / "baseline.log",
        )  # fmt: skip

        def load(case: str, server: str, requests: int | None, rps: float | None = None):
            target = "scored" if (case == SCORED and server == "service") else server
            expected = sizes[case] if server == "service" else base_sizes[case]
            method = TABLE if case in (SCORED, FILTERED) else case
            return run_load(
                h2load, ports[target], case, bodies[case][:1], expected[:1], CONNECTIONS,
                args.rate_seconds, 1.0, server, target_rps=rps, path=SERVICE_PATH + method,
                requests=requests, streams=STREAMS,
            )  # fmt: skip

        results: dict[str, dict] = {}
        for case in cases:
            for server in ("service", "baseline"):
                load(case, server, args.warm_up_requests)
            runs = []
            for alternation in range(args.alternations):
                service = load(case, "service", args.requests)
                baseline = load(case, "baseline", args.requests)
                ratio = service.throughput / baseline.throughput
                runs.append(
                    {"service": asdict(service), "baseline": asdict(baseline), "ratio": ratio}
                )
                print(
                    f"  {case:<27} run {alternation + 1}: service {service.throughput:>7,.0f}/s "
                    f"p50 {service.p50_ms:6.2f} p99 {service.p99_ms:6.2f} | baseline "
                    f"{baseline.throughput:>7,.0f}/s p50 {baseline.p50_ms:6.2f} "
                    f"p99 {baseline.p99_ms:6.2f} | ratio {ratio:4.2f}",
                    flush=True,
                )
            results[case] = {"runs": runs, "ratio": statistics.median(r["ratio"] for r in runs)}
        for case in cases:
            best = max(r["service"]["throughput"] for r in results[case]["runs"])
            halves = []
            for _ in range(args.alternations):  # a 5 s tail moves with one stall: repeat
                half = load(case, "service", None, best / 2)
                base = load(case, "baseline", None, best / 2)
                halves.append(
                    {
                        "service": asdict(half),
                        "baseline": asdict(base),
                        "p99_difference_ms": half.p99_ms - base.p99_ms,
                    }
                )
                print(
                    f"  {case} at half saturation ({best / 2:,.0f} req/s offered, "
                    f"{half.throughput:,.0f} served): p50 {half.p50_ms:.2f} ms, "
                    f"p99 {half.p99_ms:.2f} ms"
                    f" | baseline: p50 {base.p50_ms:.2f} ms, p99 {base.p99_ms:.2f} ms "
                    f"| p99 difference {half.p99_ms - base.p99_ms:+.2f} ms",
                    flush=True,
                )
            results[case]["halves"] = halves
            results[case]["p99_difference_ms"] = statistics.median(
                h["p99_difference_ms"] for h in halves
            )
        if args.profile:
            profile(h2load, ports["service"], bodies[TABLE][0], servers["service"].process.pid)
        time.sleep(1.0)
        counted = {name: scrape_calls(metrics[name]) for name in metrics if name in servers}
    finally:
        statuses = {name: server.stop() for name, server in servers.items()}
    print(f"  stopped: {', '.join(f'{n} exit {s}' for n, s in statuses.items())}")
    for name, directory in (("service", table_dir), ("scored", scored_dir)):
        if name not in counted:
            continue
        logged = logged_statuses(directory / "service.log")
        print(
            f"  {name}: request log {', '.join(f'{n:,} {s}' for s, n in logged.items())}; "
            f"metrics {', '.join(f'{n:,} {s}' for s, n in counted[name].items())}"
        )
        if set(logged) - {"OK", "CANCELLED"}:  # CANCELLED: h2load hung up at a run's end
            raise SystemExit(f"the {name} answered some calls with an error: see its service.log")
        if counted[name] != logged:
            raise SystemExit(f"the {name}'s metrics did not count the calls its request log shows")
    return results


def profile(h2load: str, port: int, body: Path, pid: int, seconds: int = 10) -> None:
    """py-spy on the service under the measured load (GetRecommendations from the table):
    a flame graph (svg) and the top self-time functions (from a raw record)."""
    py_spy = shutil.which("py-spy") or (
        "/tmp/pyspy/bin/py-spy" if os.path.exists("/tmp/pyspy/bin/py-spy") else None
    )
    if py_spy is None:
        print("  profile: py-spy not found (pip install py-spy), skipped")
        return
    with tempfile.TemporaryDirectory(prefix="h2load-") as tmp:
        command = h2load_command(
            h2load, CONNECTIONS, 2 * seconds + 8, 1.0, body, Path(tmp) / "log",
            GRPC_HEADERS, streams=STREAMS,
        )  # fmt: skip
        load = subprocess.Popen(
            [*command, f"http://127.0.0.1:{port}{SERVICE_PATH}{TABLE}"], stdout=subprocess.DEVNULL
        )
        time.sleep(2)
        svg, raw = WORK / "flame-getrecommendations.svg", WORK / "profile-getrecommendations.txt"
        record = [py_spy, "record", "--native", "-r", "200", "-d", str(seconds), "-p", str(pid)]
        subprocess.run([*record, "-o", str(svg)], check=True, capture_output=True)
        subprocess.run(
            [*record, "--format", "raw", "-o", str(raw)], check=True, capture_output=True
        )
        load.wait()
    print(f"  profile: {svg} (raw stacks: {raw})")
    print(profile_summary(raw))


IDLE_LEAVES = ("epoll_wait", "epoll_pwait", "poll", "select")


def owner_of(frame: str) -> str | None:
    """A frame's function without its line (`f (path.py)`), or "grpc cygrpc (native)" for
    gRPC's Cython core; None for other native frames (libc, libpython, numpy)."""
    if "cygrpc" in frame:
        return "grpc cygrpc (native)"
    if ".py:" in frame:
        return re.sub(r":\d+\)$", ")", frame)
    return None


def profile_summary(raw: Path, top: int = 15) -> str:
    """The event loop's thread (stacks through `run_forever`) from py-spy's raw record: its
    busy share (leaf not epoll_wait) and the top self-time frames of its busy samples, native
    and by owner (nearest Python function, or gRPC's Cython core). Other threads wait on
    queues almost all the time."""
    loop_total, busy = 0, 0
    leaves: dict[str, int] = {}
    python: dict[str, int] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "run_forever" not in stack:
            continue
        frames, samples = stack.split(";"), int(count)
        loop_total += samples
        if frames[-1].split(" ")[0] in IDLE_LEAVES:
            continue
        busy += samples
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + samples
        owner = next((owner_of(f) for f in reversed(frames) if owner_of(f)), frames[-1])
        python[owner] = python.get(owner, 0) + samples
    if not loop_total:
        return "  (no event-loop samples)"
    lines = [
        f"  event loop: {loop_total:,} samples, busy {100 * busy / loop_total:.0f} %; "
        "top self time, % of busy samples:"
    ]
    for title, counts in (("frame", leaves), ("owner: Python function or gRPC core", python)):
        lines.append(f"    by {title}:")
        for name, count in sorted(counts.items(), key=lambda kv: -kv[1])[:top]:
            lines.append(f"      {100 * count / busy:5.1f} %  {name}")
    return "\n".join(lines)


def goals_table(results: dict) -> str:
    lines = [
        "| case | ratio runs | median | goal | | p99 at half saturation, service − baseline: "
        "runs → median | goal |",
        "|---|---|---|---|---|---|---|",
    ]
    for case, result in results.items():
        runs = ", ".join(f"{r['ratio']:.2f}" for r in result["runs"])
        goal = GOALS[case]
        met = "met" if result["ratio"] >= goal else "not met"
        p99, p99_met = "—", ""
        if "halves" in result:
            diffs = ", ".join(f"{h['p99_difference_ms']:+.1f}" for h in result["halves"])
            median = result["p99_difference_ms"]
            offered = LoadResult(**result["halves"][0]["service"]).throughput
            p99 = f"{diffs} → {median:+.1f} ms at {offered:,.0f}/s"
            p99_met = "met" if median <= P99_GOAL_MS else "not met"
        lines.append(
            f"| {case} | {runs} | {result['ratio']:.3f} | ≥ {goal} | {met} | {p99} | "
            f"≤ {P99_GOAL_MS:g} ms {p99_met} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="-n 5000, one alternation")
    parser.add_argument("--cases", nargs="+", choices=CASES, help="default: all")
    parser.add_argument("--profile", action="store_true", help="py-spy the table service")
    parser.add_argument("--model", type=Path, help="model dir (default: the issue's model)")
    parser.add_argument("--catalog", type=Path, help="items.csv for --model")
    parser.add_argument(
        "--json",
        type=Path,
        help="default: build/bench/request_path.json (--quick: request_path_quick.json)",
    )
    args = parser.parse_args()
    args.cases = [c for c in CASES if c in (args.cases or CASES)]
    if args.json is None:
        args.json = BENCH_BUILD / ("request_path_quick.json" if args.quick else "request_path.json")
    args.requests = 5_000 if args.quick else 20_000
    args.alternations = 1 if args.quick else 3
    args.warm_up_requests = 1_000 if args.quick else 2_000
    args.rate_seconds = 3.0 if args.quick else 5.0

    h2load = ensure_h2load()
    if h2load is None:
        print("bench_request_path: h2load not found (apt-get install nghttp2-client), skipped")
        return 0
    model_dir, catalog = (args.model, args.catalog) if args.model else ensure_model()
    started = time.perf_counter()
    before = machine_line()
    print(before)
    print(
        f"{'quick: ' if args.quick else ''}h2load -n {args.requests} -c {CONNECTIONS} "
        f"-m {STREAMS} -t 1 (one body), service then baseline, {args.alternations} "
        "alternation(s); one worker, request log summary, metrics on; latencies in ms",
        flush=True,
    )
    results = bench(h2load, args, model_dir, catalog)
    after = machine_line()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    saved = {
        "mode": "quick" if args.quick else "full",
        "h2load": f"-n {args.requests} -c {CONNECTIONS} -m {STREAMS} -t 1",
        "machine_before": before,
        "machine_after": after,
        "seconds": time.perf_counter() - started,
        "results": results,
    }
    args.json.write_text(json.dumps(saved, indent=1))
    print(goals_table(results))
    print(f"before: {before}\nafter:  {after}")
    print(f"measured in {time.perf_counter() - started:.0f} s; figures saved to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
