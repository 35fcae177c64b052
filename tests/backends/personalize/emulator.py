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

**personalize-events** is served on the same port: `POST /events` (PutEvents) and
`POST /items` (PutItems), checked as Personalize checks them (reference section 1.3): a
known `trackingId` (one of `tracking_ids`; another is a ResourceNotFoundException),
`sessionId` and 1 to 10 events each with `eventType` and `sentAt` (epoch seconds on the
wire); a known `datasetArn` (one of `items_dataset_arns`) and 1 to 10 items each with an
`itemId` and `properties`, if any, a JSON object string of at most 32,000 characters. What
was accepted is recorded in `events` and `items` as domain values (`Event`, `CatalogItem`,
property keys back from camel case to catalog column names) and, when the backend
implements `put_events` / `put_items`, forwarded to it. Point the backend's
`events_endpoint_url` here too: `emulator.events_config()` gives those keys.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import threading
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from recs.backends.base import (
    MAX_EVENTS,
    MAX_ID_LENGTH,
    MAX_ITEMS_PER_CALL,
    MAX_NUM_RESULTS,
    MAX_RERANK_ITEMS,
    Backend,
    CatalogItem,
    Event,
    Recommendations,
)
from recs.backends.errors import (
    BackendError,
    BackendMisconfiguredError,
    BackendUnavailableError,
    InvalidRequestError,
)
from recs.backends.filtering import FilterCall, FilterSet, parse_filter_value
from recs.backends.limits import (
    MAX_IMPRESSION,
    MAX_ITEM_PROPERTIES_LENGTH,
    MAX_RECOMMENDATION_ID_LENGTH,
)
from recs.backends.personalize.config import (
    EVENT_TRACKING_ID_KEY,
    FILTER_ARNS_KEY,
    ITEMS_DATASET_ARN_KEY,
)
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
DEFAULT_TRACKING_ID = "emulated-tracking-id"
DEFAULT_ITEMS_DATASET_ARN = f"{DEFAULT_ACCOUNT_ARN}:dataset/emulated/ITEMS"
MAX_EVENT_PROPERTIES_LENGTH = 1024  # PutEvents: an event's `properties`


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


@dataclass(frozen=True, slots=True)
class ReceivedEvents:
    """One accepted PutEvents call, as domain values."""

    tracking_id: str
    user_id: str | None
    session_id: str
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class ReceivedItems:
    """One accepted PutItems call, as domain values."""

    dataset_arn: str
    items: tuple[CatalogItem, ...]


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
        tracking_ids: Collection[str] = (DEFAULT_TRACKING_ID,),
        items_dataset_arns: Collection[str] = (DEFAULT_ITEMS_DATASET_ARN,),
    ) -> None:
        """`campaigns` maps campaign ARN -> recipe kind (default: one per kind).

        `tracking_ids` and `items_dataset_arns` are the event trackers and Items datasets
        PutEvents and PutItems know (the first of each is in `events_config()`).

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
        self.tracking_ids = list(tracking_ids)
        self.items_dataset_arns = list(items_dataset_arns)
        self.requests: list[ReceivedRequest] = []
        self.events: list[ReceivedEvents] = []  # accepted PutEvents calls, in order
        self.items: list[ReceivedItems] = []  # accepted PutItems calls, in order
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

    def events_config(self) -> dict[str, Any]:
        """The `[personalize]` keys for PutEvents and PutItems on this emulator: its first
        tracking id and Items dataset, and `events_endpoint_url` (it must be started)."""
        config: dict[str, Any] = {"events_endpoint_url": self.endpoint_url}
        if self.tracking_ids:
            config[EVENT_TRACKING_ID_KEY] = self.tracking_ids[0]
        if self.items_dataset_arns:
            config[ITEMS_DATASET_ARN_KEY] = self.items_dataset_arns[0]
        return config

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
        if path == "/events":
            return self._put_events(body)
        if path == "/items":
            return self._put_items(body)
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

    # personalize-events -------------------------------------------------------------

    def _put_events(self, body: Mapping[str, Any]) -> dict[str, Any]:
        tracking_id = body.get("trackingId")
        if not isinstance(tracking_id, str) or not tracking_id:
            raise invalid_input("trackingId is required")
        if tracking_id not in self.tracking_ids:
            raise EmulatedError(
                404, "ResourceNotFoundException", f"Event tracker {tracking_id} not found"
            )
        user_id = _optional_id(body, "userId")
        session_id = _optional_id(body, "sessionId")
        if session_id is None:
            raise invalid_input("sessionId is required")
        event_list = body.get("eventList")
        if not isinstance(event_list, list) or not 1 <= len(event_list) <= MAX_EVENTS:
            raise invalid_input(f"eventList must hold 1 to {MAX_EVENTS} events")
        events = tuple(_event(k, entry) for k, entry in enumerate(event_list))
        if _implements(self.backend, "put_events"):
            _call(lambda: self.backend.put_events(user_id, session_id, events))
        self.events.append(ReceivedEvents(tracking_id, user_id, session_id, events))
        return {}

    def _put_items(self, body: Mapping[str, Any]) -> dict[str, Any]:
        dataset_arn = body.get("datasetArn")
        if not isinstance(dataset_arn, str) or not dataset_arn:
            raise invalid_input("datasetArn is required")
        if dataset_arn not in self.items_dataset_arns:
            raise EmulatedError(
                404, "ResourceNotFoundException", f"Dataset {dataset_arn} not found"
            )
        entries = body.get("items")
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ITEMS_PER_CALL:
            raise invalid_input(f"items must hold 1 to {MAX_ITEMS_PER_CALL} items")
        items = tuple(_catalog_item(k, entry) for k, entry in enumerate(entries))
        if _implements(self.backend, "put_items"):
            _call(lambda: self.backend.put_items(items))
        self.items.append(ReceivedItems(dataset_arn, items))
        return {}


def _implements(backend: Backend, method: str) -> bool:
    """Whether `backend` has its own `method` rather than the base class's refusal."""
    return getattr(type(backend), method) is not getattr(Backend, method)


