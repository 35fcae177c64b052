"""The service's gRPC method table: each RPC guarded by the error mapping and the request log.

Every method of `recs.v1.RecommendationService` is registered with `guard`, the one place
where exceptions become status codes (table in `server.errors`) and where each call is
recorded in the request log (`server.request_log`). The table is built from the proto's service
descriptor, so a new RPC is served (and guarded) as soon as the servicer implements it.

Guarding at registration rather than in a server interceptor spares every call the
interceptor chain's extra coroutine and handler lookup. Handlers may return serialized
bytes (`server.encoding`) or a message; the response serializer passes bytes through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from recs.server.errors import status_for
from recs.server.request_log import RequestLog, log
from recs.v1 import recommendation_service_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["RecommendationService"]

Handler = Callable[[Any, aio.ServicerContext], Awaitable[Any]]


def add_service(server: aio.Server, servicer: object, request_log: RequestLog) -> None:
    """Register every RPC of the service on `server`, answered by `servicer`, guarded."""
    handlers = {
        method.name: grpc.unary_unary_rpc_method_handler(
            guard(method.name, getattr(servicer, method.name), request_log),
            request_deserializer=getattr(pb, method.input_type.name).FromString,
            response_serializer=serialize,
        )
        for method in SERVICE.methods
    }
    generic = grpc.method_handlers_generic_handler(SERVICE.full_name, handlers)
    server.add_generic_rpc_handlers((generic,))
    server.add_registered_method_handlers(SERVICE.full_name, handlers)


def serialize(response: Any) -> bytes:
    """Wire bytes of a response: already-encoded bytes as they are, messages serialized."""
    return response if type(response) is bytes else response.SerializeToString()


def guard(method: str, behaviour: Handler, request_log: RequestLog) -> Handler:
    """`behaviour` with errors mapped to status codes, each call in the request log."""

    async def guarded(request: Any, context: aio.ServicerContext) -> Any:
        started = time.perf_counter()
        try:
            response = await behaviour(request, context)
        except aio.AbortError:
            status = context.code() or grpc.StatusCode.UNKNOWN
            request_log.failed(method, status, time.perf_counter() - started, context.details())
            raise
        except asyncio.CancelledError:
            request_log.failed(method, grpc.StatusCode.CANCELLED, time.perf_counter() - started)
            raise
        except Exception as exc:
            status, message = status_for(exc)
            if status is grpc.StatusCode.INTERNAL:
                log.exception("%s failed unexpectedly", method)
            request_log.failed(method, status, time.perf_counter() - started, message)
            await context.abort(status, message)
        request_log.ok(method, time.perf_counter() - started)
        return response

    return guarded
