"""Plain result types, so callers never handle generated protobuf classes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from recs.v1 import recommendation_service_pb2 as pb

DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_ATTEMPTS = 4

# grpc's own retry machinery, driven by the channel's service config, with exponential
# backoff. Retried: UNAVAILABLE (the server is loading, shutting down or unreachable) and
# RESOURCE_EXHAUSTED (the server refused the call because it already handles its
# max_concurrent_rpcs). Both are safe to repeat: the server did no work for the call.
# Everything else is final.
RETRY_SERVICE_CONFIG_TEMPLATE: dict[str, Any] = {
    "methodConfig": [
        {
            "name": [{"service": "recs.v1.RecommendationService"}],
            "retryPolicy": {
                "maxAttempts": DEFAULT_MAX_ATTEMPTS,
                "initialBackoff": "0.1s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"],
            },
        }
    ]
}


def open_channel(channels: Any, target: str, max_attempts: int, tls_ca: str | Path | None) -> Any:
    """A channel to `target` from `channels` (`grpc` or `grpc.aio`, which open channels alike):
    plaintext, or TLS trusting the CA certificate in `tls_ca` (a PEM file); with gRPC's retry
    policy (`channel_options`)."""
    options = channel_options(max_attempts)
    if tls_ca is None:
        return channels.insecure_channel(target, options=options)
    credentials = grpc.ssl_channel_credentials(root_certificates=Path(tls_ca).read_bytes())
    return channels.secure_channel(target, credentials, options=options)


def auth_metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    """The `authorization: Bearer <token>` metadata sent with every call, or None."""
    return (("authorization", f"Bearer {token}"),) if token else None


def channel_options(max_attempts: int) -> list[tuple[str, Any]]:
    """Channel options enabling grpc's built-in retry of UNAVAILABLE and RESOURCE_EXHAUSTED."""
    service_config = json.loads(json.dumps(RETRY_SERVICE_CONFIG_TEMPLATE))
    policy = service_config["methodConfig"][0]["retryPolicy"]
    policy["maxAttempts"] = max(2, min(max_attempts, 5))
    options: list[tuple[str, Any]] = [("grpc.service_config", json.dumps(service_config))]
    options.append(("grpc.enable_retries", 1 if max_attempts > 1 else 0))
    return options


@dataclass(frozen=True, slots=True)
class Item:
    """One recommended video."""

    item_id: str
    score: float
    title: str = ""
    url: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Result:
    """An ordered list of videos, best first, and the id of this answer."""

    items: list[Item]
    recommendation_id: str = ""

    @property
    def item_ids(self) -> list[str]:
        """The ids in order."""
        return [item.item_id for item in self.items]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Which backend answers and facts about its model."""

    backend: str
    details: dict[str, str]


def result_from_proto(response: Any) -> Result:
    """Any of the four recommendation responses as a Result."""
    return Result(
        items=[Item(i.item_id, i.score, i.title, i.url, dict(i.metadata)) for i in response.items],
        recommendation_id=response.recommendation_id,
    )


def model_info_from_proto(response: pb.GetModelInfoResponse) -> ModelInfo:
    """The model-info response as a ModelInfo."""
    return ModelInfo(response.backend, dict(response.details))
