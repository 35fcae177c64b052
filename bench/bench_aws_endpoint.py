"""Benchmark GetRecommendations through the AWS-protocol endpoint (`recs serve --aws-port`),
beside the same server's gRPC and a do-nothing baseline for each.

One `recs serve` process (one worker) on the benchmark model (big_model.py: 200k users x 50k
items, precomputed top-25 answers) listens on a gRPC port and an AWS port. h2load (nghttp2's
load generator, in C, boto3-free) drives closed-loop load at concurrency 1, 4, 16 and 64,
split over up to 4 h2load processes, each posting a different user's request, so the answers
are not one user's (bench_service's users):

- **gRPC** GetRecommendations over h2c (bench_service's request, num_results 25), against
  `baseline_server.py` (same grpc.aio stack, answers the service's recorded response);
- **AWS** `POST /recommendations` over HTTP/1.1 with the JSON body boto3 sends,
  `{"campaignArn": ..., "userId": ..., "numResults": 25}` (the stand-in user-personalization
  campaign ARN the server logs at start): without `filterArn`, as Personalize's callers
  usually send it, and with `filterArn` naming `exclude_interacted`, the filter gRPC applies
  by default. A request without `filterArn` is unfiltered (Personalize's meaning), which the
  precomputed table cannot answer (it holds the default filter's answers): those calls are
  scored per request. With the filter the endpoint asks the engine for what gRPC asks;
- **AWS baseline**: a do-nothing HTTP/1.1 server on aiohttp (this script, `--baseline`), set
  up as the endpoint is (`web.Application` with the same body limit, one POST route, no
  access log), that reads the body and answers the endpoint's recorded JSON answer (the same
  bytes, a fixed `x-amzn-RequestId` of the same length): whatever the endpoint costs beyond
  it is its own work (JSON in and out, checking the request, the engine call, the log).

Every figure is printed as a ratio to its baseline at the same concurrency, and each AWS
figure as a ratio to gRPC's throughput (AWS / gRPC).

Answers are checked: each user's AWS answer is recorded first (status 200, a JSON object of
25 items; with the filter, the same items as the gRPC answer); under load, h2load counts a
4xx or 5xx as failed (the run fails), and the body bytes received must be a whole number of
recorded answers (an error answer is another size); at the end the service's request log
must show only OK for `aws:GetRecommendations` (and OK or CANCELLED for gRPC).

Usage: python bench/bench_aws_endpoint.py [--quick] [--concurrency 1 4 16 64]
       [--duration 4] [--no-filtered] [--json build/bench/aws_endpoint.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
import urllib.error
import urllib.request
from dataclasses import asdict
from pathlib import Path

import tomli_w
from bench_service import (
    BENCH_DIR,
    NUM_RESULTS,
    LoadResult,
    Server,
    call_raw,
    ensure_h2load,
    free_port,
    logged_statuses,
    record_calls,
    run_load,
)
from big_model import BENCH_BUILD, ensure_model, machine_line, recs_command, recs_env

from recs.v1 import recommendation_service_pb2 as pb

GRPC = "gRPC"
AWS = "AWS"
AWS_FILTERED = "AWS exclude_interacted"
AWS_PATH = "/recommendations"
JSON_HEADERS: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
DEFAULT_FILTER = "exclude_interacted"  # what gRPC applies to a request naming no filter
FIXED_REQUEST_ID = "00000000-0000-4000-8000-000000000000"  # a uuid4's length
# run_load's arguments for the AWS endpoint: its path, JSON, HTTP/1.1.
HTTP1 = {"path": AWS_PATH, "headers": JSON_HEADERS, "http1": True}
BASELINE_ANSWERS = {False: "answer.json", True: "answer.filtered.json"}  # by "has filterArn"


# The do-nothing baseline (python bench/bench_aws_endpoint.py --baseline PORT DIR) ----------


async def serve_baseline(port: int, answers: dict[bool, bytes]) -> None:
    """Answer every POST with the recorded answer (the filtered one when the body names a
    filterArn) until SIGTERM, on aiohttp set up as the endpoint is."""
    from aiohttp import web

    from recs.server.aws_endpoint import MAX_BODY_BYTES

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        return web.Response(
            status=200,
            body=answers[b'"filterArn"' in raw],
            content_type="application/json",
            headers={"x-amzn-RequestId": FIXED_REQUEST_ID},
        )

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/{operation:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print(f"ready: 127.0.0.1:{port}", flush=True)
    await stop.wait()
    await runner.cleanup()


def baseline_main(port: int, directory: Path) -> int:
    answers = {
        filtered: (directory / name).read_bytes()
        for filtered, name in BASELINE_ANSWERS.items()
        if (directory / name).is_file()
    }
    answers.setdefault(True, answers[False])
    asyncio.run(serve_baseline(port, answers))
    return 0


# The benchmark --------------------------------------------------------------------------


def answered_arns(log_path: Path) -> tuple[str, str]:
    """(user-personalization campaign ARN, exclude_interacted filter ARN) from the server's
    start-up line `AWS-protocol endpoint ... it answers: campaign KIND: ARN; ...`."""
    text = log_path.read_text()
    campaign = re.search(r"campaign user-personalization: (arn:[^;\s]+)", text)
    filter_arn = re.search(rf"filter {DEFAULT_FILTER}: (arn:[^;\s]+)", text)
    if not (campaign and filter_arn):
        raise SystemExit(f"the server did not log the ARNs it answers (see {log_path})")
    return campaign.group(1), filter_arn.group(1)


def post_json(port: int, body: bytes) -> bytes:
    """One POST /recommendations; its answer's body. Fails the run unless status 200."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{AWS_PATH}", data=body, headers=dict(JSON_HEADERS)
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.read()
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"POST {AWS_PATH} {body.decode()}: {exc.code} {exc.read()!r}") from None


