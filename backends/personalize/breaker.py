"""A circuit breaker in front of Personalize: during an outage, fail fast instead of waiting.

After `failures` consecutive calls end UNAVAILABLE or DEADLINE_EXCEEDED (throttling, 5xx
after botocore's retries, connection failures, timeouts), the breaker opens: for `cooldown`
seconds every call is answered UNAVAILABLE at once, without a request to AWS, so callers
get an answer they can retry elsewhere instead of waiting out timeouts, and a struggling
service is not hammered. Then one call at a time is let through as a probe (half-open): a
success closes the breaker, a failure opens it for another cool-down. Errors that are the
caller's or ours (INVALID_ARGUMENT, FAILED_PRECONDITION) say nothing about Personalize's
health and leave the breaker as it is.

Thread-safe: backend calls run on the server's thread pool.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from recs.backends.errors import BackendUnavailableError

logger = logging.getLogger(__name__)


class CircuitOpenError(BackendUnavailableError):
    """The breaker refused the call: Personalize is deemed down (no request was sent)."""


class CircuitBreaker:
    """Closed, open for a cool-down after consecutive failures, then probing one call."""

    def __init__(
        self, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._consecutive = 0
        self._open_until: float | None = None  # None: closed
        self._probing = False

    def refusal(self) -> str | None:
        """None if a call may go to Personalize now, else why it is refused."""
        with self._lock:
            if self._open_until is None:
                return None
            now = self._clock()
            if now < self._open_until:
                return (
                    f"Personalize failed {self._consecutive} calls in a row; calls are refused"
                    f" for {self._open_until - now:.0f}s more, then one is tried"
                )
            if self._probing:
                return "Personalize is being probed after an outage; retry shortly"
            self._probing = True
            return None

    def succeeded(self) -> None:
        with self._lock:
            if self._open_until is not None:
                logger.info("Personalize answers again: circuit closed")
            self._consecutive, self._open_until, self._probing = 0, None, False

    def failed(self) -> None:
        """A call ended UNAVAILABLE or DEADLINE_EXCEEDED."""
        with self._lock:
            self._consecutive += 1
            if self._probing or self._consecutive >= self.failures:
                if self._open_until is None or self._probing:
                    logger.warning(
                        "Personalize failed %d calls in a row: circuit open for %gs",
                        self._consecutive,
                        self.cooldown,
                    )
                self._open_until = self._clock() + self.cooldown
                self._probing = False

    def released(self) -> None:
        """A probe ended with an error that says nothing of Personalize's health."""
        with self._lock:
            self._probing = False
