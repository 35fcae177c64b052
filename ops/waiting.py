"""Waiting for Personalize resources, which have no boto3 waiters: poll `describe_*`.

Creating a solution version takes hours, a campaign tens of minutes: each wait shows
one progress line per resource with its current status and the time spent, and gives up
after a configurable timeout. `sleep` and `clock` are injectable so tests run instantly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from recs.ops.resources import (
    ACTIVE,
    ProvisioningError,
    ResourceKind,
    describe,
    is_failed,
    status_of,
)

logger = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 30.0


@dataclass(frozen=True, slots=True)
class Tracked:
    """One resource being waited for."""

    kind: ResourceKind
    name: str
    arn: str

    @property
    def title(self) -> str:
        """How progress lines and errors name it."""
        return f"{self.kind.label} {self.name}"


class Waiter:
    """Polls resources until they are ACTIVE (or gone), with progress and a timeout."""

    def __init__(
        self,
        client: Any,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        timeout: float | None = None,
        console: Console | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._poll_interval = poll_interval
        self._timeout = timeout
        self._console = console
        self._sleep = sleep
        self._clock = clock

    def until_active(self, resources: Sequence[Tracked]) -> None:
        """Return once every resource is ACTIVE; raise on a failure or the timeout."""
        self._wait(resources, "ACTIVE", self._active_status)

    def until_deleted(self, resources: Sequence[Tracked]) -> None:
        """Return once no resource exists any more; raise on a failure or the timeout."""
        self._wait(resources, "deleted", self._deleted_status)

    def _active_status(self, resource: Tracked) -> tuple[bool, str]:
        description = describe(self._client, resource.kind, resource.arn)
        if description is None:
            raise ProvisioningError(f"{resource.title} ({resource.arn}) disappeared")
        status = status_of(description)
        if is_failed(status):
            update = (
                description.get("latestCampaignUpdate")
                or description.get("latestRecommenderUpdate")
                or {}
            )
            reason = description.get("failureReason") or update.get(
                "failureReason", "no reason given"
            )
            raise ProvisioningError(f"{resource.title} is {status}: {reason}")
        return status == ACTIVE, status

    def _deleted_status(self, resource: Tracked) -> tuple[bool, str]:
        description = describe(self._client, resource.kind, resource.arn)
        if description is None:
            return True, "deleted"
        status = status_of(description)
        if is_failed(status):
            reason = description.get("failureReason") or "no reason given"
            raise ProvisioningError(f"{resource.title} is {status}: {reason}")
        return False, status

    def _wait(
        self,
        resources: Sequence[Tracked],
        goal: str,
        check: Callable[[Tracked], tuple[bool, str]],
    ) -> None:
        if not resources:
            return
        deadline = None if self._timeout is None else self._clock() + self._timeout
        columns = (
            SpinnerColumn(finished_text="✓"),
            TextColumn("{task.description}"),
            TextColumn("[bold]{task.fields[status]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self._console) as progress:
            tasks = {
                resource: progress.add_task(resource.title, total=1, status="…")
                for resource in resources
            }
            pending = list(resources)
            while True:
                still_pending = []
                for resource in pending:
                    done, status = check(resource)
                    progress.update(tasks[resource], status=status, completed=int(done))
                    if done:
                        logger.info("%s is %s", resource.title, goal)
                    else:
                        still_pending.append(resource)
                pending = still_pending
                if not pending:
                    return
                if deadline is not None and self._clock() >= deadline:
                    names = ", ".join(resource.title for resource in pending)
                    raise ProvisioningError(
                        f"gave up after {self._timeout:g}s waiting for {names} to be {goal};"
                        " they keep going in AWS: re-run the same command to resume"
                    )
                self._sleep(self._poll_interval)
