"""Server interceptor: maps exceptions to status codes and logs one line per request.

Every unary handler runs inside `_guarded`, so no exception escapes as UNKNOWN and each
call leaves exactly one log line: method, status, latency.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from server.errors import status_for

log = logging.getLogger("recs.requests")

Handler = Callable[[Any, aio.ServicerContext], Awaitable[Any]]


class ErrorMappingInterceptor(aio.ServerInterceptor):
    """Turns domain errors into status codes (server.errors) and logs each request."""

    def __init__(self, log_level: int | str = logging.INFO) -> None:
        self._level = logging.getLevelName(log_level) if isinstance(log_level, str) else log_level
        # Guarded handlers by method path, built on first use: a method's handler never
        # changes, so later calls skip the lookup and the wrapping.
        self._guarded_handlers: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        path = handler_call_details.method
        guarded = self._guarded_handlers.get(path)
        if guarded is not None:
            return guarded
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        guarded = grpc.unary_unary_rpc_method_handler(
            self._guarded(path.rsplit("/", 1)[-1], handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._guarded_handlers[path] = guarded
        return guarded

    def _guarded(self, method: str, behaviour: Handler) -> Handler:
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
                if log.isEnabledFor(self._level):
                    elapsed_ms = (time.perf_counter() - started) * 1000
                    log.log(self._level, "%s %s %.2fms", method, _status_name(status), elapsed_ms)

        return guarded


def _status_name(status: grpc.StatusCode | int) -> str:
    return status.name if isinstance(status, grpc.StatusCode) else str(status)
