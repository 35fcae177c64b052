"""Amazon Personalize's own API over the engine: request members in, AWS's answers out.

The AWS-protocol endpoint (`server.aws_endpoint`) hands each request body here as the JSON
object botocore sends (rest-json: the members as top-level camelCase keys) and sends back
what this returns, or the `AwsError` it raises. Sources: botocore's service models of
personalize-runtime and personalize-events and ../shared/reference/personalize.md sections
1.2 and 1.3 (members, limits, which recipe needs which member, error codes and statuses).

- **Which ARN is which** (`AwsResources`): the campaign ARNs, VIDEO_ON_DEMAND recommender
  ARNs (`[personalize.recommender_arns]`), filter ARNs, event tracking id and dataset ARNs of
  the serve config's `[personalize]` section, the section
  `recs personalize provision` writes, so one serve.toml works against AWS and against the
  laptop. A key the section lacks gets a stand-in ARN in account 000000000000 (logged at
  start). An ARN it does not know is a ResourceNotFoundException, as on AWS.
- **Recipes**: a user-personalization campaign needs `userId` and answers with scores; SIMS
  needs `itemId`, popularity-count and trending-now need nothing (a `userId` only matters to
  a filter on the user's interactions), all three without scores (as AWS); a
  personalized-ranking campaign answers GetPersonalizedRanking only, items the model does
  not know appended without a score.
- **Recommenders** (GetRecommendations with `recommenderArn`): each is answered as the
  campaign of the same kind (`RECOMMENDER_KINDS`: Top picks for you as user-personalization,
  Because you watched X and More like X as SIMS, Most popular as popularity-count, Trending
  now as trending-now), except that Because you watched X and More like X leave out the videos
  the user watched (the engine's `similar_items` with the user), as VIDEO_ON_DEMAND does, and
  Top picks for you without `filterArn` gets the engine's default filter (which stands in for
  its own leaving out of watched videos; with a `filterArn`, only that filter applies). Each
  use case's required members (`RECOMMENDER_REQUIRES`: AWS's "VIDEO_ON_DEMAND use cases") are
  enforced with InvalidInputException.
- **Filters**: `filterArn` names a filter of `[filters]` and its `filterValues` are checked and
  applied by the engine, as gRPC's `filter_name`. Without `filterArn` nothing is filtered,
  not even the gRPC default filter: a Personalize request without a filter is unfiltered.
- **Reasons**: an item the engine mixed in by exploration carries `reason: ["Exploration"]`,
  Personalize's value.
- **Promotions** (at most one): `percentPromotedItems` percent of the answer (rounded up)
  come from the promotion's filter, marked with `promotionName`, spread evenly through the
  answer; the rest is the request's answer without them.
- **Events and items** go to the engine exactly as gRPC PutEvents and PutItems do (the local
  engine's durable event store). PutUsers is checked and acknowledged; the engine's recipes
  use no user metadata, so the users are not kept.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recs.backends.base import (
    MAX_EVENTS,
    MAX_ID_LENGTH,
    MAX_ITEMS_PER_CALL,
    MAX_NUM_RESULTS,
    MAX_RERANK_ITEMS,
    CatalogItem,
    Event,
    Recommendations,
)
from recs.backends.errors import (
    BackendError,
    BackendMisconfiguredError,
    BackendTimeoutError,
    BackendUnavailableError,
    InvalidRequestError,
    ModelLoadError,
)
from recs.backends.filtering import UNFILTERED, FilterCall
from recs.backends.limits import (
    MAX_IMPRESSION,
    MAX_ITEM_PROPERTIES_LENGTH,
    MAX_RECOMMENDATION_ID_LENGTH,
)
from recs.backends.local.ids import RecommendationIds
from recs.backends.personalize.config import RECOMMENDER_REQUIRES
from recs.server import validation
from recs.server.catalog import Catalog
from recs.server.dispatch import BackendDispatcher

USER_PERSONALIZATION = "user-personalization"
SIMS = "sims"
POPULARITY = "popularity-count"
TRENDING_NOW = "trending-now"
PERSONALIZED_RANKING = "personalized-ranking"
CAMPAIGN_KEYS = {  # [personalize] key -> the recipe its campaign runs
    "user_personalization_campaign_arn": USER_PERSONALIZATION,
    "similar_items_campaign_arn": SIMS,
    "popularity_campaign_arn": POPULARITY,
    "trending_now_campaign_arn": TRENDING_NOW,
    "personalized_ranking_campaign_arn": PERSONALIZED_RANKING,
}
RECOMMENDER_KINDS = {  # [personalize.recommender_arns] key -> the kind answering it
    "recommendations": USER_PERSONALIZATION,  # Top picks for you
    "similar_items": SIMS,  # Because you watched X (watched videos left out)
    "more_like_x": SIMS,  # More like X (watched videos left out)
    "popular_items": POPULARITY,  # Most popular
    "trending_items": TRENDING_NOW,  # Trending now
}
STAND_IN_ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"
STAND_IN_TRACKING_ID = "local-event-tracker"

DEFAULT_NUM_RESULTS = 25
MAX_RESULTS_WITH_METADATA = 50  # numResults and inputList when metadataColumns is given
MAX_METADATA_COLUMNS = 10
MAX_CONTEXT_ENTRIES = 150
MAX_CONTEXT_KEY_LENGTH = 150
MAX_CONTEXT_VALUE_LENGTH = 1000
MAX_PROMOTIONS = 1
MAX_EVENT_PROPERTIES_LENGTH = 1024
MAX_USER_PROPERTIES_LENGTH = 24000
_CONTEXT_KEY = re.compile(r"[A-Za-z\d_]+")
_PROMOTION_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9\-_]*")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class AwsError(Exception):
    """An error answer: HTTP status, the error code botocore raises, and the message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid_input(message: str) -> AwsError:
    return AwsError(400, "InvalidInputException", message)


