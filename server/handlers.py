"""The service's gRPC method table: each RPC guarded by the error mapping and the request log.

Every method of `recs.v1.RecommendationService` is registered with `guard`, the one place
where exceptions become status codes (table in `server.errors`) and where each call leaves
its log line: method, status, latency. The table is built from the proto's service
descriptor, so a new RPC is served (and guarded) as soon as the servicer implements it.

Guarding at registration rather than in a server interceptor spares every call the
interceptor chain's extra coroutine and handler lookup. Handlers may return serialized
bytes (`server.encoding`) or a message; the response serializer passes bytes through.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from recs.v1 import recommendation_service_pb2 as pb
from server.errors import status_for
from server.request_log import log

SERVICE = pb.DESCRIPTOR.services_by_name["RecommendationService"]

Handler = Callable[[Any, aio.ServicerContext], Awaitable[Any]]


def add_service(server: aio.Server, servicer: object, log_level: int | str) -> None:
    """Register every RPC of the service on `server`, answered by `servicer`, guarded."""
    level = logging.getLevelName(log_level) if isinstance(log_level, str) else log_level
    handlers = {
        method.name: grpc.unary_unary_rpc_method_handler(
            guard(method.name, getattr(servicer, method.name), level),
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


def guard(method: str, behaviour: Handler, level: int) -> Handler:
    """`behaviour` with errors mapped to status codes and one log line per call."""

    async def guarded(request: Any, context: aio.ServicerContext) -> Any:
        started = time.perf_counter()
        status = grpc.StatusCode.OK
        try:
            return await behaviour(request, context)
        except aio.AbortError:
            status = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except asyncio.CancelledError:
            status = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:
            status, message = status_for(exc)
            if status is grpc.StatusCode.INTERNAL:
                log.exception("%s failed unexpectedly", method)
            await context.abort(status, message)
        finally:
            if log.isEnabledFor(level):
                elapsed_ms = (time.perf_counter() - started) * 1000
                log.log(level, "%s %s %.2fms", method, _status_name(status), elapsed_ms)

    return guarded


def _status_name(status: grpc.StatusCode | int) -> str:
    return status.name if isinstance(status, grpc.StatusCode) else str(status)