def record_aws(
    port: int,
    users: list[str],
    templates: dict[str, dict],
    grpc_items: list[list[str]],
    work: Path,
) -> tuple[dict[str, list[Path]], dict[str, list[int]]]:
    """Write each case's request bodies, record and check each user's answer.

    Returns (body files per case, answer body length per body); the baseline's answers
    (`BASELINE_ANSWERS`) are the first user's."""
    files: dict[str, list[Path]] = {}
    sizes: dict[str, list[int]] = {}
    for case, template in templates.items():
        files[case], sizes[case] = [], []
        for k, user in enumerate(users):
            body = json.dumps({**template, "userId": user}).encode()
            path = work / f"{case.replace(' ', '-')}-{k}.json"
            path.write_bytes(body)
            answer = post_json(port, body)
            if len(post_json(port, body)) != len(answer):  # the byte check needs one size
                raise SystemExit(f"{case}: two answers for {user} differ in size")
            items = [item["itemId"] for item in json.loads(answer).get("itemList", [])]
            if len(items) != NUM_RESULTS:
                raise SystemExit(f"{case}: {len(items)} items for {user}, not {NUM_RESULTS}")
            if case == AWS_FILTERED and items != grpc_items[k]:
                raise SystemExit(f"{case}: {user}'s items differ from gRPC's: not like for like")
            files[case].append(path)
            sizes[case].append(len(answer))
            if k == 0:
                name = BASELINE_ANSWERS[case == AWS_FILTERED]
                (work / "responses" / name).write_bytes(answer)
    return files, sizes


