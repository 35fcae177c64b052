"""`PersonalizeBackend`: the recommendation questions answered by Personalize campaigns.

| Backend method  | Personalize call                                        |
|-----------------|---------------------------------------------------------|
| recommend       | GetRecommendations(user-personalization campaign, userId) |
| similar_items   | GetRecommendations(SIMS campaign, itemId)                 |
| popular_items   | GetRecommendations(popularity-count campaign, userId)     |
| trending_items  | GetRecommendations(trending-now campaign, userId if given) |
| rerank          | GetPersonalizedRanking(personalized-ranking campaign)     |
| put_events      | personalize-events PutEvents(event tracker's trackingId)  |
| put_items       | personalize-events PutItems(Items dataset)                |

A VIDEO_ON_DEMAND recommender named in `[personalize.recommender_arns]` answers its RPC
instead of the campaign: GetRecommendations(`recommenderArn`) with the same members and
filters (`_resource`). recommend -> `recommendations` (Top picks for you), similar_items ->
`similar_items` (Because you watched X, or More like X), popular_items -> `popular_items`
(Most popular), trending_items -> `trending_items` (Trending now); rerank has no VOD use case
and keeps its campaign. Each use case's required members (`RECOMMENDER_REQUIRES`, from AWS's
"VIDEO_ON_DEMAND use cases") are sent: popular_items sends `anonymous_user_id` when the caller
gives no user, as for the campaign; similar_items without `user_id` is refused (INVALID_ARGUMENT
naming `user_id`) before any call, as the recommender needs `userId` and `itemId`.

A request's filter (`FilterCall`) is sent by name: `filterArn` is
`[personalize.filter_arns]`'s ARN for that name and `filterValues` the values as the caller
wrote them. GetRecommendations without a filter sends the default filter
(`self.filters.default`, by default `exclude_interacted`), which is a real Personalize filter so
that "never what they already watched" holds here too. A filter without an ARN is our own
misconfiguration (FAILED_PRECONDITION), never silently dropped.

Calls are blocking boto3 I/O: the server runs them in its thread pool. The backend still
bounds how many are in flight towards Personalize (a semaphore sized like the client's
HTTP pool) so a burst queues here, briefly, instead of opening ever more connections.
botocore checks only required fields and minima, so Personalize's maxima are checked here.

PutEvents and PutItems go to the `personalize-events` service through a second client
(same timeouts, retries and pool size, its own endpoint), within the same concurrency slots
and reported to the same call observer. They have their own circuit breaker: the events
endpoint is another service whose outage says nothing of the campaigns' (and the reverse).
Events are never answered by the local fallback: while that breaker is open they answer
UNAVAILABLE at once, so the caller keeps them and retries; acknowledging events that
Personalize never received would lose them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from recs.backends.base import (
    Backend,
    CallObserver,
    CatalogItem,
    Event,
    ModelInfo,
    Recommendations,
    ScoredItem,
)
from recs.backends.errors import (
    BackendMisconfiguredError,
    BackendTimeoutError,
    BackendUnavailableError,
    InvalidRequestError,
)
from recs.backends.filtering import FilterCall
from recs.backends.limits import (
    check_catalog_items,
    check_events,
    check_id,
    check_item_ids,
    check_num_results,
)
from recs.backends.personalize.breaker import CircuitBreaker, CircuitOpenError
from recs.backends.personalize.client import create_events_client, create_runtime_client
from recs.backends.personalize.config import (
    CAMPAIGN_KEYS,
    EVENT_TRACKING_ID_KEY,
    FILTER_ARNS_KEY,
    ITEMS_DATASET_ARN_KEY,
    RECOMMENDER_ARNS_KEY,
    RECOMMENDER_FOR_CAMPAIGN,
    RECOMMENDER_REQUIRES,
    PersonalizeBackendConfig,
)
from recs.backends.personalize.errors import CONFIG_SECTION, CallContext, translate_error

logger = logging.getLogger(__name__)


class PersonalizeBackend(Backend):
    """Serves recommendations from Amazon Personalize campaigns, one per question."""

    name: ClassVar[str] = "personalize"
    config_model: ClassVar[type[PersonalizeBackendConfig]] = PersonalizeBackendConfig

    def __init__(
        self,
        config: PersonalizeBackendConfig,
        client: Any | None = None,
        events_client: Any | None = None,
    ) -> None:
        """Keep the config; `client` and `events_client` inject ready `personalize-runtime`
        and `personalize-events` clients (tests, Stubber)."""
        self._config = config
        self._client = client
        self._events_client = events_client
        self._slots = threading.BoundedSemaphore(config.max_concurrency)
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_cooldown)
        # PutEvents / PutItems: another service, so another breaker (see the module doc).
        self.events_breaker = CircuitBreaker(config.breaker_failures, config.breaker_cooldown)
        self.fallback: Backend | None = None  # answers while the breaker is open
        self._observer: CallObserver | None = None

    def observe_calls(self, observer: CallObserver) -> None:
        """Report every runtime call: operation, seconds, "OK" or the AWS error code."""
        self._observer = observer

    def set_fallback(self, backend: Backend) -> None:
        """Answer from `backend` while the breaker is open (`fallback = "local"`)."""
        self.fallback = backend

    @property
    def config(self) -> PersonalizeBackendConfig:
        """The validated `[personalize]` section this backend runs with."""
        return self._config

    def start(self) -> None:
        """Create the shared runtime and events clients (no network call happens here).

        A fallback backend is started too: it must be able to answer before it is needed.
        """
        if self.fallback is not None:
            self.fallback.start()
        try:
            if self._client is None:
                self._client = create_runtime_client(self._config)
            if self._events_client is None:
                self._events_client = create_events_client(self._config)
        except BotoCoreError as exc:
            raise translate_error(exc, CallContext("start", "region")) from exc
        missing = [
            key
            for key in CAMPAIGN_KEYS
            if getattr(self._config, key) is None and self._recommender(key) is None
        ]
        if missing:
            logger.warning(
                "%s lacks %s: those RPCs will answer FAILED_PRECONDITION",
                CONFIG_SECTION,
                ", ".join(missing),
            )
        self._warn_filters_without_arn()
        for key, call in (
            (EVENT_TRACKING_ID_KEY, "PutEvents"),
            (ITEMS_DATASET_ARN_KEY, "PutItems"),
        ):
            if getattr(self._config, key) is None:
                logger.info(
                    "%s lacks %s: %s will answer FAILED_PRECONDITION", CONFIG_SECTION, key, call
                )

    def _warn_filters_without_arn(self) -> None:
        """One warning naming every configured filter (the default one included) that has
        no ARN: calls using it will answer FAILED_PRECONDITION."""
        without = sorted(set(self.filters.filters) - set(self._config.filter_arns))
        if not without:
            return
        default = self.filters.default
        also = (
            f"; {default.name!r} is the default filter, so every GetRecommendations without"
            " a filter will too"
            if default is not None and default.name in without
            else ""
        )
        logger.warning(
            "[personalize.%s] has no ARN for filter(s) %s: calls using them will answer"
            " FAILED_PRECONDITION%s (run recs personalize provision, or add them there)",
            FILTER_ARNS_KEY,
            ", ".join(repr(name) for name in without),
            also,
        )

    def close(self) -> None:
        """Close the clients' connection pools; safe to call more than once."""
        clients = (self._client, self._events_client)
        self._client = self._events_client = None
        for client in clients:
            if client is not None and hasattr(client, "close"):
                client.close()

    def info(self) -> ModelInfo:
        """The region, the campaigns and the filters being served (no call to AWS).

        A campaign ARN is what identifies the model a caller gets (Personalize's own
        "model version"), so it stays; the endpoint URL, an address of our own network
        (or of an emulator), is the operator's business and stays in the config.
        """
        details = {"region": self._config.region or "(AWS default chain)"}
        for key in CAMPAIGN_KEYS:
            recommender = self._recommender(key)
            details[key] = (
                f"(not used: {RECOMMENDER_ARNS_KEY}.{recommender[0]} answers)"
                if recommender is not None
                else getattr(self._config, key) or "(not configured)"
            )
        for name, arn in self._config.recommender_arns.items():
            details[f"{RECOMMENDER_ARNS_KEY}.{name}"] = arn
        for name in sorted(self.filters.filters):
            arn = self._config.filter_arns.get(name)
            details[f"{FILTER_ARNS_KEY}.{name}"] = arn or "(not configured)"
        # The tracking id is what browsers send events with; whether there is one is enough.
        details[EVENT_TRACKING_ID_KEY] = (
            "(configured)" if self._config.event_tracking_id else "(not configured)"
        )
        details[ITEMS_DATASET_ARN_KEY] = self._config.items_dataset_arn or "(not configured)"
        return ModelInfo(backend=self.name, details=details)

    def put_events(self, user_id: str | None, session_id: str, events: Sequence[Event]) -> None:
        """PutEvents on the event tracker `event_tracking_id` (no local fallback).

        `userId` is left out for an anonymous session (Personalize then keys the events by
        `sessionId`); each event's `sentAt` is an aware UTC datetime, which botocore sends as
        epoch seconds (the Event shape's timestamp, rest-json's default format), keeping the
        fraction. Returns once Personalize accepted them. Without `event_tracking_id`:
        FAILED_PRECONDITION naming `personalize.event_tracking_id`. While the events breaker
        is open: UNAVAILABLE at once, never the fallback's answer, so the caller retries
        (the events would otherwise be acknowledged and lost to Personalize).
        """
        check_events(user_id, session_id, events)
        tracking_id = self._required(EVENT_TRACKING_ID_KEY, "PutEvents")
        params: dict[str, Any] = {
            "trackingId": tracking_id,
            "sessionId": session_id,
            "eventList": [_event_params(k, event) for k, event in enumerate(events)],
        }
        if user_id is not None:
            params["userId"] = user_id
        context = CallContext("PutEvents", "events", {EVENT_TRACKING_ID_KEY: tracking_id})
        self._send(self._events_client, self.events_breaker, "put_events", context, params)

    def put_items(self, items: Sequence[CatalogItem]) -> None:
        """PutItems into `items_dataset_arn`, each item's properties as Personalize's JSON
        (`item_properties`). Without `items_dataset_arn`: FAILED_PRECONDITION naming
        `personalize.items_dataset_arn`; breaker and errors as `put_events`."""
        check_catalog_items(items)
        dataset_arn = self._required(ITEMS_DATASET_ARN_KEY, "PutItems")
        entries = []
        for item in items:
            entry = {"itemId": item.item_id}
            properties = item_properties(item)
            if properties is not None:
                entry["properties"] = properties
            entries.append(entry)
        context = CallContext("PutItems", "items", {ITEMS_DATASET_ARN_KEY: dataset_arn})
        params = {"datasetArn": dataset_arn, "items": entries}
        self._send(self._events_client, self.events_breaker, "put_items", context, params)

    def _required(self, key: str, operation: str) -> str:
        value = getattr(self._config, key)
        if value is None:
            raise BackendMisconfiguredError(
                f"personalize.{key} is not configured: {operation} needs it in"
                f" {CONFIG_SECTION} (recs personalize provision writes it)"
            )
        return value

    def recommend(
        self, user_id: str, num_results: int, filter: FilterCall | None = None
    ) -> Recommendations:
        """GetRecommendations on the user-personalization campaign, through `filter` or,
        without one, the default filter."""
        check_id("user_id", user_id)
        check_num_results(num_results)
        applied = self.filters.applied(filter)
        return self._or_fallback(
            lambda: self._recommend(user_id, num_results, applied),
            lambda fallback: fallback.recommend(user_id, num_results, filter),
        )

    def _recommend(
        self, user_id: str, num_results: int, filter: FilterCall | None
    ) -> Recommendations:
        response = self._call(
            "get_recommendations",
            "user_personalization",
            input_field="user_id",
            filter=filter,
            userId=user_id,
            numResults=num_results,
        )
        return _recommendations(response, "itemList")

    def similar_items(
        self,
        item_id: str,
        num_results: int,
        filter: FilterCall | None = None,
        user_id: str | None = None,
    ) -> Recommendations:
        """GetRecommendations on the SIMS campaign; the query item itself is never returned.

        With `user_id` the request carries `userId` (filters on interactions read it) and,
        when it names no filter, the default filter: a SIMS campaign does not leave out what
        the user watched by itself (the video-on-demand recommenders do), the default filter
        (`exclude_interacted` unless configured otherwise) does.

        On a VIDEO_ON_DEMAND recommender (`recommender_arns.similar_items`: Because you
        watched X or More like X) `user_id` is required, as the recommender needs `userId` and
        `itemId`, and no default filter is added: the recommender leaves out what the user
        watched itself."""
        check_id("item_id", item_id)
        check_num_results(num_results)
        recommender = self._recommender("similar_items_campaign_arn")
        if user_id is not None:
            check_id("user_id", user_id)
        elif recommender is not None and "userId" in RECOMMENDER_REQUIRES[recommender[0]]:
            raise InvalidRequestError(
                "user_id",
                f"is required: {RECOMMENDER_ARNS_KEY}.{recommender[0]} in {CONFIG_SECTION} is a"
                " VIDEO_ON_DEMAND recommender (Because you watched X / More like X), which"
                " needs userId and itemId",
            )
        return self._or_fallback(
            lambda: self._similar_items(item_id, num_results, filter, user_id),
            lambda fallback: fallback.similar_items(item_id, num_results, filter, user_id),
        )

    def _similar_items(
        self, item_id: str, num_results: int, filter: FilterCall | None, user_id: str | None
    ) -> Recommendations:
        user = {"userId": user_id} if user_id is not None else {}
        on_campaign = self._recommender("similar_items_campaign_arn") is None
        if user_id is not None and filter is None and on_campaign:
            filter = self.filters.default
        response = self._call(
            "get_recommendations",
            "similar_items",
            input_field="item_id",
            filter=filter,
            itemId=item_id,
            numResults=num_results,
            **user,
        )
        result = _recommendations(response, "itemList")
        items = [item for item in result.items if item.item_id != item_id]
        return Recommendations.of(items, result.recommendation_id)

    def popular_items(
        self, num_results: int, user_id: str | None = None, filter: FilterCall | None = None
    ) -> Recommendations:
        """GetRecommendations on the popularity-count campaign or the Most popular
        recommender (both need some userId: `anonymous_user_id` without one)."""
        if user_id is not None:
            check_id("user_id", user_id)
        check_num_results(num_results)
        return self._or_fallback(
            lambda: self._popular_items(num_results, user_id, filter),
            lambda fallback: fallback.popular_items(num_results, user_id, filter),
        )

    def _popular_items(
        self, num_results: int, user_id: str | None, filter: FilterCall | None
    ) -> Recommendations:
        response = self._call(
            "get_recommendations",
            "popularity",
            input_field="user_id",
            filter=filter,
            userId=user_id or self._config.anonymous_user_id,
            numResults=num_results,
        )
        return _recommendations(response, "itemList")

    def trending_items(
        self, num_results: int, user_id: str | None = None, filter: FilterCall | None = None
    ) -> Recommendations:
        """GetRecommendations on the trending-now campaign (aws-trending-now), through
        `filter` if given (no default filter, as `popular_items`).

        Trending-Now answers without scores, the same list for everyone; "you pass a userId
        in your request only if you apply a filter that requires it"
        (https://docs.aws.amazon.com/personalize/latest/dg/native-recipe-trending-now.html),
        so `userId` is sent only when the caller gives one (no `anonymous_user_id`).
        """
        if user_id is not None:
            check_id("user_id", user_id)
        check_num_results(num_results)
        return self._or_fallback(
            lambda: self._trending_items(num_results, user_id, filter),
            lambda fallback: fallback.trending_items(num_results, user_id, filter),
        )

    def _trending_items(
        self, num_results: int, user_id: str | None, filter: FilterCall | None
    ) -> Recommendations:
        params: dict[str, Any] = {"numResults": num_results}
        if user_id is not None:
            params["userId"] = user_id
        response = self._call(
            "get_recommendations",
            "trending_now",
            input_field="user_id",
            filter=filter,
            **params,
        )
        return _recommendations(response, "itemList")

    def rerank(
        self, user_id: str, item_ids: Sequence[str], filter: FilterCall | None = None
    ) -> Recommendations:
        """GetPersonalizedRanking of the distinct `item_ids`, through `filter` if given.

        Personalize appends items it was not trained on (with no score). Without a filter
        its answer is made a permutation of the distinct input here: every input id exactly
        once. With one, ids missing from its answer are the ones the filter dropped, and stay
        out.
        """
        check_id("user_id", user_id)
        distinct = list(dict.fromkeys(check_item_ids(item_ids)))
        return self._or_fallback(
            lambda: self._rerank(user_id, distinct, filter),
            lambda fallback: fallback.rerank(user_id, distinct, filter),
        )

    def _rerank(
        self, user_id: str, distinct: list[str], filter: FilterCall | None
    ) -> Recommendations:
        response = self._call(
            "get_personalized_ranking",
            "personalized_ranking",
            input_field="item_ids",
            filter=filter,
            userId=user_id,
            inputList=distinct,
        )
        ranked = _recommendations(response, "personalizedRanking")
        items = _as_permutation(ranked.items, distinct, filtered=filter is not None)
        return Recommendations.of(items, ranked.recommendation_id)

    def _or_fallback(
        self,
        primary: Callable[[], Recommendations],
        fallback_call: Callable[[Backend], Recommendations],
    ) -> Recommendations:
        """`primary()`, or, while the breaker is open and a fallback is set, the fallback's
        answer marked with the engine that gave it."""
        try:
            return primary()
        except CircuitOpenError:
            if self.fallback is None:
                raise
            answer = fallback_call(self.fallback)
            return dataclasses.replace(answer, served_by=self.fallback.name)

    def _call(
        self,
        operation: str,
        rpc: str,
        *,
        input_field: str,
        filter: FilterCall | None,
        **params: Any,
    ) -> Any:
        """Call `operation` on the recommender or campaign configured for `rpc` (`_resource`),
        through `filter`."""
        key, member, arn = self._resource(rpc)
        resources = {key: arn}
        params[member] = arn
        if filter is not None:
            filter_key, params["filterArn"] = self._filter_arn(filter.name)
            resources[filter_key] = params["filterArn"]
            if filter.raw_values:
                params["filterValues"] = dict(filter.raw_values)
        context = CallContext(_operation_name(operation), input_field, resources)
        return self._send(self._client, self.breaker, operation, context, params)

    def _send(
        self,
        client: Any,
        breaker: CircuitBreaker,
        operation: str,
        context: CallContext,
        params: Mapping[str, Any],
    ) -> Any:
        """`client.<operation>(**params)` through `breaker` and the concurrency slots,
        reported to the observer; boto3 failures become domain errors (`translate_error`)."""
        if client is None:
            raise BackendUnavailableError("the Personalize backend is not started")
        refused = breaker.refusal()
        if refused is not None:
            raise CircuitOpenError(refused)
        if not self._slots.acquire(timeout=self._config.queue_timeout):
            breaker.released()
            raise BackendUnavailableError(
                f"all {self._config.max_concurrency} Personalize call slots stayed busy"
                f" for {self._config.queue_timeout:g}s; retry later"
            )
        started = time.perf_counter()
        try:
            response = getattr(client, operation)(**params)
        except (BotoCoreError, ClientError) as exc:
            if self._observer is not None:
                self._observer(context.operation, time.perf_counter() - started, _code(exc))
            error = translate_error(exc, context)
            if isinstance(error, BackendUnavailableError | BackendTimeoutError):
                breaker.failed()
            else:
                breaker.released()
            raise error from exc
        finally:
            self._slots.release()
        if self._observer is not None:
            self._observer(context.operation, time.perf_counter() - started, "OK")
        breaker.succeeded()
        return response

    def _recommender(self, campaign_key: str) -> tuple[str, str] | None:
        """(recommender key, ARN) of the VIDEO_ON_DEMAND recommender answering the RPC of
        `campaign_key` instead of its campaign, or None (the campaign answers)."""
        name = RECOMMENDER_FOR_CAMPAIGN.get(campaign_key.removesuffix("_campaign_arn"))
        arn = self._config.recommender_arns.get(name) if name else None
        return (name, arn) if name is not None and arn is not None else None

    def _resource(self, rpc: str) -> tuple[str, str, str]:
        """(config key, request member, ARN) of what answers `rpc`: its recommender
        (`recommenderArn`) when `[personalize.recommender_arns]` names one, else its campaign
        (`campaignArn`); neither is our own misconfiguration."""
        campaign_key = f"{rpc}_campaign_arn"
        recommender = self._recommender(campaign_key)
        if recommender is not None:
            return f"{RECOMMENDER_ARNS_KEY}.{recommender[0]}", "recommenderArn", recommender[1]
        campaign_arn = getattr(self._config, campaign_key)
        if campaign_arn is None:
            raise BackendMisconfiguredError(f"{campaign_key} is not configured in {CONFIG_SECTION}")
        return campaign_key, "campaignArn", campaign_arn

    def _filter_arn(self, name: str) -> tuple[str, str]:
        """(config key, ARN) of the Personalize filter serving filter `name`.

        A filter the server knows but Personalize was not told about is our own
        misconfiguration: refused naming the key, rather than answered unfiltered.
        """
        key = f"{FILTER_ARNS_KEY}.{name}"
        arn = self._config.filter_arns.get(name)
        if arn is None:
            raise BackendMisconfiguredError(
                f"personalize.{key}: no ARN for filter {name!r} (run recs personalize"
                f" provision, or add it to [personalize.{FILTER_ARNS_KEY}])"
            )
        return key, arn


