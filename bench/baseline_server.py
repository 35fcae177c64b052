"""The benchmark's yardstick: a do-nothing RecommendationService on the service's own stack.

Same grpc.aio server, same server options (`server.app.server_options`), same
concurrency limit and the same number of worker processes (`server.workers`) as
`recs serve`; each RPC parses its request and returns a fixed response recorded from the
real service, so the bytes on the wire are the same size. A GetRecommendations request
naming a filter gets the response recorded for that filter when there is one (a filtered
answer differs in size). Whatever the real service costs beyond this is ours:
validation, the backend call, building the answer, logging. PutEvents and PutItems answer
their empty response at once (bench_events.py): the service's cost there includes the
durable commit.
With --tls-cert and --tls-key it serves TLS with gRPC's own credentials, as `[server.tls]`
makes the service do, so that a TLS run's ratio holds only what the service adds (no
interceptor: a bearer token check is the service's cost).

Usage (by bench_service.py): python bench/baseline_server.py --port P --workers N
--responses DIR [--tls-cert PEM --tls-key PEM]   (DIR/<RpcName>.bin: one response per RPC;
DIR/GetRecommendations.<filter_name>.bin: the response to requests naming that filter)
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import grpc
from grpc import aio

from recs.config import ServerSettings
from recs.server.app import server_options
from recs.server.security import server_credentials
from recs.server.workers import configure_worker_logging, run_workers
from recs.v1 import recommendation_service_pb2 as pb
from recs.v1 import recommendation_service_pb2_grpc as pb_grpc

RESPONSE_TYPES = {
    "GetRecommendations": pb.GetRecommendationsResponse,
    "GetSimilarItems": pb.GetSimilarItemsResponse,
    "GetPopularItems": pb.GetPopularItemsResponse,
    "GetPersonalizedRanking": pb.GetPersonalizedRankingResponse,
}


class BaselineServicer(pb_grpc.RecommendationServiceServicer):
    """Answers every call with the recorded response of its RPC (for GetRecommendations,
    of its filter when one was recorded), doing nothing else."""

    def __init__(self, responses: dict[str, Any]) -> None:
        self._responses = responses
        prefix = "GetRecommendations."
        self._filtered = {
            name.removeprefix(prefix): response
            for name, response in responses.items()
            if name.startswith(prefix)
        }

    async def GetRecommendations(self, request: Any, context: Any) -> Any:
        if request.filter_name:
            return self._filtered.get(request.filter_name, self._responses["GetRecommendations"])
        return self._responses["GetRecommendations"]

    async def GetSimilarItems(self, request: Any, context: Any) -> Any:
        return self._responses["GetSimilarItems"]

    async def GetPopularItems(self, request: Any, context: Any) -> Any:
        return self._responses["GetPopularItems"]

    async def GetPersonalizedRanking(self, request: Any, context: Any) -> Any:
        return self._responses["GetPersonalizedRanking"]

    # The write RPCs answer an empty message, as the service does once the rows are stored.
    async def PutEvents(self, request: Any, context: Any) -> Any:
        return pb.PutEventsResponse()

    async def PutItems(self, request: Any, context: Any) -> Any:
        return pb.PutItemsResponse()


def load_responses(directory: Path) -> dict[str, Any]:
    """The recorded responses as protobuf messages: one per RPC (by its name), and
    GetRecommendations' per filter (by `GetRecommendations.<filter_name>`)."""
    responses = {
        name: message_type.FromString((directory / f"{name}.bin").read_bytes())
        for name, message_type in RESPONSE_TYPES.items()
        if (directory / f"{name}.bin").is_file()
    }
    for path in sorted(directory.glob("GetRecommendations.*.bin")):
        responses[path.stem] = pb.GetRecommendationsResponse.FromString(path.read_bytes())
    return responses


def tls_credentials(cert: str, key: str) -> grpc.ServerCredentials | None:
    """The service's own TLS credentials (`server_credentials`) for cert and key; None: h2c."""
    return server_credentials(Path(cert), Path(key)) if cert else None


async def serve_baseline(
    port: int,
    workers: int,
    responses: dict[str, Any],
    ready: Any,
    credentials: grpc.ServerCredentials | None = None,
) -> None:
    """Serve on 127.0.0.1:port until SIGTERM, like `recs serve` does."""
    settings = ServerSettings(port=port, workers=workers)
    server = aio.server(
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        options=server_options(settings.workers),
    )
    pb_grpc.add_RecommendationServiceServicer_to_server(BaselineServicer(responses), server)
    address = f"{settings.host}:{port}"
    if credentials is None:
        server.add_insecure_port(address)
    else:
        server.add_secure_port(address, credentials)
    await server.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    ready()
    await stop.wait()
    await server.stop(1)


def _worker(
    workers: int,
    directory: str,
    cert: str,
    key: str,
    index: int,
    port: int,
    ready_queue: Any,
    level: int,
) -> None:
    configure_worker_logging(index, level)
    responses = load_responses(Path(directory))
    credentials = tls_credentials(cert, key)
    asyncio.run(
        serve_baseline(port, workers, responses, lambda: ready_queue.put(index), credentials)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="do-nothing baseline server for benchmarks")
    parser.add_argument("--port", type=int, required=True, help="port (0 = any free)")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    parser.add_argument("--responses", type=Path, required=True, help="DIR of <Rpc>.bin files")
    parser.add_argument("--tls-cert", default="", help="serve TLS with this certificate (PEM)")
    parser.add_argument("--tls-key", default="", help="the certificate's private key (PEM)")
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")

    def announce(port: int) -> None:
        print(f"ready: 127.0.0.1:{port}", flush=True)

    if args.workers == 1:
        responses = load_responses(args.responses)
        credentials = tls_credentials(args.tls_cert, args.tls_key)
        asyncio.run(
            serve_baseline(args.port, 1, responses, lambda: announce(args.port), credentials)
        )  # port 0 is not supported here: the harness always picks one
        return 0
    return run_workers(
        args.workers,
        "127.0.0.1",
        args.port,
        _worker,
        (args.workers, str(args.responses), args.tls_cert, args.tls_key),
        announce,
    )


if __name__ == "__main__":
    sys.exit(main())
