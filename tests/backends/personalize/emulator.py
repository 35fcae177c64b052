"""A personalize-runtime emulator on loopback HTTP, answering from any `Backend`.

It speaks the wire format boto3 uses for `personalize-runtime` (rest-json, checked
against botocore's service model): `POST /recommendations` and
`POST /personalize-ranking` with the request members as top-level camelCase JSON, and
answers `{"itemList": [...]}` / `{"personalizedRanking": [...]}` with a
`recommendationId`. Errors are HTTP 4xx/5xx with an `x-amzn-ErrorType` header and a
`{"message": ...}` body, which botocore turns into `client.exceptions.<Code>`.

Each campaign ARN is bound to one recipe kind and behaves like Personalize's:
user-personalization needs `userId`; SIMS needs `itemId`; popularity-count and SIMS
give no scores; a personalized-ranking campaign only answers GetPersonalizedRanking,
where items the model does not know are appended without a score.

**Filters** are applied by the emulator itself, as Personalize applies them, never by the
backend behind it: give it the filters by ARN (`filters_by_arn(filter_set)`) and the
dataset directory, and every request with a `filterArn` is answered by asking the backend
for its unfiltered answer of 500 (every candidate, on the small test datasets), keeping
the items the reference evaluator keeps (tests/backends/filter_reference.py, for the
request's `userId` and, on SIMS, its `itemId` as the current item) and cutting to
`numResults`; GetPersonalizedRanking drops the ids it does not keep. `filterValues` is
parsed as Personalize reads it (`"a","b"`); a missing value for a parameter of an INCLUDE
part is an InvalidInputException (reference section 1.2); an unknown `filterArn` is a
ResourceNotFoundException. The backend must therefore answer unfiltered: a LocalBackend
with `FilterSet.from_expressions({}, default=None)`. Given only a set of ARNs (no
dataset), the emulator knows those ARNs and answers from the backend as it is (for tests
that only check what crosses the wire).

Use it to run `PersonalizeBackend -> HTTP -> emulator -> LocalBackend`:

    with PersonalizeRuntimeEmulator(
        unfiltered_local_backend, filters=filters_by_arn(filter_set), dataset_dir=dataset_dir
    ) as emulator:
        backend = PersonalizeBackend(PersonalizeBackendConfig(
            endpoint_url=emulator.endpoint_url, **emulator.personalize_config()))
        backend.use_filters(filter_set)

Tests can inject failures (`fail_next`) or stall answers (`stall_next`) and read the
requests it received (`requests`).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from recs.backends.base import (
    MAX_ID_LENGTH,
    MAX_NUM_RESULTS,
    MAX_RERANK_ITEMS,
    Backend,
    Recommendations,
)
from recs.backends.errors import (
    BackendError,
    BackendMisconfiguredError,
    BackendUnavailableError,
    InvalidRequestError,
)
from recs.backends.filtering import FilterCall, FilterSet, parse_filter_value
from recs.backends.personalize.config import FILTER_ARNS_KEY
from recs.pipeline.filters import Filter
from tests.backends.filter_reference import FilterReferenceError, ReferenceFilters

logger = logging.getLogger(__name__)

USER_PERSONALIZATION = "user-personalization"
SIMS = "sims"
POPULARITY = "popularity-count"
PERSONALIZED_RANKING = "personalized-ranking"
CAMPAIGN_CONFIG_KEYS = {
    USER_PERSONALIZATION: "user_personalization_campaign_arn",
    SIMS: "similar_items_campaign_arn",
    POPULARITY: "popularity_campaign_arn",
    PERSONALIZED_RANKING: "personalized_ranking_campaign_arn",
}
DEFAULT_ACCOUNT_ARN = "arn:aws:personalize:us-east-1:000000000000"
DEFAULT_NUM_RESULTS = 25


def filter_arn(name: str) -> str:
    """The emulated ARN of the Personalize filter named `name`."""
    return f"{DEFAULT_ACCOUNT_ARN}:filter/emulated-{name}"


def filters_by_arn(filters: FilterSet | Mapping[str, Filter]) -> dict[str, Filter]:
    """Every filter of `filters` (a FilterSet, default included, or name -> Filter) by its
    emulated ARN: the emulator's `filters`."""
    named = filters.filters if isinstance(filters, FilterSet) else filters
    return {filter_arn(name): found for name, found in named.items()}


