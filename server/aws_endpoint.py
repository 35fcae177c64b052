"""The AWS-protocol endpoint: Amazon Personalize's REST-JSON API on the gRPC server's engine.

`recs serve --aws-port PORT` (`[server] aws_port`) listens here beside the gRPC port, on the
same event loop (aiohttp, no thread per request) and the same engine state, so a service
using boto3, another AWS SDK or the `aws` CLI runs unchanged against the laptop with
`endpoint_url` (or `AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME` and
`AWS_ENDPOINT_URL_PERSONALIZE_EVENTS`) pointing here. What each operation does is
`server.aws_protocol`; this module is the HTTP side: routes, JSON, the error shape botocore
parses (status, `x-amzn-ErrorType`, `{"message": ...}`), the request log, start and stop.

Requests signed with SigV4 are accepted without checking the signature: the endpoint is for
loopback development, never for a network others can reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from aiohttp import web

from recs.backends.local.ids import RecommendationIds
from recs.server.aws_protocol import AwsError, PersonalizeApi, aws_error_for
from recs.server.metrics import ServiceMetrics
from recs.server.request_log import RequestLog

log = logging.getLogger("recs.server.aws")

MAX_BODY_BYTES = 1024 * 1024  # the largest legal request (500 ids of 256 characters) is ~140 KB
_JSON = "application/json"
_REQUEST_IDS = RecommendationIds()  # x-amzn-RequestId: UUID-shaped, without uuid4 per call


class AwsEndpoint:
    """An aiohttp server answering `api`'s operations on one port until stopped; each call
    goes to the request log and, with `metrics`, to the Prometheus metrics (method
    `aws:<Operation>`, code `OK` or the AWS error code)."""

    def __init__(
        self, api: PersonalizeApi, request_log: RequestLog, metrics: ServiceMetrics | None = None
    ) -> None:
        self.api = api
        self._request_log = request_log
        self._metrics = metrics
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._in_flight = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    async def start(self, host: str, port: int, reuse_port: bool = False) -> int:
        """Listen on host:port (0 picks a free port); returns the port. OSError if taken."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/{operation:.*}", self._handle)
        app.router.add_route("*", "/{anything:.*}", _method_not_allowed)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1] if sockets else port
        return self.port

    async def stop(self, grace: float) -> None:
        """Stop accepting, let requests in progress finish within `grace` seconds.

        The listener closes first; requests already started (a body may still be arriving)
        are waited for before aiohttp's own shutdown, which stops reading from every
        connection at once and would lose a body in flight."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        for site in list(runner.sites):
            await site.stop()
        await asyncio.sleep(0)  # requests whose headers just arrived start their handler
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quiet.wait(), max(0.0, deadline - loop.time()))
        runner._shutdown_timeout = max(0.0, deadline - loop.time())  # read by cleanup
        await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self._in_flight += 1
        self._quiet.clear()
        try:
            return await self._answer(request)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._quiet.set()

    async def _answer(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        path = request.path
        found = self.api.operations.get(path)
        method = f"aws:{found[0]}" if found else f"aws:{path}"
        try:
            if found is None:
                raise AwsError(404, "UnknownOperationException", f"no operation at POST {path}")
            body = await _json_body(request)
            answer = await found[1](body)
        except Exception as exc:
            error = aws_error_for(exc)
            if error.code == "InternalFailure":
                log.exception("%s failed unexpectedly", method)
            seconds = time.perf_counter() - started
            self._request_log.failed(method, error.status, seconds, error.message)
            if self._metrics is not None:
                self._metrics.call(method, error.code, seconds)
            return _error_response(error)
        seconds = time.perf_counter() - started
        self._request_log.ok(method, seconds)
        if self._metrics is not None:
            self._metrics.call(method, "OK", seconds)
        return _json_response(200, answer)


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AwsError(400, "SerializationException", "the request body is not JSON") from None
    if not isinstance(body, dict):
        raise AwsError(400, "SerializationException", "the request body is not a JSON object")
    return body


def _json_response(status: int, payload: dict[str, Any], **headers: str) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload, separators=(",", ":")).encode(),
        content_type=_JSON,
        headers={"x-amzn-RequestId": _REQUEST_IDS.next(), **headers},
    )


def _error_response(error: AwsError) -> web.Response:
    """The shape botocore's rest-json parser turns into `ClientError` with this code."""
    return _json_response(
        error.status,
        {"message": error.message},
        **{"x-amzn-ErrorType": f"{error.code}:http://internal.amazon.com/coral/"},
    )


async def _method_not_allowed(request: web.Request) -> web.Response:
    return _error_response(
        AwsError(
            405, "UnknownOperationException", f"no operation at {request.method} {request.path}"
        )
    )
