"""Benchmark start-up and memory: process start to SERVING, and RSS/PSS per process.

`recs serve` on the benchmark model (200k users x 50k items, 64 factors; see
big_model.py) with 1 and 2 workers, three starts each: the time from launching the
process to the ready line (printed once every worker reports SERVING on the health
service), checked by a health call. Then, after 200 GetRecommendations calls over
several connections (so every worker has touched the factor matrices), each process's
RSS and PSS from /proc/PID/smaps_rollup: the model is memory-mapped, so with 2 workers
its pages are shared and PSS (which divides shared pages among their users) is well
under RSS.

Goal: SERVING within 3 s; with --workers 2 the factor matrices shared, not copied.

Usage: python bench/bench_startup.py [--workers 1 2] [--starts 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys

import grpc
import numpy as np
from bench_service import Server, free_port
from big_model import BENCH_BUILD, ensure_model, machine_line, recs_command
from grpc_health.v1 import health_pb2, health_pb2_grpc

from recs.v1 import recommendation_service_pb2 as pb
from recs.v1 import recommendation_service_pb2_grpc as pb_grpc

GOAL_SECONDS = 3.0


def check_serving(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest()).status
    if status != health_pb2.HealthCheckResponse.SERVING:
        raise SystemExit(f"{target}: ready line printed but health says {status}")


def touch_model(target: str, users: list[str]) -> None:
    """Recommend for `users` over 8 connections, so each worker maps the factor pages."""
    for k in range(8):
        with grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
            stub = pb_grpc.RecommendationServiceStub(ch)
            for user in users[k::8]:
                stub.GetRecommendations(pb.GetRecommendationsRequest(user_id=user), timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    model_dir, catalog = ensure_model()
    size = sum(p.stat().st_size for p in model_dir.iterdir()) / 2**20
    factors = sum((model_dir / f).stat().st_size for f in ("user_factors.npy", "item_factors.npy"))
    user_ids = np.load(model_dir / "user_ids.npy", mmap_mode="r")
    users = [str(u) for u in user_ids[:: max(len(user_ids) // 200, 1)][:200]]
    print(machine_line())
    print(f"model {model_dir}: {size:,.0f} MiB on disk, factor matrices {factors / 2**20:,.0f} MiB")
    for workers in args.workers:
        times = []
        for start in range(args.starts):
            port = free_port()
            command = [
                *recs_command(), "serve", "--backend", "local", "--model", str(model_dir),
                "--catalog", str(catalog), "--port", str(port), "--workers", str(workers),
            ]  # fmt: skip
            log = BENCH_BUILD / f"startup-w{workers}.log"
            with Server("service", command, log) as server:
                check_serving(f"127.0.0.1:{port}")
                times.append(server.start_seconds)
                if start == args.starts - 1:
                    touch_model(f"127.0.0.1:{port}", users)
                    memory = server.memory()
        print(
            f"workers={workers}: process start -> SERVING in {statistics.median(times):.2f} s "
            f"(median of {args.starts}: {', '.join(f'{t:.2f}' for t in times)}; "
            f"goal {GOAL_SECONDS:.0f} s)"
        )
        for pid, rss, pss in memory:
            role = "supervisor" if pid == memory[0][0] and workers > 1 else "server"
            if workers > 1 and pid != memory[0][0]:
                role = "worker" if rss > 50 * 1024 else "multiprocessing helper"
            print(f"  {role:<23} pid {pid}: RSS {rss / 1024:7,.0f} MiB, PSS {pss / 1024:7,.0f} MiB")
        total_rss = sum(r for _, r, _ in memory) / 1024
        total_pss = sum(p for _, _, p in memory) / 1024
        print(f"  all processes: RSS {total_rss:,.0f} MiB, PSS {total_pss:,.0f} MiB")
    print(machine_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