def bench(h2load: str, args: argparse.Namespace, model_dir: Path, catalog: Path) -> dict:
    work = BENCH_BUILD / "aws-endpoint"
    (work / "responses").mkdir(parents=True, exist_ok=True)
    for name in BASELINE_ANSWERS.values():  # an earlier run's, e.g. with the filter
        (work / "responses" / name).unlink(missing_ok=True)
    port, aws_port, grpc_base_port, aws_base_port = (free_port() for _ in range(4))
    config = work / "serve.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "backend": "local",
                "catalog": str(catalog),
                "local": {"model_dir": str(model_dir), "precomputed_answers": True},
            }
        )
    )
    service_command = [
        *recs_command(), "serve", "--config", str(config), "--catalog", str(catalog),
        "--port", str(port), "--aws-port", str(aws_port),
        "--request-log", "summary", "--request-log-level", "INFO",
    ]  # fmt: skip
    grpc_base_command = [
        sys.executable, str(BENCH_DIR / "baseline_server.py"), "--port", str(grpc_base_port),
        "--workers", "1", "--responses", str(work / "responses"),
    ]  # fmt: skip
    aws_base_command = [
        sys.executable, str(Path(__file__).resolve()), "--baseline", str(aws_base_port),
        str(work / "responses"),
    ]  # fmt: skip
    log_path = work / "service.log"
    with Server("service", service_command, log_path, recs_env()) as service:
        print(f"service SERVING after {service.start_seconds:.2f} s", flush=True)
        grpc_bodies, grpc_sizes = record_calls(
            f"127.0.0.1:{port}", ["GetRecommendations"], model_dir, work
        )
        requests = [
            pb.GetRecommendationsRequest.FromString(path.read_bytes()[5:])
            for path in grpc_bodies["GetRecommendations"]
        ]
        users = [request.user_id for request in requests]
        grpc_items = [
            [
                item.item_id
                for item in pb.GetRecommendationsResponse.FromString(
                    call_raw(f"127.0.0.1:{port}", "GetRecommendations", request.SerializeToString())
                ).items
            ]
            for request in requests
        ]
        campaign, filter_arn = answered_arns(log_path)
        plain = {"campaignArn": campaign, "userId": "USER", "numResults": NUM_RESULTS}
        templates = {AWS: plain}
        if args.filtered:
            templates[AWS_FILTERED] = {**plain, "filterArn": filter_arn}
        print(f"users: {', '.join(users)}")
        for case, template in templates.items():
            print(f"{case}: POST {AWS_PATH} {json.dumps(template)}")
        aws_bodies, aws_sizes = record_aws(aws_port, users, templates, grpc_items, work)
        base_sizes = {case: [sizes[0]] * len(sizes) for case, sizes in aws_sizes.items()}
        base_sizes[GRPC] = [grpc_sizes["GetRecommendations"][0]] * len(users)
        results: list[LoadResult] = []
        with (
            Server("gRPC baseline", grpc_base_command, work / "grpc-baseline.log") as grpc_base,
            Server("AWS baseline", aws_base_command, work / "aws-baseline.log") as aws_base,
        ):
            for concurrency in args.concurrency:
                # gRPC first, then each AWS case; each beside its baseline, at once after it.
                grpc_body = grpc_bodies["GetRecommendations"]
                runs = [
                    (GRPC, "service", port, grpc_body, grpc_sizes["GetRecommendations"], {}),
                    (GRPC, "baseline", grpc_base_port, grpc_body, base_sizes[GRPC], {}),
                ]
                for case in templates:
                    # Scored per call (no filterArn), an answer's scores can differ in their
                    # last bits with the batch it was scored in, so its JSON length varies:
                    # its status and the request log check it.
                    sizes = [None] * len(users) if case == AWS else aws_sizes[case]
                    runs += [
                        (case, "service", aws_port, aws_bodies[case], sizes, HTTP1),
                        (case, "baseline", aws_base_port, aws_bodies[case], base_sizes[case],
                         HTTP1),
                    ]  # fmt: skip
                for case, server, target, bodies, expected, wire in runs:
                    result = run_load(
                        h2load, target, "GetRecommendations", bodies, expected, concurrency,
                        args.duration, args.warm_up, server, **wire,
                    )  # fmt: skip
                    result.rpc = case
                    results.append(result)
                for k in range(0, len(runs), 2):
                    _print_pair(results[-len(runs) + k], results[-len(runs) + k + 1], results)
    print(
        f"  stopped: service exit {service.status}, gRPC baseline exit {grpc_base.status}, "
        f"AWS baseline exit {aws_base.status}"
    )
    aws_logged = logged_statuses(log_path, "aws:GetRecommendations")
    grpc_logged = logged_statuses(log_path, "GetRecommendations")
    print(
        "  request log: "
        + "; ".join(
            f"{name} {', '.join(f'{n:,} {s}' for s, n in counts.items()) or 'none'}"
            for name, counts in (("aws:GetRecommendations", aws_logged), (GRPC, grpc_logged))
        )
    )
    answered = sum(r.requests for r in results if r.server == "service" and r.rpc != GRPC)
    if set(aws_logged) != {"OK"} or aws_logged["OK"] < answered:
        raise SystemExit(f"the AWS endpoint's request log shows {aws_logged}: see {log_path}")
    if set(grpc_logged) - {"OK", "CANCELLED"}:
        raise SystemExit(f"the gRPC service answered some calls with an error: see {log_path}")
    return {
        "users": users,
        "requests": {case: json.loads(path[0].read_text()) for case, path in aws_bodies.items()},
        "start_seconds": service.start_seconds,
        "results": [asdict(r) for r in results],
    }


