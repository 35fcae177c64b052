"""Domain errors to gRPC status codes: the one table, and the one place that applies it.

Clients see a status code and a message written for them; raw exception text from
libraries never leaves the server (unexpected errors are logged with their traceback
and answered INTERNAL with a generic message).
"""

from __future__ import annotations

import grpc

from recs.backends.errors import (
    BackendError,
    BackendMisconfiguredError,
    BackendTimeoutError,
    BackendUnavailableError,
    InvalidRequestError,
    ModelLoadError,
)

STATUS_BY_ERROR: dict[type[BackendError], grpc.StatusCode] = {
    InvalidRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    BackendUnavailableError: grpc.StatusCode.UNAVAILABLE,
    BackendTimeoutError: grpc.StatusCode.DEADLINE_EXCEEDED,
    BackendMisconfiguredError: grpc.StatusCode.FAILED_PRECONDITION,
    ModelLoadError: grpc.StatusCode.UNAVAILABLE,
}

INTERNAL_MESSAGE = "internal error; the server log has the details"


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and client-facing message for an exception raised by a handler."""
    for error_type in type(exc).__mro__:
        code = STATUS_BY_ERROR.get(error_type)  # type: ignore[arg-type]
        if code is not None:
            return code, str(exc)
    return grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE
