"""The circuit breaker: an outage of Personalize answers UNAVAILABLE at once, then probes.

Stubber refuses any call it was not told about, so "no request to AWS while open" is checked
by stubbing nothing for those calls.
"""

from __future__ import annotations

import pytest

from recs.backends.errors import BackendUnavailableError, InvalidRequestError
from recs.backends.personalize.breaker import CircuitBreaker
from tests.backends.personalize.runtime_helpers import CAMPAIGNS, stubbed_backend

POPULAR = {
    "campaignArn": CAMPAIGNS["popularity_campaign_arn"],
    "userId": "anonymous",
    "numResults": 5,
}
ANSWER = {"itemList": [{"itemId": "v1"}], "recommendationId": "r1"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def outage(stubber, times: int) -> None:
    for _ in range(times):
        stubber.add_client_error(
            "get_recommendations", "ServiceUnavailable", "down", 503, expected_params=POPULAR
        )


def test_consecutive_outages_open_the_breaker_then_one_probe_closes_it() -> None:
    clock = Clock()
    with stubbed_backend() as (backend, stubber):
        backend.breaker = CircuitBreaker(failures=3, cooldown=30, clock=clock)
        outage(stubber, 3)
        for _ in range(3):
            with pytest.raises(BackendUnavailableError):
                backend.popular_items(5)
        for _ in range(5):  # open: refused at once, nothing sent (nothing is stubbed)
            with pytest.raises(BackendUnavailableError, match="refused for 30s more"):
                backend.popular_items(5)
        clock.now += 31
        stubber.add_response("get_recommendations", ANSWER, expected_params=POPULAR)
        assert backend.popular_items(5).item_ids == ["v1"]  # the probe, and closed again
        stubber.add_response("get_recommendations", ANSWER, expected_params=POPULAR)
        assert backend.popular_items(5).item_ids == ["v1"]


def test_a_failed_probe_opens_the_breaker_for_another_cooldown() -> None:
    clock = Clock()
    with stubbed_backend() as (backend, stubber):
        backend.breaker = CircuitBreaker(failures=2, cooldown=10, clock=clock)
        outage(stubber, 3)
        for _ in range(2):
            with pytest.raises(BackendUnavailableError):
                backend.popular_items(5)
        clock.now += 11
        with pytest.raises(BackendUnavailableError, match="still after retries"):  # the probe
            backend.popular_items(5)
        with pytest.raises(BackendUnavailableError, match="refused for 10s more"):
            backend.popular_items(5)


def test_only_one_probe_at_a_time() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, cooldown=5, clock=clock)
    breaker.failed()
    clock.now += 6
    assert breaker.refusal() is None  # the probe
    assert "being probed" in (breaker.refusal() or "")
    breaker.succeeded()
    assert breaker.refusal() is None


def test_callers_mistakes_do_not_count_as_an_outage() -> None:
    with stubbed_backend() as (backend, stubber):
        backend.breaker = CircuitBreaker(failures=2, cooldown=30)
        for _ in range(4):
            stubber.add_client_error(
                "get_recommendations", "InvalidInputException", "bad", 400, expected_params=POPULAR
            )
            with pytest.raises(InvalidRequestError):
                backend.popular_items(5)
        stubber.add_response("get_recommendations", ANSWER, expected_params=POPULAR)
        assert backend.popular_items(5).item_ids == ["v1"]


def test_the_defaults_come_from_the_config_section() -> None:
    with stubbed_backend(breaker_failures=7, breaker_cooldown=12.5) as (backend, _stubber):
        assert (backend.breaker.failures, backend.breaker.cooldown) == (7, 12.5)
