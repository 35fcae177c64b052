"""Domain errors raised by backends. `server.errors` maps each to one gRPC status code.

Messages are written for the caller (or, for misconfiguration, the operator) and never
carry raw exception text from a library.
"""

from __future__ import annotations


class BackendError(Exception):
    """Base of every error a backend raises on purpose."""


class InvalidRequestError(BackendError):
    """The request itself is wrong; `field` names the offending request field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class BackendUnavailableError(BackendError):
    """The engine is throttled, unreachable or not ready; retrying later may work."""


class BackendTimeoutError(BackendError):
    """The engine did not answer within the time allowed."""


class BackendMisconfiguredError(BackendError):
    """Our own configuration is wrong (missing campaign, unknown ARN, no credentials)."""


class ModelLoadError(BackendError):
    """A model could not be loaded (missing, incomplete or corrupt): the server must not start."""
