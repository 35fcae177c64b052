"""`PersonalizeBackend`: the four recommendation questions answered by Personalize campaigns.

| Backend method  | Personalize call                                        |
|-----------------|---------------------------------------------------------|
| recommend       | GetRecommendations(user-personalization campaign, userId) |
| similar_items   | GetRecommendations(SIMS campaign, itemId)                 |
| popular_items   | GetRecommendations(popularity-count campaign, userId)     |
| rerank          | GetPersonalizedRanking(personalized-ranking campaign)     |

Calls are blocking boto3 I/O: the server runs them in its thread pool. The backend still
bounds how many are in flight towards Personalize (a semaphore sized like the client's
HTTP pool) so a burst queues here, briefly, instead of opening ever more connections.
botocore checks only required fields and minima, so Personalize's maxima are checked here.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from recs.backends.base import Backend, CallObserver, ModelInfo, Recommendations, ScoredItem
from recs.backends.errors import (
    BackendMisconfiguredError,
    BackendTimeoutError,
    BackendUnavailableError,
)
from recs.backends.limits import check_id, check_item_ids, check_num_results
from recs.backends.personalize.breaker import CircuitBreaker, CircuitOpenError
from recs.backends.personalize.client import create_runtime_client
from recs.backends.personalize.config import CAMPAIGN_KEYS, PersonalizeBackendConfig
from recs.backends.personalize.errors import CONFIG_SECTION, CallContext, translate_error

logger = logging.getLogger(__name__)


class PersonalizeBackend(Backend):
    """Serves recommendations from four Amazon Personalize campaigns."""

    name: ClassVar[str] = "personalize"
    config_model: ClassVar[type[PersonalizeBackendConfig]] = PersonalizeBackendConfig

    def __init__(self, config: PersonalizeBackendConfig, client: Any | None = None) -> None:
        """Keep the config; `client` injects a ready runtime client (tests, Stubber)."""
        self._config = config
        self._client = client
        self._slots = threading.BoundedSemaphore(config.max_concurrency)
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_cooldown)
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
        """Create the one shared runtime client (no network call happens here).

        A fallback backend is started too: it must be able to answer before it is needed.
        """
        if self.fallback is not None:
            self.fallback.start()
        if self._client is None:
            try:
                self._client = create_runtime_client(self._config)
            except BotoCoreError as exc:
                raise translate_error(exc, CallContext("start", "region")) from exc
        missing = [key for key in CAMPAIGN_KEYS if getattr(self._config, key) is None]
        if missing:
            logger.warning(
                "%s lacks %s: those RPCs will answer FAILED_PRECONDITION",
                CONFIG_SECTION,
                ", ".join(missing),
            )

    def close(self) -> None:
        """Close the client's connection pool; safe to call more than once."""
        client, self._client = self._client, None
        if client is not None and hasattr(client, "close"):
            client.close()

    def info(self) -> ModelInfo:
        """The region and the campaigns being served (no call to AWS).

        A campaign ARN is what identifies the model a caller gets (Personalize's own
        "model version"), so it stays; the endpoint URL, an address of our own network
        (or of an emulator), is the operator's business and stays in the config.
        """
        details = {"region": self._config.region or "(AWS default chain)"}
        for key in CAMPAIGN_KEYS:
            details[key] = getattr(self._config, key) or "(not configured)"
        return ModelInfo(backend=self.name, details=details)

    def recommend(self, user_id: str, num_results: int) -> Recommendations:
        """GetRecommendations on the user-personalization campaign."""
        check_id("user_id", user_id)
        check_num_results(num_results)
        return self._or_fallback(
            lambda: self._recommend(user_id, num_results),
            lambda fallback: fallback.recommend(user_id, num_results),
        )

    def _recommend(self, user_id: str, num_results: int) -> Recommendations:
        response = self._call(
            "get_recommendations",
            "user_personalization",
            input_field="user_id",
            userId=user_id,
            numResults=num_results,
        )
        return _recommendations(response, "itemList")

    def similar_items(self, item_id: str, num_results: int) -> Recommendations:
        """GetRecommendations on the SIMS campaign; the query item itself is never returned."""
        check_id("item_id", item_id)
        check_num_results(num_results)
        return self._or_fallback(
            lambda: self._similar_items(item_id, num_results),
            lambda fallback: fallback.similar_items(item_id, num_results),
        )

    def _similar_items(self, item_id: str, num_results: int) -> Recommendations:
        response = self._call(
            "get_recommendations",
            "similar_items",
            input_field="item_id",
            itemId=item_id,
            numResults=num_results,
        )
        result = _recommendations(response, "itemList")
        items = [item for item in result.items if item.item_id != item_id]
        return Recommendations.of(items, result.recommendation_id)

    def popular_items(self, num_results: int, user_id: str | None = None) -> Recommendations:
        """GetRecommendations on the popularity-count campaign (which needs some userId)."""
        if user_id is not None:
            check_id("user_id", user_id)
        check_num_results(num_results)
        return self._or_fallback(
            lambda: self._popular_items(num_results, user_id),
            lambda fallback: fallback.popular_items(num_results, user_id),
        )

    def _popular_items(self, num_results: int, user_id: str | None) -> Recommendations:
        response = self._call(
            "get_recommendations",
            "popularity",
            input_field="user_id",
            userId=user_id or self._config.anonymous_user_id,
            numResults=num_results,
        )
        return _recommendations(response, "itemList")

    def rerank(self, user_id: str, item_ids: Sequence[str]) -> Recommendations:
        """GetPersonalizedRanking of the distinct `item_ids`.

        Personalize appends items it was not trained on (with no score) and its answer is
        made a permutation of the distinct input here: every input id exactly once.
        """
        check_id("user_id", user_id)
        distinct = list(dict.fromkeys(check_item_ids(item_ids)))
        return self._or_fallback(
            lambda: self._rerank(user_id, distinct),
            lambda fallback: fallback.rerank(user_id, distinct),
        )

    def _rerank(self, user_id: str, distinct: list[str]) -> Recommendations:
        response = self._call(
            "get_personalized_ranking",
            "personalized_ranking",
            input_field="item_ids",
            userId=user_id,
            inputList=distinct,
        )
        ranked = _recommendations(response, "personalizedRanking")
        return Recommendations.of(_as_permutation(ranked.items, distinct), ranked.recommendation_id)

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

    def _call(self, operation: str, rpc: str, *, input_field: str, **params: Any) -> Any:
        """Call `operation` on the campaign (and filter) configured for `rpc`."""
        campaign_key = f"{rpc}_campaign_arn"
        filter_key = f"{rpc}_filter_arn"
        campaign_arn = getattr(self._config, campaign_key)
        if campaign_arn is None:
            raise BackendMisconfiguredError(f"{campaign_key} is not configured in {CONFIG_SECTION}")
        resources = {campaign_key: campaign_arn}
        params["campaignArn"] = campaign_arn
        filter_arn = getattr(self._config, filter_key)
        if filter_arn is not None:
            params["filterArn"] = filter_arn
            resources[filter_key] = filter_arn
        context = CallContext(_operation_name(operation), input_field, resources)
        client = self._client
        if client is None:
            raise BackendUnavailableError("the Personalize backend is not started")
        refused = self.breaker.refusal()
        if refused is not None:
            raise CircuitOpenError(refused)
        if not self._slots.acquire(timeout=self._config.queue_timeout):
            self.breaker.released()
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
                self.breaker.failed()
            else:
                self.breaker.released()
            raise error from exc
        finally:
            self._slots.release()
        if self._observer is not None:
            self._observer(context.operation, time.perf_counter() - started, "OK")
        self.breaker.succeeded()
        return response


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


def _as_permutation(ranked: list[ScoredItem], distinct_input: list[str]) -> list[ScoredItem]:
    """`ranked` reduced to the input ids (first occurrence), then the input ids it lacked."""
    wanted = set(distinct_input)
    seen: set[str] = set()
    result = []
    for item in ranked:
        if item.item_id in wanted and item.item_id not in seen:
            seen.add(item.item_id)
            result.append(item)
    result.extend(ScoredItem(item_id, 0.0) for item_id in distinct_input if item_id not in seen)
    return result
