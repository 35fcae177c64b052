"""The product's AWS-protocol endpoint over any backend, on an event loop in a background
thread: for synchronous tests that drive it with boto3 (the backend contract suite runs
`PersonalizeBackend -> HTTP -> this endpoint -> LocalBackend`)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from recs.backends.base import Backend
from recs.server.aws_endpoint import AwsEndpoint
from recs.server.aws_protocol import (
    CAMPAIGN_KEYS,
    STAND_IN_TRACKING_ID,
    AwsResources,
    PersonalizeApi,
)
from recs.server.catalog import Catalog
from recs.server.dispatch import BackendDispatcher
from recs.server.request_log import RequestLog


class EndpointThread:
    """Serves `backend` on 127.0.0.1 (a free port) until stopped.

    `personalize` is the serve config's `[personalize]` section the endpoint answers (its
    ARNs; stand-ins for the keys it lacks); the filters are the backend's own.
    """

    def __init__(
        self,
        backend: Backend,
        personalize: Mapping[str, Any] | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.backend = backend
        self.resources = AwsResources.from_config(personalize or {}, backend.filters.filters)
        self._catalog = catalog or Catalog()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="endpoint")
        self._dispatcher = BackendDispatcher(self._executor)
        self._endpoint: AwsEndpoint | None = None

    def start(self) -> EndpointThread:
        self._thread.start()
        self._dispatcher.install_backend(self.backend)
        api = PersonalizeApi(self.resources, self._catalog, lambda: self._dispatcher)
        self._endpoint = AwsEndpoint(api, RequestLog("summary"))
        asyncio.run_coroutine_threadsafe(self._endpoint.start("127.0.0.1", 0), self._loop).result(
            10
        )
        return self

    def stop(self) -> None:
        if self._endpoint is not None:
            asyncio.run_coroutine_threadsafe(self._endpoint.stop(1.0), self._loop).result(10)
            self._endpoint = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._dispatcher.close()
        self._executor.shutdown(wait=False)

    def __enter__(self) -> EndpointThread:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        assert self._endpoint is not None, "not started"
        return f"http://127.0.0.1:{self._endpoint.port}"

    def personalize_config(self, recommenders: bool = False) -> dict[str, Any]:
        """`[personalize]` keys for a PersonalizeBackend talking to this endpoint: the
        campaigns, recommenders, filter ARNs, tracking id and Items dataset it answers, and
        both endpoint URLs.

        With `recommenders`, `recommender_arns` names every VIDEO_ON_DEMAND recommender the
        endpoint answers, so a backend given it calls them instead of the campaigns for the
        RPCs they serve (GetPersonalizedRanking keeps its campaign); without, the campaigns
        answer every RPC."""
        resources = self.resources
        by_kind = {kind: arn for arn, kind in resources.campaigns.items()}
        by_key = {key: arn for arn, key in resources.recommenders.items()}
        return {
            **{key: by_kind[kind] for key, kind in CAMPAIGN_KEYS.items()},
            **({"recommender_arns": by_key} if recommenders else {}),
            "filter_arns": {name: arn for arn, name in resources.filters.items()},
            "event_tracking_id": next(iter(resources.tracking_ids), STAND_IN_TRACKING_ID),
            "items_dataset_arn": next(iter(resources.items_dataset_arns)),
            "endpoint_url": self.endpoint_url,
            "events_endpoint_url": self.endpoint_url,
        }