class EmulatedError(Exception):
    """An error answer: HTTP status, Personalize error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid_input(message: str) -> EmulatedError:
    return EmulatedError(400, "InvalidInputException", message)


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as it arrived on the wire."""

    path: str
    headers: Mapping[str, str]
    body: dict[str, Any]


@dataclass
class _Faults:
    """Failures to inject into the next answers, first in first out."""

    errors: list[EmulatedError] = field(default_factory=list)
    stalls: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class PersonalizeRuntimeEmulator:
    """Serves personalize-runtime on 127.0.0.1 from `backend` until stopped."""

    def __init__(
        self,
        backend: Backend,
        *,
        campaigns: Mapping[str, str] | None = None,
        filters: Mapping[str, Filter] | Collection[str] = frozenset(),
        dataset_dir: str | Path | None = None,
    ) -> None:
        """`campaigns` maps campaign ARN -> recipe kind (default: one per kind).

        `filters` maps filter ARN -> parsed Filter, applied here against `dataset_dir`'s
        items.csv and interactions.csv (see the module doc); or is a collection of known
        filter ARNs only, not applied (then `dataset_dir` is not needed).
        """
        self.backend = backend
        self.campaigns = dict(
            campaigns
            or {
                f"{DEFAULT_ACCOUNT_ARN}:campaign/emulated-{kind}": kind
                for kind in CAMPAIGN_CONFIG_KEYS
            }
        )
        self.filters: dict[str, Filter | None]
        if isinstance(filters, Mapping):
            if filters and dataset_dir is None:
                raise ValueError("filters to apply need the dataset_dir they read")
            self.filters = dict(filters)
        else:
            self.filters = dict.fromkeys(filters)
        self.reference = ReferenceFilters(dataset_dir) if dataset_dir is not None else None
        self.requests: list[ReceivedRequest] = []
        self._faults = _Faults()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # life cycle ---------------------------------------------------------------------

    def start(self) -> PersonalizeRuntimeEmulator:
        """Listen on a free loopback port and answer in a background thread."""
        handler = type("Handler", (_Handler,), {"emulator": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="personalize-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (stalled answers are released first)."""
        self._faults.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> PersonalizeRuntimeEmulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        """`http://127.0.0.1:<port>`, for `endpoint_url`."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def campaign_config(self) -> dict[str, str]:
        """The `[personalize]` campaign keys for this emulator's campaigns."""
        return {CAMPAIGN_CONFIG_KEYS[kind]: arn for arn, kind in self.campaigns.items()}

    def filter_arns(self) -> dict[str, str]:
        """`[personalize.filter_arns]`: filter name -> ARN of the filters it applies."""
        return {found.name: arn for arn, found in self.filters.items() if found is not None}

    def personalize_config(self) -> dict[str, Any]:
        """The `[personalize]` keys naming this emulator's campaigns and filters (add
        `endpoint_url` and the rest)."""
        return {**self.campaign_config(), FILTER_ARNS_KEY: self.filter_arns()}

    # fault injection ----------------------------------------------------------------

    def fail_next(self, status: int, code: str, message: str = "injected", times: int = 1) -> None:
        """Answer the next `times` requests with this error instead of the backend's."""
        with self._faults.lock:
            self._faults.errors.extend(EmulatedError(status, code, message) for _ in range(times))

    def stall_next(self, times: int = 1) -> None:
        """Hold the next `times` answers until `release_stalled()` or `stop()`."""
        with self._faults.lock:
            self._faults.stalls += times

    def release_stalled(self) -> None:
        self._faults.release.set()

    # answering ----------------------------------------------------------------------

    def handle(self, path: str, headers: Mapping[str, str], raw_body: bytes) -> dict[str, Any]:
        """The JSON answer to one request, or EmulatedError."""
        try:
            body = json.loads(raw_body or b"{}")
        except json.JSONDecodeError as exc:
            raise EmulatedError(400, "SerializationException", "body is not JSON") from exc
        self.requests.append(ReceivedRequest(path, dict(headers), body))
        with self._faults.lock:
            injected = self._faults.errors.pop(0) if self._faults.errors else None
            stall = self._faults.stalls > 0
            self._faults.stalls -= int(stall)
        if stall:
            self._faults.release.wait()
        if injected is not None:
            raise injected
        if path == "/recommendations":
            return self._get_recommendations(body)
        if path == "/personalize-ranking":
            return self._get_personalized_ranking(body)
        raise EmulatedError(404, "UnknownOperationException", f"no operation at {path}")

    def _campaign_kind(self, body: Mapping[str, Any]) -> str:
        arn = body.get("campaignArn")
        if not arn:
            raise invalid_input("campaignArn is required")
        if arn not in self.campaigns:
            raise EmulatedError(404, "ResourceNotFoundException", f"Campaign {arn} not found")
        arn_of_filter = body.get("filterArn")
        if arn_of_filter is not None and arn_of_filter not in self.filters:
            raise EmulatedError(
                404, "ResourceNotFoundException", f"Filter {arn_of_filter} does not exist"
            )
        return self.campaigns[arn]

    def _filter_call(self, body: Mapping[str, Any], kind: str) -> FilterCall | None:
        """The request's filter with its values, to apply here; None without one (or when
        the emulator only knows the ARN). Personalize's own checks: `filterValues` in its
        format, every parameter of an INCLUDE part given, CurrentItem on SIMS only."""
        found = self.filters.get(body.get("filterArn") or "")
        raw = body.get("filterValues") or {}
        if not isinstance(raw, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
        ):
            raise invalid_input("filterValues must map strings to strings")
        if found is None:
            return None
        try:
            values = {key: parse_filter_value(key, text) for key, text in raw.items()}
        except InvalidRequestError as exc:
            raise invalid_input(exc.message) from exc
        if found.uses_current_item and kind != SIMS:
            raise invalid_input("CurrentItem filters are for RELATED_ITEMS campaigns")
        call = FilterCall(found, values, dict(raw))
        assert self.reference is not None
        try:
            self.reference.check(call)  # INCLUDE values given, comparisons given a number
        except FilterReferenceError as exc:
            raise invalid_input(str(exc)) from exc
        return call

    def _kept(
        self,
        call: FilterCall,
        answer: Recommendations,
        user_id: str | None,
        current_item: str | None = None,
        limit: int | None = None,
    ) -> Recommendations:
        """`answer` without the items the filter drops (the others keep their scores),
        cut to `limit`."""
        assert self.reference is not None
        try:  # (check() passed in _filter_call)
            items = [
                item
                for item in answer.items
                if self.reference.keeps(call, item.item_id, user_id, current_item)
            ]
        except FilterReferenceError as exc:
            raise invalid_input(str(exc)) from exc
        return Recommendations.of(items[:limit], answer.recommendation_id)

    def _get_recommendations(self, body: Mapping[str, Any]) -> dict[str, Any]:
        kind = self._campaign_kind(body)
        num_results = body.get("numResults", DEFAULT_NUM_RESULTS)
        if not isinstance(num_results, int) or not 0 <= num_results <= MAX_NUM_RESULTS:
            raise invalid_input(f"numResults must be 0 to {MAX_NUM_RESULTS}")
        num_results = num_results or DEFAULT_NUM_RESULTS
        user_id = _optional_id(body, "userId")
        item_id = _optional_id(body, "itemId")
        if kind == PERSONALIZED_RANKING:
            raise invalid_input("PERSONALIZED_RANKING campaigns use GetPersonalizedRanking")
        if kind == USER_PERSONALIZATION and user_id is None:
            raise invalid_input("userId is required for a USER_PERSONALIZATION campaign")
        if kind == SIMS and item_id is None:
            raise invalid_input("itemId is required for a RELATED_ITEMS campaign")
        call = self._filter_call(body, kind)
        # With a filter: every candidate, unfiltered, then what the filter keeps.
        wanted = num_results if call is None else MAX_NUM_RESULTS
        if kind == USER_PERSONALIZATION:
            answer = _call(lambda: self.backend.recommend(user_id, wanted))
        elif kind == SIMS:
            answer = _call(lambda: self.backend.similar_items(item_id, wanted))
        else:
            answer = _call(lambda: self.backend.popular_items(wanted, user_id))
        if call is not None:
            current = item_id if kind == SIMS else None
            answer = self._kept(call, answer, user_id, current, num_results)
        with_scores = kind == USER_PERSONALIZATION
        items = [
            {"itemId": item.item_id, "score": item.score}
            if with_scores
            else {"itemId": item.item_id}
            for item in answer.items
        ]
        return {"itemList": items, "recommendationId": answer.recommendation_id or _rid()}

    def _get_personalized_ranking(self, body: Mapping[str, Any]) -> dict[str, Any]:
        kind = self._campaign_kind(body)
        if kind != PERSONALIZED_RANKING:
            raise invalid_input("GetPersonalizedRanking needs a PERSONALIZED_RANKING campaign")
        user_id = _optional_id(body, "userId")
        input_list = body.get("inputList")
        if user_id is None or not isinstance(input_list, list):
            raise invalid_input("userId and inputList are required")
        if not 1 <= len(input_list) <= MAX_RERANK_ITEMS:
            raise invalid_input(f"inputList must hold 1 to {MAX_RERANK_ITEMS} item ids")
        for position, value in enumerate(input_list):
            if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_LENGTH:
                raise invalid_input(f"inputList[{position}] is not a valid item id")
        call = self._filter_call(body, kind)
        answer = _call(lambda: self.backend.rerank(user_id, input_list))
        if call is not None:
            answer = self._kept(call, answer, user_id)
        # Items the model was not trained on are appended without a score.
        ranking = [
            {"itemId": item.item_id, "score": item.score}
            if item.score
            else {"itemId": item.item_id}
            for item in answer.items
        ]
        return {
            "personalizedRanking": ranking,
            "recommendationId": answer.recommendation_id or _rid(),
        }


def _optional_id(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_LENGTH:
        raise invalid_input(f"{key} must be 1 to {MAX_ID_LENGTH} characters")
    return value


def _call(work):
    """Run a backend call, answering its domain errors the way Personalize would."""
    try:
        return work()
    except InvalidRequestError as exc:
        raise invalid_input(exc.message) from exc
    except BackendMisconfiguredError as exc:
        raise EmulatedError(404, "ResourceNotFoundException", str(exc)) from exc
    except BackendUnavailableError as exc:
        raise EmulatedError(503, "ServiceUnavailableException", str(exc)) from exc
    except BackendError as exc:
        raise EmulatedError(500, "InternalFailure", str(exc)) from exc


def _rid() -> str:
    return f"RID-{uuid.uuid4()}"


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler; `emulator` is set on a per-server subclass."""

    emulator: PersonalizeRuntimeEmulator
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: without TCP_NODELAY, Nagle's algorithm holds
    # the body until the client's delayed ACK (about 40 ms per answer on keep-alive).
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length)
        try:
            answer = self.emulator.handle(self.path, self.headers, raw_body)
        except EmulatedError as error:
            self._send(error.status, {"message": error.message}, error_type=error.code)
            return
        self._send(200, answer)

    def _send(self, status: int, payload: dict[str, Any], error_type: str | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error_type is not None:
            self.send_header("x-amzn-ErrorType", f"{error_type}:http://internal.amazon.com/")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("emulator: " + format, *args)


class _QuietServer(ThreadingHTTPServer):
    """Does not print a traceback when a client hangs up first (the timeout tests do)."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