def _event(position: int, entry: Any) -> Event:
    """One PutEvents `Event` from the wire, checked as Personalize checks it."""
    where = f"eventList[{position}]"
    if not isinstance(entry, dict):
        raise invalid_input(f"{where} must be an object")
    event_type = _optional_id(entry, "eventType")
    if event_type is None:
        raise invalid_input(f"{where}.eventType is required")
    sent_at = entry.get("sentAt")
    if isinstance(sent_at, bool) or not isinstance(sent_at, int | float):
        raise invalid_input(f"{where}.sentAt is required (epoch seconds)")
    value = entry.get("eventValue")
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    ):
        raise invalid_input(f"{where}.eventValue must be a number")
    recommendation_id = entry.get("recommendationId")
    if recommendation_id is not None and (
        not isinstance(recommendation_id, str)
        or not 1 <= len(recommendation_id) <= MAX_RECOMMENDATION_ID_LENGTH
    ):
        raise invalid_input(f"{where}.recommendationId must be 1 to 40 characters")
    impression = entry.get("impression")
    if impression is not None and (
        not isinstance(impression, list)
        or not 1 <= len(impression) <= MAX_IMPRESSION
        or not all(isinstance(i, str) and 1 <= len(i) <= MAX_ID_LENGTH for i in impression)
    ):
        raise invalid_input(f"{where}.impression must hold 1 to {MAX_IMPRESSION} item ids")
    properties = entry.get("properties")
    if properties is not None and (
        not isinstance(properties, str)
        or not 1 <= len(properties) <= MAX_EVENT_PROPERTIES_LENGTH
        or not isinstance(_json_object(properties), dict)
    ):
        raise invalid_input(f"{where}.properties: Error parsing properties json")
    return Event(
        event_type=event_type,
        item_id=_optional_id(entry, "itemId") or "",
        sent_at=float(sent_at),
        event_id=_optional_id(entry, "eventId") or "",
        event_value=None if value is None else float(value),
        recommendation_id=recommendation_id or "",
        impression=tuple(impression or ()),
    )


def _catalog_item(position: int, entry: Any) -> CatalogItem:
    """One PutItems `Item` from the wire: its properties back under catalog column names."""
    where = f"items[{position}]"
    if not isinstance(entry, dict):
        raise invalid_input(f"{where} must be an object")
    item_id = _optional_id(entry, "itemId")
    if item_id is None:
        raise invalid_input(f"{where}.itemId is required")
    text = entry.get("properties")
    if text is None:
        return CatalogItem(item_id)
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_ITEM_PROPERTIES_LENGTH:
        raise invalid_input(
            f"{where}.properties must be 1 to {MAX_ITEM_PROPERTIES_LENGTH} characters"
        )
    properties = _json_object(text)
    if not isinstance(properties, dict) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in properties.values()
    ):
        raise invalid_input(f"{where}.properties: Error parsing properties json")
    columns = {_column_name(key): str(value) for key, value in properties.items()}
    return CatalogItem(
        item_id,
        title=columns.pop("TITLE", ""),
        url=columns.pop("URL", ""),
        properties=columns,
    )


def _json_object(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _column_name(key: str) -> str:
    """A camel case properties key back to its schema field: creationTimestamp ->
    CREATION_TIMESTAMP (the inverse of `personalize_field_name`)."""
    return _CAMEL_BOUNDARY.sub("_", key).upper()


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
