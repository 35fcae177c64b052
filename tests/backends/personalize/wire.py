"""What crosses the wire between PersonalizeBackend and an endpoint, seen from boto3.

`Wire` is attached to the backend's boto3 clients (botocore's `before-send` event, which
fires for every HTTP attempt once the request is serialized and signed): it records each
request as it leaves (path, headers, JSON body) and can answer the next ones with an AWS
error instead of sending them (`fail_next`). An injected answer is parsed, retried and
translated by botocore exactly as one from the network, so retries are exercised without
a fault-injecting server; the attempts it does not answer go to the real endpoint.

`wired_backend` builds a started PersonalizeBackend whose runtime and events clients both
report to one `Wire`.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from recs.backends.filtering import FilterSet
from recs.backends.personalize.backend import PersonalizeBackend
from recs.backends.personalize.client import create_events_client, create_runtime_client
from recs.backends.personalize.config import PersonalizeBackendConfig


@dataclass(frozen=True, slots=True)
class SentRequest:
    """One HTTP attempt as boto3 sent it (or would have, when a fault answered it)."""

    path: str
    headers: Mapping[str, str]
    body: dict[str, Any]
    injected: bool = False  # answered by `fail_next`, never sent


@dataclass(frozen=True, slots=True)
class _Fault:
    status: int
    code: str
    message: str


class _Body:
    """The `raw` of an injected AWSResponse: botocore reads it with `stream()`."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_kwargs: Any) -> Iterator[bytes]:
        yield self._data


class Wire:
    """Records the requests of the clients it is attached to; injects error answers."""

    def __init__(self) -> None:
        self.requests: list[SentRequest] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()

    def attach(self, client: Any) -> Any:
        """Watch `client` (a boto3 client); returns it."""
        client.meta.events.register("before-send", self._before_send)
        return client

    def fail_next(self, status: int, code: str, message: str = "injected", times: int = 1) -> None:
        """Answer the next `times` attempts with this AWS error instead of sending them."""
        with self._lock:
            self._faults.extend(_Fault(status, code, message) for _ in range(times))

    def sent(self) -> list[SentRequest]:
        """The attempts that reached the endpoint (not answered by a fault)."""
        return [request for request in self.requests if not request.injected]

    def _before_send(self, request: AWSPreparedRequest, **_kwargs: Any) -> AWSResponse | None:
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        self.requests.append(
            SentRequest(
                path=urlsplit(request.url).path,
                headers={key: _text(value) for key, value in request.headers.items()},
                body=json.loads(request.body or b"{}"),
                injected=fault is not None,
            )
        )
        if fault is None:
            return None  # botocore sends it
        headers = {
            "x-amzn-RequestId": str(uuid.uuid4()),
            "x-amzn-ErrorType": f"{fault.code}:http://internal.amazon.com/coral/",
            "Content-Type": "application/json",
        }
        body = json.dumps({"message": fault.message}).encode()
        return AWSResponse(request.url, fault.status, headers, _Body(body))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def wired_backend(
    config: PersonalizeBackendConfig | Mapping[str, Any],
    wire: Wire,
    filters: FilterSet | None = None,
) -> PersonalizeBackend:
    """A started PersonalizeBackend on `config` (a config or its keys), serving `filters`
    when given, whose runtime and events clients report to `wire`."""
    if not isinstance(config, PersonalizeBackendConfig):
        config = PersonalizeBackendConfig.model_validate(config)
    backend = PersonalizeBackend(
        config,
        client=wire.attach(create_runtime_client(config)),
        events_client=wire.attach(create_events_client(config)),
    )
    if filters is not None:
        backend.use_filters(filters)
    backend.start()
    return backend