def not_found(message: str) -> AwsError:
    return AwsError(404, "ResourceNotFoundException", message)


INTERNAL_MESSAGE = "internal error; the server log has the details"
# Domain errors to AWS errors: the one table (gRPC's is server.errors).
AWS_ERROR_BY_TYPE: dict[type[BackendError], tuple[int, str]] = {
    InvalidRequestError: (400, "InvalidInputException"),
    BackendMisconfiguredError: (404, "ResourceNotFoundException"),
    BackendUnavailableError: (503, "ServiceUnavailableException"),
    ModelLoadError: (503, "ServiceUnavailableException"),
    BackendTimeoutError: (503, "ServiceUnavailableException"),
}


def aws_error_for(exc: BaseException) -> AwsError:
    """The AWS error answering `exc`: AwsError as it is, domain errors by the table, anything
    else an InternalFailure with a generic message (the caller logs the traceback)."""
    if isinstance(exc, AwsError):
        return exc
    for error_type in type(exc).__mro__:
        found = AWS_ERROR_BY_TYPE.get(error_type)  # type: ignore[arg-type]
        if found is not None:
            return AwsError(found[0], found[1], str(exc))
    return AwsError(500, "InternalFailure", INTERNAL_MESSAGE)


@dataclass(frozen=True)
class AwsResources:
    """The Personalize resources the endpoint answers for, by ARN (or tracking id)."""

    campaigns: Mapping[str, str]  # campaign ARN -> recipe kind
    recommenders: Mapping[str, str]  # recommender ARN -> its [personalize.recommender_arns] key
    filters: Mapping[str, str]  # filter ARN -> filter name of [filters]
    tracking_ids: frozenset[str]
    items_dataset_arns: frozenset[str]
    users_dataset_arns: frozenset[str]

    @classmethod
    def from_config(
        cls, personalize: Mapping[str, Any], filter_names: Iterable[str]
    ) -> AwsResources:
        """From the `[personalize]` keys (validated elsewhere) and every filter name; a key
        that is absent gets a stand-in ARN (`stand_in_arn`)."""
        region = personalize.get("region") or DEFAULT_REGION
        campaigns = {
            str(personalize.get(key) or stand_in_arn(region, "campaign", f"local-{kind}")): kind
            for key, kind in CAMPAIGN_KEYS.items()
        }
        named = dict(personalize.get("recommender_arns") or {})
        recommenders = {
            str(named.get(key) or stand_in_arn(region, "recommender", f"local-{key}")): key
            for key in RECOMMENDER_KINDS
        }
        configured = dict(personalize.get("filter_arns") or {})
        filters = {
            str(configured.get(name) or stand_in_arn(region, "filter", f"local-{name}")): name
            for name in filter_names
        }
        return cls(
            campaigns=campaigns,
            recommenders=recommenders,
            filters=filters,
            tracking_ids=frozenset(
                [str(personalize.get("event_tracking_id") or STAND_IN_TRACKING_ID)]
            ),
            items_dataset_arns=frozenset(
                [
                    str(
                        personalize.get("items_dataset_arn")
                        or stand_in_arn(region, "dataset", "local/ITEMS")
                    )
                ]
            ),
            users_dataset_arns=frozenset(
                [
                    str(
                        personalize.get("users_dataset_arn")
                        or stand_in_arn(region, "dataset", "local/USERS")
                    )
                ]
            ),
        )

    def describe(self) -> list[str]:
        """One line per resource, for the start-up log."""
        lines = [f"campaign {kind}: {arn}" for arn, kind in self.campaigns.items()]
        lines += [f"recommender {key}: {arn}" for arn, key in self.recommenders.items()]
        lines += [f"filter {name}: {arn}" for arn, name in self.filters.items()]
        lines += [f"event tracker: {tracking_id}" for tracking_id in sorted(self.tracking_ids)]
        lines += [f"items dataset: {arn}" for arn in sorted(self.items_dataset_arns)]
        lines += [f"users dataset: {arn}" for arn in sorted(self.users_dataset_arns)]
        return lines


