"""The ready line: what the operator sees on stdout once the service answers.

Its own module because both the single-process server (`app`) and the supervisor of several
workers (`workers`, which imports neither gRPC nor the backend) print it.
"""

from __future__ import annotations

import sys


def print_ready(host: str, port: int, backend_name: str, workers: int = 1) -> None:
    """The one line on stdout telling the operator the service answers, and how to try it."""
    processes = f" workers={workers}" if workers > 1 else ""
    recs = sys.argv[0] if sys.argv[0].endswith("recs") else "recs"  # e.g. .venv/bin/recs
    print(
        f"ready: {host}:{port} backend={backend_name}{processes} — try: "
        f"{recs} popular --target {host}:{port}",
        flush=True,
    )
