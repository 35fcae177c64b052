"""The service's gRPC method table: each RPC guarded by the error mapping and the request log.

Every method of `recs.v1.RecommendationService` is registered with `guard`, the one place
where exceptions become status codes (table in `server.errors`) and where each call is
recorded in the request log (`server.request_log`) and the metrics (`server.metrics`). The
table is built from the proto's service descriptor, so a new RPC is served (and guarded) as
soon as the servicer implements it.

Guarding at registration rather than in a server interceptor spares every call the
interceptor chain's extra coroutine and handler lookup. The recommendation RPCs answer
wire bytes (`server.encoding`), which gRPC sends as they are (no serializer registered:
one Python call less per answer); the others answer a message, serialized by protobuf.

Requests are parsed inside the guard, not by gRPC's deserializer hook: bytes that are not a
valid request (corrupt wire data, invalid UTF-8 in a string field) then get INVALID_ARGUMENT
and one request-log entry under its per-interval cap, where a failing deserializer would give
the caller UNKNOWN and the log a traceback per call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc import aio

from recs.server.encoding import ENCODED_RESPONSES
from recs.server.errors import status_for
from recs.server.metrics import ServiceMetrics
from recs.server.request_log import RequestLog, log, status_name
from recs.v1 import recommendation_service_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["RecommendationService"]

Handler = Callable[[Any, aio.ServicerContext], Awaitable[Any]]
Parser = Callable[[bytes], Any]


def add_service(
    server: aio.Server,
    servicer: object,
    request_log: RequestLog,
    metrics: ServiceMetrics | None = None,
) -> None:
    """Register every RPC of the service on `server`, answered by `servicer`, guarded.

    With `metrics`, every call is also counted in the Prometheus metrics.
    """
    handlers = {}
    for method in SERVICE.methods:
        handler = guard(
            method.name,
            getattr(servicer, method.name),
            request_log,
            parse=getattr(pb, method.input_type.name).FromString,
            request_type=method.input_type.full_name,
            metrics=metrics,
        )
        encoded = method.output_type.full_name in ENCODED_RESPONSES
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            handler, response_serializer=None if encoded else _serialize_message
        )
    generic = grpc.method_handlers_generic_handler(SERVICE.full_name, handlers)
    server.add_generic_rpc_handlers((generic,))
    server.add_registered_method_handlers(SERVICE.full_name, handlers)


def _serialize_message(response: Any) -> bytes:
    return response.SerializeToString()


def guard(
    method: str,
    behaviour: Handler,
    request_log: RequestLog,
    parse: Parser,
    request_type: str,
    metrics: ServiceMetrics | None = None,
) -> Handler:
    """`behaviour` on the parsed request, errors mapped to status codes, each call logged
    (and, with `metrics`, counted: in flight while it runs, then by status and latency).

    The guarded handler takes the request's wire bytes (no deserializer is registered).
    One coroutine does all of it: each wrapper coroutine more costs every call.
    """
    invalid_request = f"request: not a valid {request_type}"

    def failed(status: grpc.StatusCode, started: float, message: str = "") -> None:
        seconds = time.perf_counter() - started
        request_log.failed(method, status, seconds, message)
        if metrics is not None:
            metrics.call(method, status_name(status), seconds)

    async def guarded(wire: bytes, context: aio.ServicerContext) -> Any:
        started = time.perf_counter()
        if metrics is not None:
            metrics.calls_in_flight += 1
        try:
            response = await behaviour(parse(wire), context)
        except DecodeError:
            failed(grpc.StatusCode.INVALID_ARGUMENT, started, invalid_request)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, invalid_request)
        except aio.AbortError:
            failed(context.code() or grpc.StatusCode.UNKNOWN, started, context.details() or "")
            raise
        except asyncio.CancelledError:
            failed(grpc.StatusCode.CANCELLED, started)
            raise
        except Exception as exc:
            status, message = status_for(exc)
            if status is grpc.StatusCode.INTERNAL:
                log.exception("%s failed unexpectedly", method)
            failed(status, started, message)
            await context.abort(status, message)
        finally:
            if metrics is not None:
                metrics.calls_in_flight -= 1
        seconds = time.perf_counter() - started
        request_log.ok(method, seconds)
        if metrics is not None:
            metrics.call(method, "OK", seconds)
        return response

    return guarded
