"""boto3 clients built in one place, with explicit timeouts, retries and pool size.

boto3 clients are thread-safe, sessions are not: each client gets its own session, is
created once and then shared by every thread of the server's pool.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from backends.personalize.config import PersonalizeBackendConfig

USER_AGENT_EXTRA = "recs-video-recommendations"


def runtime_botocore_config(config: PersonalizeBackendConfig) -> Config:
    """botocore settings of the runtime client, derived from the `[personalize]` section.

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
    session = boto3.session.Session()
    return session.client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        config=botocore_config or Config(user_agent_extra=USER_AGENT_EXTRA),
    )