def stand_in_arn(region: str, resource: str, name: str) -> str:
    """The ARN the endpoint answers for a resource the serve config does not name."""
    return f"arn:aws:personalize:{region}:{STAND_IN_ACCOUNT}:{resource}/{name}"


class NoDeadline:
    """AWS requests carry no deadline: backend calls run until they finish."""

    @staticmethod
    def time_remaining() -> float | None:
        return None


NO_DEADLINE = NoDeadline()
Operation = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]


class PersonalizeApi:
    """The five operations, answered from the dispatcher the gRPC servicer uses.

    `dispatcher` is called for each request: the server swaps its dispatcher while it
    drains (server.draining.Gate), and the endpoint must see the same one.
    """

    def __init__(
        self,
        resources: AwsResources,
        catalog: Catalog,
        dispatcher: Callable[[], BackendDispatcher],
    ) -> None:
        self.resources = resources
        self._catalog = catalog
        self._dispatcher = dispatcher
        self.operations: dict[str, tuple[str, Operation]] = {
            "/recommendations": ("GetRecommendations", self.get_recommendations),
            "/personalize-ranking": ("GetPersonalizedRanking", self.get_personalized_ranking),
            "/events": ("PutEvents", self.put_events),
            "/items": ("PutItems", self.put_items),
            "/users": ("PutUsers", self.put_users),
        }

    # personalize-runtime --------------------------------------------------------------

    async def get_recommendations(self, body: Mapping[str, Any]) -> dict[str, Any]:
        kind, recommender = self._resource(body)
        columns = _metadata_columns(body)
        limit = MAX_RESULTS_WITH_METADATA if columns else MAX_NUM_RESULTS
        num_results = body.get("numResults")
        if num_results is None:
            num_results = DEFAULT_NUM_RESULTS
        if not _is_int(num_results) or not 0 <= num_results <= limit:
            raise invalid_input(
                f"numResults: must be 0 to {limit}"
                + (" when metadataColumns is given" if columns else "")
            )
        num_results = num_results or DEFAULT_NUM_RESULTS
        user_id = _optional_id(body, "userId")
        item_id = _optional_id(body, "itemId")
        _check_context(body)
        if kind == PERSONALIZED_RANKING:
            raise invalid_input(
                "a PERSONALIZED_RANKING campaign answers GetPersonalizedRanking, "
                "not GetRecommendations"
            )
        if recommender is not None:
            given = {"userId": user_id, "itemId": item_id}
            for member in RECOMMENDER_REQUIRES[recommender]:
                if given[member] is None:
                    raise invalid_input(
                        f"{member}: is required for the VIDEO_ON_DEMAND recommender"
                        f" {body['recommenderArn']} ({recommender})"
                    )
        elif kind == USER_PERSONALIZATION and user_id is None:
            raise invalid_input("userId: is required for a USER_PERSONALIZATION campaign")
        elif kind == SIMS and item_id is None:
            raise invalid_input("itemId: is required for a RELATED_ITEMS campaign")
        call = self._filter(body.get("filterArn"), body.get("filterValues"), "", kind)
        if recommender is not None and call is UNFILTERED:
            # Top picks for you leaves out what the user watched by itself: the engine's
            # default filter (exclude_interacted unless configured otherwise) stands in.
            call = None
        promotion = _promotion(body)
        promotion_call: FilterCall | None = None
        if promotion is not None:
            _, _, arn, values = promotion
            promotion_call = self._filter(arn, values, "promotions[0].", kind)
        if recommender is not None and user_id is None:  # only Trending now gets here
            # Trending now: "userId: Required only if you filter by CurrentUser or by items a
            # user has interacted with" (VIDEO_ON_DEMAND use cases).
            for where, used in (("filterArn", call), ("promotions[0].filterArn", promotion_call)):
                if used is not None and _reads_interactions(used):
                    raise invalid_input(
                        f"userId: is required for filter {used.name!r} ({where}), which reads"
                        " the user's interactions"
                    )
        # Because you watched X and More like X leave out what the user watched.
        watcher = user_id if recommender is not None and kind == SIMS else None
        promoted: Recommendations | None = None
        if promotion is not None:
            count = math.ceil(num_results * promotion[1] / 100)
            promoted = await self._ask(kind, user_id, item_id, count, promotion_call, watcher)
        answer = await self._ask(kind, user_id, item_id, num_results, call, watcher)
        scored = kind == USER_PERSONALIZATION
        items = [self._item(i, s if scored else None, columns) for i, s in _pairs(answer)]
        for position, reason in (answer.reasons or {}).items():  # e.g. "Exploration"
            items[position]["reason"] = list(reason)
        if promotion is not None and promoted is not None:
            items = _with_promoted(
                items,
                [self._item(i, s if scored else None, columns) for i, s in _pairs(promoted)],
                promotion[0],
                num_results,
            )
        return {"itemList": items, "recommendationId": _recommendation_id(answer)}

    async def get_personalized_ranking(self, body: Mapping[str, Any]) -> dict[str, Any]:
        kind = self._campaign(body)
        if kind != PERSONALIZED_RANKING:
            raise invalid_input("GetPersonalizedRanking needs a PERSONALIZED_RANKING campaign")
        user_id = _required_id(body, "userId")
        columns = _metadata_columns(body)
        limit = MAX_RESULTS_WITH_METADATA if columns else MAX_RERANK_ITEMS
        input_list = body.get("inputList")
        if not isinstance(input_list, list) or not 1 <= len(input_list) <= limit:
            raise invalid_input(
                f"inputList: must hold 1 to {limit} item ids"
                + (" when metadataColumns is given" if columns else "")
            )
        for position, value in enumerate(input_list):
            if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_LENGTH:
                raise invalid_input(
                    f"inputList[{position}]: must be an item id of 1 to {MAX_ID_LENGTH} characters"
                )
        _check_context(body)
        call = self._filter(body.get("filterArn"), body.get("filterValues"), "", kind)
        answer = await self._dispatcher().call(
            NO_DEADLINE, lambda backend: backend.rerank(user_id, input_list, call)
        )
        # Items the model was not trained on come back last, without a score.
        ranking = [self._item(i, s if s else None, columns) for i, s in _pairs(answer)]
        return {"personalizedRanking": ranking, "recommendationId": _recommendation_id(answer)}

    # personalize-events ---------------------------------------------------------------

    async def put_events(self, body: Mapping[str, Any]) -> dict[str, Any]:
        tracking_id = body.get("trackingId")
        if not isinstance(tracking_id, str) or not tracking_id:
            raise invalid_input("trackingId: is required")
        if tracking_id not in self.resources.tracking_ids:
            raise not_found(f"Event tracker {tracking_id} not found")
        user_id = _optional_id(body, "userId")
        session_id = _required_id(body, "sessionId")
        entries = body.get("eventList")
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_EVENTS:
            raise invalid_input(f"eventList: must hold 1 to {MAX_EVENTS} events")
        events = [_event(position, entry) for position, entry in enumerate(entries)]
        validation.events(user_id, session_id, events)
        await self._dispatcher().put_events(NO_DEADLINE, user_id, session_id, events)
        return {}

    async def put_items(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self._dataset(body, self.resources.items_dataset_arns)
        entries = body.get("items")
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ITEMS_PER_CALL:
            raise invalid_input(f"items: must hold 1 to {MAX_ITEMS_PER_CALL} items")
        items = [_catalog_item(position, entry) for position, entry in enumerate(entries)]
        validation.catalog_items(items)
        await self._dispatcher().call_off_loop(NO_DEADLINE, lambda b: b.put_items(items))
        return {}

    async def put_users(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self._dataset(body, self.resources.users_dataset_arns)
        entries = body.get("users")
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ITEMS_PER_CALL:
            raise invalid_input(f"users: must hold 1 to {MAX_ITEMS_PER_CALL} users")
        for position, entry in enumerate(entries):
            where = f"users[{position}]"
            if not isinstance(entry, dict):
                raise invalid_input(f"{where}: must be an object")
            _required_id(entry, "userId", where)
            _properties(entry, where, MAX_USER_PROPERTIES_LENGTH)
        return {}

    # shared ---------------------------------------------------------------------------

    def _resource(self, body: Mapping[str, Any]) -> tuple[str, str | None]:
        """(kind, recommender key) of GetRecommendations' `recommenderArn`, or (kind, None)
        of its `campaignArn`: exactly one of the two."""
        arn = body.get("recommenderArn")
        if arn is None:
            return self._campaign(body), None
        if body.get("campaignArn") is not None:
            raise invalid_input("give campaignArn or recommenderArn, not both")
        if not isinstance(arn, str) or not arn:
            raise invalid_input("recommenderArn: must be a recommender ARN")
        key = self.resources.recommenders.get(arn)
        if key is None:
            raise not_found(f"Recommender {arn} not found")
        return RECOMMENDER_KINDS[key], key

    def _campaign(self, body: Mapping[str, Any]) -> str:
        arn = body.get("campaignArn")
        if not isinstance(arn, str) or not arn:
            raise invalid_input("campaignArn: is required")
        kind = self.resources.campaigns.get(arn)
        if kind is None:
            raise not_found(f"Campaign {arn} not found")
        return kind

    def _dataset(self, body: Mapping[str, Any], known: frozenset[str]) -> None:
        arn = body.get("datasetArn")
        if not isinstance(arn, str) or not arn:
            raise invalid_input("datasetArn: is required")
        if arn not in known:
            raise not_found(f"Dataset {arn} not found")

    def _filter(self, arn: Any, values: Any, where: str, kind: str) -> FilterCall | None:
        """The filter a `filterArn` names with its `filterValues`, checked by the engine's
        filter set; UNFILTERED (user-personalization) or None without one."""
        if values is not None and (
            not isinstance(values, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in values.items())
        ):
            raise invalid_input(f"{where}filterValues: must map strings to strings")
        if arn is None:
            if values:
                raise invalid_input(f"{where}filterValues: given without a filterArn")
            return UNFILTERED if kind == USER_PERSONALIZATION else None
        name = self.resources.filters.get(arn) if isinstance(arn, str) else None
        if name is None:
            raise not_found(f"Filter {arn} does not exist")
        filters = self._dispatcher().backend.filters
        try:
            return filters.resolve(name, values or {}, current_item=kind == SIMS)
        except InvalidRequestError as exc:  # its field in AWS's names
            field = exc.field.replace("filter_values", f"{where}filterValues")
            field = field.replace("filter_name", f"{where}filterArn")
            raise invalid_input(f"{field}: {exc.message}") from None

    async def _ask(
        self,
        kind: str,
        user_id: str | None,
        item_id: str | None,
        count: int,
        call: FilterCall | None,
        watcher: str | None = None,
    ) -> Recommendations:
        """The engine's answer for `kind`; SIMS leaves out what `watcher` watched (a
        VIDEO_ON_DEMAND recommender's user; a SIMS campaign passes None)."""
        dispatcher = self._dispatcher()
        if kind == USER_PERSONALIZATION:
            assert user_id is not None
            return await dispatcher.recommend(NO_DEADLINE, user_id, count, call)
        if kind == SIMS:
            assert item_id is not None
            return await dispatcher.call(
                NO_DEADLINE, lambda backend: backend.similar_items(item_id, count, call, watcher)
            )
        if kind == TRENDING_NOW:
            return await dispatcher.call(
                NO_DEADLINE, lambda backend: backend.trending_items(count, user_id, call)
            )
        return await dispatcher.call(
            NO_DEADLINE, lambda backend: backend.popular_items(count, user_id, call)
        )

    def _item(self, item_id: str, score: float | None, columns: Sequence[str]) -> dict[str, Any]:
        """One `PredictedItem`: its id, its score (absent when None), the metadata asked."""
        item: dict[str, Any] = {"itemId": item_id}
        if score is not None:
            item["score"] = score
        if columns:
            item["metadata"] = self._metadata(item_id, columns)
        return item

    def _metadata(self, item_id: str, columns: Sequence[str]) -> dict[str, str]:
        """The catalog's values of `columns` for `item_id` (a column it lacks is left out)."""
        entry = self._catalog.get(item_id)
        found: dict[str, str] = {}
        for column in columns:
            upper = column.upper()
            if upper == "TITLE":
                value = entry.title
            elif upper == "URL":
                value = entry.url
            else:
                value = entry.metadata.get(upper.lower(), "")
            if value:
                found[column] = value
        return found


def _reads_interactions(call: FilterCall) -> bool:
    """Whether the filter has a condition on the Interactions dataset (needs a user)."""
    return any(
        condition.dataset == "Interactions"
        for part in call.filter.parts
        for condition in part.conditions
    )


def _pairs(answer: Recommendations) -> Iterable[tuple[str, float]]:
    return zip(answer.item_ids, answer.scores, strict=True)


_RECOMMENDATION_IDS = RecommendationIds()


def _recommendation_id(answer: Recommendations) -> str:
    """The engine's id of the answer, or a new one (AWS answers always carry one)."""
    return answer.recommendation_id or _RECOMMENDATION_IDS.next()


def _with_promoted(
    items: list[dict[str, Any]], promoted: list[dict[str, Any]], name: str, size: int
) -> list[dict[str, Any]]:
    """`size` items: the promoted ones (marked) spread evenly among the others."""
    promoted_ids = {item["itemId"] for item in promoted}
    rest = [item for item in items if item["itemId"] not in promoted_ids]
    promoted = [{**item, "promotionName": name} for item in promoted]
    total = min(size, len(rest) + len(promoted))
    if not promoted or total == 0:
        return rest[:size]
    step = total / len(promoted)
    slots = {min(total - 1, int(k * step)) for k in range(len(promoted))}
    merged: list[dict[str, Any]] = []
    promoted_iter, rest_iter = iter(promoted), iter(rest)
    for position in range(total):
        source = promoted_iter if position in slots else rest_iter
        chosen = next(source, None) or next(promoted_iter, None) or next(rest_iter, None)
        if chosen is None:
            break
        merged.append(chosen)
    return merged


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_id(body: Mapping[str, Any], key: str, where: str = "") -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_LENGTH:
        prefix = f"{where}." if where else ""
        raise invalid_input(f"{prefix}{key}: must be 1 to {MAX_ID_LENGTH} characters")
    return value


def _required_id(body: Mapping[str, Any], key: str, where: str = "") -> str:
    value = _optional_id(body, key, where)
    if value is None:
        prefix = f"{where}." if where else ""
        raise invalid_input(f"{prefix}{key}: is required")
    return value


def _metadata_columns(body: Mapping[str, Any]) -> list[str]:
    """The item columns `metadataColumns` asks for (`{"ITEMS": [...]}`), or none."""
    value = body.get("metadataColumns")
    if value is None:
        return []
    if not isinstance(value, dict) or len(value) > 1 or not set(value) <= {"ITEMS"}:
        raise invalid_input('metadataColumns: must map "ITEMS" to a list of column names')
    columns = value.get("ITEMS") or []
    if (
        not isinstance(columns, list)
        or len(columns) > MAX_METADATA_COLUMNS
        or not all(isinstance(c, str) and 1 <= len(c) <= 150 for c in columns)
    ):
        raise invalid_input(
            f"metadataColumns.ITEMS: must list at most {MAX_METADATA_COLUMNS} column names"
        )
    return columns


def _check_context(body: Mapping[str, Any]) -> None:
    """`context` as Personalize limits it (the engine's recipes take no context)."""
    context = body.get("context")
    if context is None:
        return
    if not isinstance(context, dict) or len(context) > MAX_CONTEXT_ENTRIES:
        raise invalid_input(f"context: must map at most {MAX_CONTEXT_ENTRIES} keys to values")
    for key, value in context.items():
        if len(key) > MAX_CONTEXT_KEY_LENGTH or not _CONTEXT_KEY.fullmatch(key):
            raise invalid_input(f"context.{key}: keys are 1 to 150 characters [A-Za-z0-9_]")
        if not isinstance(value, str) or len(value) > MAX_CONTEXT_VALUE_LENGTH:
            raise invalid_input(f"context.{key}: must be a string of at most 1000 characters")


def _promotion(body: Mapping[str, Any]) -> tuple[str, int, Any, Any] | None:
    """The request's promotion (name, percent, filterArn, filterValues), or None."""
    promotions = body.get("promotions")
    if promotions is None or promotions == []:
        return None
    if not isinstance(promotions, list) or len(promotions) > MAX_PROMOTIONS:
        raise invalid_input(f"promotions: at most {MAX_PROMOTIONS} promotion per request")
    promotion = promotions[0]
    if not isinstance(promotion, dict):
        raise invalid_input("promotions[0]: must be an object")
    name = promotion.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 63 or not _PROMOTION_NAME.fullmatch(name):
        raise invalid_input(
            "promotions[0].name: 1 to 63 characters [a-zA-Z0-9-_], first not - or _"
        )
    percent = promotion.get("percentPromotedItems")
    if not _is_int(percent) or not 1 <= percent <= 100:
        raise invalid_input("promotions[0].percentPromotedItems: must be 1 to 100")
    if promotion.get("filterArn") is None:
        raise invalid_input("promotions[0].filterArn: is required")
    return name, percent, promotion["filterArn"], promotion.get("filterValues")


def _event(position: int, entry: Any) -> Event:
    """One PutEvents `Event` from the wire, its members checked under AWS's names."""
    where = f"eventList[{position}]"
    if not isinstance(entry, dict):
        raise invalid_input(f"{where}: must be an object")
    event_type = _required_id(entry, "eventType", where)
    item_id = _required_id(entry, "itemId", where)
    sent_at = entry.get("sentAt")
    if isinstance(sent_at, bool) or not isinstance(sent_at, int | float):
        raise invalid_input(f"{where}.sentAt: is required (epoch seconds)")
    value = entry.get("eventValue")
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    ):
        raise invalid_input(f"{where}.eventValue: must be a number")
    recommendation_id = entry.get("recommendationId")
    if recommendation_id is not None and (
        not isinstance(recommendation_id, str)
        or not 1 <= len(recommendation_id) <= MAX_RECOMMENDATION_ID_LENGTH
    ):
        raise invalid_input(
            f"{where}.recommendationId: must be 1 to {MAX_RECOMMENDATION_ID_LENGTH} characters"
        )
    impression = entry.get("impression")
    if impression is not None and (
        not isinstance(impression, list)
        or not 1 <= len(impression) <= MAX_IMPRESSION
        or not all(isinstance(i, str) and 1 <= len(i) <= MAX_ID_LENGTH for i in impression)
    ):
        raise invalid_input(f"{where}.impression: must hold 1 to {MAX_IMPRESSION} item ids")
    _properties(entry, where, MAX_EVENT_PROPERTIES_LENGTH)
    return Event(
        event_type=event_type,
        item_id=item_id,
        sent_at=float(sent_at),
        event_id=_optional_id(entry, "eventId", where) or "",
        event_value=None if value is None else float(value),
        recommendation_id=recommendation_id or "",
        impression=tuple(impression or ()),
    )


def _catalog_item(position: int, entry: Any) -> CatalogItem:
    """One PutItems `Item`: its `properties` back under catalog column names."""
    where = f"items[{position}]"
    if not isinstance(entry, dict):
        raise invalid_input(f"{where}: must be an object")
    item_id = _required_id(entry, "itemId", where)
    properties = _properties(entry, where, MAX_ITEM_PROPERTIES_LENGTH)
    columns = {_column_name(key): str(value) for key, value in properties.items()}
    return CatalogItem(
        item_id, title=columns.pop("TITLE", ""), url=columns.pop("URL", ""), properties=columns
    )


def _properties(entry: Mapping[str, Any], where: str, limit: int) -> dict[str, Any]:
    """`properties`: a JSON object of scalar values, as a string of at most `limit`."""
    text = entry.get("properties")
    if text is None:
        return {}
    if not isinstance(text, str) or not 1 <= len(text) <= limit:
        raise invalid_input(f"{where}.properties: must be a JSON string of 1 to {limit} characters")
    try:
        properties = json.loads(text)
    except json.JSONDecodeError:
        properties = None
    if not isinstance(properties, dict) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in properties.values()
    ):
        raise invalid_input(f"{where}.properties: Error parsing properties json")
    return properties


def _column_name(key: str) -> str:
    """A camelCase properties key back to its schema field: creationTimestamp ->
    CREATION_TIMESTAMP (the inverse of `personalize_field_name`)."""
    return _CAMEL_BOUNDARY.sub("_", key).upper()
