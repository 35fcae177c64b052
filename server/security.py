"""Transport security and bearer tokens: `[server.tls]` and `[server.auth]`.

TLS uses gRPC's own credentials (`grpc.ssl_server_credentials`): a certificate and key, and
with `client_ca_file` mutual TLS (clients must present a certificate signed by that CA).

Tokens: `tokens_file` holds one bearer token per line (blank lines and `#` comments
ignored). A caller sends `authorization: Bearer <token>` metadata; anything else is
UNAUTHENTICATED. Tokens are compared in constant time against every configured token, so the
time taken does not say how much of a guess was right. The file is re-read when it changes
(checked at most once a second), so tokens rotate without a restart; a file that becomes
unreadable or empty keeps the tokens last read, with an error in the log. The health service
stays open for load balancers' probes; everything else, reflection and GetModelInfo
included, needs a token.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from grpc import aio

log = logging.getLogger("recs.server")

HEALTH_PREFIX = "/grpc.health.v1.Health/"
BEARER = "bearer "
RELOAD_CHECK_SECONDS = 1.0


class SecurityConfigError(ValueError):
    """A TLS or token file cannot be used; the message names the file."""


def read_file(path: Path, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SecurityConfigError(f"{what} {path}: cannot read ({exc.strerror})") from None
    if not data.strip():
        raise SecurityConfigError(f"{what} {path}: empty")
    return data


def server_credentials(
    cert_file: Path, key_file: Path, client_ca_file: Path | None = None
) -> grpc.ServerCredentials:
    """gRPC TLS credentials; with `client_ca_file`, clients must present a certificate."""
    certificate = read_file(cert_file, "[server.tls] cert_file")
    key = read_file(key_file, "[server.tls] key_file")
    client_ca = read_file(client_ca_file, "[server.tls] client_ca_file") if client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, certificate)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def parse_tokens(text: str) -> list[bytes]:
    """The tokens of a tokens file: one per line, blank lines and `#` comments ignored."""
    tokens = []
    for line in text.splitlines():
        token = line.split("#", 1)[0].strip()
        if token:
            tokens.append(token.encode())
    return tokens


class TokenFile:
    """The accepted bearer tokens, re-read from their file when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._tokens = self._read()
        self._stamp = self._file_stamp()
        self._next_check = time.monotonic() + RELOAD_CHECK_SECONDS

    def accepts(self, token: bytes) -> bool:
        """Whether `token` is one of the tokens, compared in constant time against each."""
        self._reload_if_changed()
        accepted = False
        for candidate in self._tokens:
            accepted |= hmac.compare_digest(candidate, token)
        return accepted

    def _read(self) -> list[bytes]:
        tokens = parse_tokens(read_file(self.path, "[server.auth] tokens_file").decode())
        if not tokens:
            raise SecurityConfigError(f"[server.auth] tokens_file {self.path}: no token")
        return tokens

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            status = os.stat(self.path)
        except OSError:
            return None
        return status.st_mtime_ns, status.st_size

    def _reload_if_changed(self) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + RELOAD_CHECK_SECONDS
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._tokens = self._read()
        except (SecurityConfigError, UnicodeDecodeError) as exc:
            log.error("keeping the tokens last read: %s", exc)
            return
        log.info("tokens reloaded from %s: %d tokens", self.path, len(self._tokens))


class TokenInterceptor(aio.ServerInterceptor):
    """UNAUTHENTICATED for every call without an accepted bearer token, health excepted."""

    def __init__(self, tokens: TokenFile, on_refused: Callable[[str], None] | None = None) -> None:
        self._tokens = tokens
        self._on_refused = on_refused

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        if method.startswith(HEALTH_PREFIX) or self._authorized(handler_call_details):
            return await continuation(handler_call_details)
        if self._on_refused is not None:
            self._on_refused(method)
        handler = await continuation(handler_call_details)
        return _refusing(handler)

    def _authorized(self, details: grpc.HandlerCallDetails) -> bool:
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                text = value if isinstance(value, str) else value.decode("latin-1")
                if text[: len(BEARER)].lower() == BEARER:
                    return self._tokens.accepts(text[len(BEARER) :].strip().encode())
                return False
        return False


MESSAGE = "authorization: a valid bearer token is required"


async def _abort_unary(_request: Any, context: aio.ServicerContext) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, MESSAGE)


async def _abort_stream(_requests: Any, context: aio.ServicerContext) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, MESSAGE)


def _refusing(handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler | None:
    """A handler of the same kind as `handler` that answers UNAUTHENTICATED."""
    if handler is None:  # an unknown method: gRPC answers UNIMPLEMENTED, which says nothing
        return None
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_abort_unary)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(_abort_unary)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_abort_stream)
    return grpc.stream_stream_rpc_method_handler(_abort_stream)
