"""boto3 clients built in one place, with explicit timeouts, retries and pool size.

boto3 clients are thread-safe, sessions are not: each client gets its own session, is
created once and then shared by every thread of the server's pool. The sessions share
one botocore data loader, so service models and endpoint rules are parsed once per
process rather than once per client (about half a second each).
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config

from recs.backends.personalize.config import PersonalizeBackendConfig

USER_AGENT_EXTRA = "recs-video-recommendations"


def runtime_botocore_config(config: PersonalizeBackendConfig) -> Config:
    """botocore settings of the runtime and events clients, derived from `[personalize]`.

    The HTTP pool holds as many connections as calls may be in flight, so a call that
    got a concurrency slot never waits for a connection as well.
    """
    return Config(
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        retries={"mode": config.retry_mode, "total_max_attempts": config.max_attempts},
        max_pool_connections=config.max_concurrency,
        user_agent_extra=USER_AGENT_EXTRA,
    )


def create_runtime_client(config: PersonalizeBackendConfig) -> Any:
    """The `personalize-runtime` client the backend shares between threads."""
    return create_client(
        "personalize-runtime",
        region=config.region,
        endpoint_url=config.endpoint(),
        botocore_config=runtime_botocore_config(config),
    )


def create_events_client(config: PersonalizeBackendConfig) -> Any:
    """The `personalize-events` client (PutEvents, PutItems): same timeouts, retries and
    pool as the runtime client, its own endpoint (`events_endpoint_url`, else
    `AWS_ENDPOINT_URL_PERSONALIZE_EVENTS`, else AWS's)."""
    return create_client(
        "personalize-events",
        region=config.region,
        endpoint_url=config.events_endpoint(),
        botocore_config=runtime_botocore_config(config),
    )


def create_client(
    service: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    botocore_config: Config | None = None,
) -> Any:
    """A boto3 client for `service`; None values fall back to the standard AWS chain.

    With `endpoint_url` None, botocore still honours `AWS_ENDPOINT_URL_<SERVICE>`.
    """
    core = botocore.session.get_session()
    core.register_component("data_loader", _shared_data_loader())
    session = boto3.session.Session(botocore_session=core)
    return session.client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        config=botocore_config or Config(user_agent_extra=USER_AGENT_EXTRA),
    )


@functools.cache
def _shared_data_loader() -> botocore.loaders.Loader:
    """The process-wide loader of botocore's bundled JSON (read-only after loading)."""
    return botocore.loaders.create_loader()