def _event_params(position: int, event: Event) -> dict[str, Any]:
    """One PutEvents `Event`: the optional members only when given."""
    try:
        sent_at = datetime.fromtimestamp(event.sent_at, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidRequestError(
            f"events[{position}].sent_at", "is not a time a date can hold"
        ) from None
    params: dict[str, Any] = {
        "eventType": event.event_type,
        "itemId": event.item_id,
        "sentAt": sent_at,
    }
    if event.event_id:
        params["eventId"] = event.event_id
    if event.event_value is not None:
        params["eventValue"] = event.event_value
    if event.recommendation_id:
        params["recommendationId"] = event.recommendation_id
    if event.impression:
        params["impression"] = list(event.impression)
    return params


def personalize_field_name(column: str) -> str:
    """The key PutItems' `properties` use for the schema field (catalog column) `column`.

    Personalize names a schema field in camel case in `properties`: "The keys use camel case
    names that match the fields in the schema for the Items dataset ... `numberOfRatings`
    matches the 'NUMBER_OF_RATINGS' field" (the `Item.properties` documentation in botocore's
    personalize-events service model, and the PutItems API reference, `API_UBS_Item`). So:
    split the upper snake case name at `_`, lower-case every part, capitalise every part but
    the first, join: CATEGORIES -> categories, CREATION_TIMESTAMP -> creationTimestamp,
    TITLE -> title, URL -> url.
    """
    parts = [part for part in column.lower().split("_") if part]
    if not parts:
        return column
    return parts[0] + "".join(part.capitalize() for part in parts[1:])


def item_properties(item: CatalogItem) -> str | None:
    """An item's PutItems `properties`: a JSON object string of title, url and every
    property under its camel case field name (`personalize_field_name`), values as the
    strings the catalog holds (multi-valued ones pipe-separated, as in items.csv).

    Empty values are left out, so the field is null (a float or long field would refuse
    ""); None when nothing is left (the item is sent with its id alone).
    """
    columns = {"TITLE": item.title, "URL": item.url, **item.properties}
    properties = {
        personalize_field_name(column): value for column, value in columns.items() if value != ""
    }
    if not properties:
        return None
    return json.dumps(properties, ensure_ascii=False, separators=(",", ":"))


def _code(exc: BotoCoreError | ClientError) -> str:
    """AWS's error code of a failed call, or the botocore error's name (timeouts, no network)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "ClientError")
    return type(exc).__name__


def _operation_name(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))


def _recommendations(response: Mapping[str, Any], list_key: str) -> Recommendations:
    """Personalize's predicted items in its order; recipes without scores give 0.0.

    An entry without an item id (the model allows it, Personalize never sends it) cannot
    be served: it is left out and logged.
    """
    entries = response.get(list_key, [])
    items = [
        ScoredItem(item_id=entry["itemId"], score=float(entry.get("score", 0.0)))
        for entry in entries
        if entry.get("itemId")
    ]
    if len(items) != len(entries):
        logger.warning("left out %d %s entries without itemId", len(entries) - len(items), list_key)
    return Recommendations.of(items, response.get("recommendationId", ""))


def _as_permutation(
    ranked: list[ScoredItem], distinct_input: list[str], *, filtered: bool = False
) -> list[ScoredItem]:
    """`ranked` reduced to the input ids (first occurrence), then the input ids it lacked.

    With `filtered`, the ids it lacked were dropped by the request's filter and are not added
    back (ids the model does not know are in Personalize's answer anyway, without a score).
    """
    wanted = set(distinct_input)
    seen: set[str] = set()
    result = []
    for item in ranked:
        if item.item_id in wanted and item.item_id not in seen:
            seen.add(item.item_id)
            result.append(item)
    if not filtered:
        result.extend(ScoredItem(item_id, 0.0) for item_id in distinct_input if item_id not in seen)
    return result