def _print_pair(service: LoadResult, baseline: LoadResult, results: list[LoadResult]) -> None:
    grpc = next(
        r
        for r in results
        if r.rpc == GRPC and r.server == "service" and r.concurrency == service.concurrency
    )
    against_grpc = (
        f" | {AWS}/{GRPC} {service.throughput / grpc.throughput:4.2f}"
        if service.rpc != GRPC
        else ""
    )
    print(
        f"  {service.rpc:<23} c={service.concurrency:<3} "
        f"service {service.throughput:>7,.0f}/s p50 {service.p50_ms:6.2f} p99 {service.p99_ms:6.2f}"
        f" | baseline {baseline.throughput:>7,.0f}/s p99 {baseline.p99_ms:6.2f} | "
        f"ratio {service.throughput / baseline.throughput:4.2f}{against_grpc}",
        flush=True,
    )


def summary_table(results: list[LoadResult]) -> str:
    """Markdown: per concurrency and case, service and baseline throughput and p99, their
    ratio, and (AWS cases) the throughput against gRPC's at that concurrency."""
    lines = [
        "| c | protocol | service req/s | p99 | baseline req/s | baseline p99 | ratio "
        "| AWS / gRPC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for concurrency in dict.fromkeys(r.concurrency for r in results):
        at = [r for r in results if r.concurrency == concurrency]
        grpc = next(r for r in at if r.rpc == GRPC and r.server == "service")
        for case in dict.fromkeys(r.rpc for r in at):
            service, baseline = (
                next(r for r in at if r.rpc == case and r.server == s)
                for s in ("service", "baseline")
            )
            versus = "" if case == GRPC else f"**{service.throughput / grpc.throughput:.2f}**"
            lines.append(
                f"| {concurrency} | {case} | {service.throughput:,.0f} | "
                f"{service.p99_ms:.1f} ms | {baseline.throughput:,.0f} | "
                f"{baseline.p99_ms:.1f} ms | **{service.throughput / baseline.throughput:.2f}** "
                f"| {versus} |"
            )
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--baseline":  # the baseline server's process
        return baseline_main(int(sys.argv[2]), Path(sys.argv[3]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds measured per run")
    parser.add_argument("--warm-up", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run while developing: concurrency 1 and 16, 2 s after 0.5 s warm-up",
    )
    parser.add_argument(
        "--filtered",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"also measure AWS requests naming the {DEFAULT_FILTER} filter (on by default)",
    )
    parser.add_argument("--model", type=Path, help="model dir (default: the benchmark model)")
    parser.add_argument("--catalog", type=Path, help="items.csv for --model")
    parser.add_argument("--json", type=Path, default=BENCH_BUILD / "aws_endpoint.json")
    args = parser.parse_args()
    if args.quick:
        args.concurrency, args.duration, args.warm_up = [1, 16], 2.0, 0.5

    h2load = ensure_h2load()
    if h2load is None:
        print(
            "bench_aws_endpoint: h2load not found; install it with "
            "`sudo apt-get install nghttp2-client` and run again (skipped)"
        )
        return 0
    model_dir, catalog = (args.model, args.catalog) if args.model else ensure_model()
    print(machine_line())
    print(
        f"one server process, closed loop, {args.duration:g} s per run after {args.warm_up:g} s "
        "warm-up; latencies in ms; ratio = service / its baseline's throughput at the same "
        "concurrency (gRPC: baseline_server.py; AWS: a do-nothing aiohttp server)",
        flush=True,
    )
    run = bench(h2load, args, model_dir, catalog)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine_line(), **run}, indent=1))
    print(summary_table([LoadResult(**r) for r in run["results"]]))
    print(machine_line())
    print(f"figures saved to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
