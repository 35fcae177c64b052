"""Shared pieces of the runtime tests: campaign ARNs and a backend with a stubbed client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.stub import Stubber

from recs.backends.personalize.backend import PersonalizeBackend
from recs.backends.personalize.client import create_runtime_client
from recs.backends.personalize.config import PersonalizeBackendConfig

ACCOUNT_ARN = "arn:aws:personalize:us-east-1:123456789012"
CAMPAIGNS = {
    "user_personalization_campaign_arn": f"{ACCOUNT_ARN}:campaign/videos-user-personalization",
    "similar_items_campaign_arn": f"{ACCOUNT_ARN}:campaign/videos-sims",
    "popularity_campaign_arn": f"{ACCOUNT_ARN}:campaign/videos-popularity-count",
    "personalized_ranking_campaign_arn": f"{ACCOUNT_ARN}:campaign/videos-personalized-ranking",
}
# Nothing listens on port 1: a request that escaped a stub fails fast and locally.
UNREACHABLE_ENDPOINT = "http://127.0.0.1:1"


def make_config(**overrides: Any) -> PersonalizeBackendConfig:
    """All four campaigns configured, one attempt per call, an unreachable endpoint."""
    values: dict[str, Any] = {
        "region": "us-east-1",
        "endpoint_url": UNREACHABLE_ENDPOINT,
        "max_attempts": 1,
        **CAMPAIGNS,
    }
    values.update(overrides)
    return PersonalizeBackendConfig.model_validate(values)


@contextmanager
def stubbed_backend(**overrides: Any) -> Iterator[tuple[PersonalizeBackend, Stubber]]:
    """A started backend whose runtime client answers only what the test stubs."""
    config = make_config(**overrides)
    client = create_runtime_client(config)
    backend = PersonalizeBackend(config, client=client)
    backend.start()
    with Stubber(client) as stubber:
        yield backend, stubber
        stubber.assert_no_pending_responses()
    backend.close()
