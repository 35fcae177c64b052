"""Latency as one caller feels it: 1,000 sequential client calls per RPC on the `make serve` model.

Starts `recs serve` in its own process on a free port (building the `make serve` data and
model first if they are missing), then times each RPC through the sync client, one call
after another, and prints p50/p99/mean per RPC with the model's training time and size.

    python bench/bench_sequential.py [--calls 1000]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SERVE_DIR = ROOT / "build" / "serve"
MODEL = SERVE_DIR / "model"
CATALOG = SERVE_DIR / "dataset" / "items.csv"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(target: str, seconds: float = 60) -> None:
    from recs.client import RecsClient, RecsError

    deadline = time.monotonic() + seconds
    with RecsClient(target, timeout=1, max_attempts=1) as client:
        while time.monotonic() < deadline:
            try:
                client.popular(1)
                return
            except RecsError:
                time.sleep(0.1)
    raise SystemExit(f"server at {target} not ready within {seconds}s")


def model_size_mib(model_dir: Path) -> float:
    return sum(p.stat().st_size for p in model_dir.iterdir()) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="sequential calls per RPC")
    args = parser.parse_args()

    subprocess.run(["make", "-s", str(MODEL.relative_to(ROOT) / "meta.json")], cwd=ROOT, check=True)
    meta = json.loads((MODEL / "meta.json").read_text())
    port = free_port()
    target = f"127.0.0.1:{port}"
    recs = str(Path(sys.executable).parent / "recs")
    server = subprocess.Popen(
        [
            recs,
            "serve",
            "--model",
            str(MODEL),
            "--catalog",
            str(CATALOG),
            "--port",
            str(port),
            "--request-log-level",
            "DEBUG",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(target)
        from recs.client import RecsClient

        users = np.load(MODEL / "user_ids.npy").tolist()
        items = np.load(MODEL / "item_ids.npy").tolist()
        rng = random.Random(0)
        calls = {
            "GetRecommendations": lambda c: c.recommend(rng.choice(users), 25),
            "GetSimilarItems": lambda c: c.similar(rng.choice(items), 25),
            "GetPopularItems": lambda c: c.popular(25),
            "GetPersonalizedRanking": lambda c: c.rerank(rng.choice(users), rng.sample(items, 50)),
        }
        counts = meta.get("counts", {})
        print(
            f"model: {counts.get('users')} users x {counts.get('items')} items, "
            f"{counts.get('interactions')} interactions, factors {meta['params']['factors']}; "
            f"trained in {meta['training_seconds']:.1f}s; {model_size_mib(MODEL):.1f} MiB on disk"
        )
        print(f"{'rpc':<24}{'calls':>7}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
        with RecsClient(target, timeout=5) as client:
            for name, call in calls.items():
                for _ in range(50):  # warm-up
                    call(client)
                timings = []
                for _ in range(args.calls):
                    started = time.perf_counter()
                    call(client)
                    timings.append((time.perf_counter() - started) * 1000)
                t = np.array(timings)
                print(
                    f"{name:<24}{len(t):>7}{np.percentile(t, 50):>9.2f}"
                    f"{np.percentile(t, 99):>9.2f}{t.mean():>9.2f}"
                )
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
