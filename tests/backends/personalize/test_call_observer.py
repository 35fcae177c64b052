"""Every runtime call is reported to the observer the server installs (its metrics)."""

from __future__ import annotations

import pytest

from recs.backends.errors import BackendUnavailableError
from tests.backends.personalize.runtime_helpers import CAMPAIGNS, stubbed_backend

POPULAR = {
    "campaignArn": CAMPAIGNS["popularity_campaign_arn"],
    "userId": "anonymous",
    "numResults": 5,
}


def test_calls_are_reported_with_their_operation_time_and_code() -> None:
    seen: list[tuple[str, float, str]] = []
    with stubbed_backend() as (backend, stubber):
        backend.observe_calls(
            lambda operation, seconds, code: seen.append((operation, seconds, code))
        )
        stubber.add_response(
            "get_recommendations", {"itemList": [{"itemId": "v1"}]}, expected_params=POPULAR
        )
        backend.popular_items(5)
        stubber.add_client_error(
            "get_recommendations", "ThrottlingException", "slow down", 400, expected_params=POPULAR
        )
        with pytest.raises(BackendUnavailableError):
            backend.popular_items(5)
    assert [(operation, code) for operation, _, code in seen] == [
        ("GetRecommendations", "OK"),
        ("GetRecommendations", "ThrottlingException"),
    ]
    assert all(seconds >= 0 for _, seconds, _ in seen)
