"""The Personalize control-plane resources we manage, and how to find one by name.

Each `ResourceKind` records the method and field names of one resource type in the
`personalize` service model, so finding, describing and deleting are written once.
Names are unique per account and region (schemas) or per parent (everything else), which
is what makes provisioning idempotent: look the name up, reuse what exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

ACTIVE = "ACTIVE"
IN_PROGRESS_STATUSES = frozenset({"CREATE PENDING", "CREATE IN_PROGRESS"})


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """Method and field names of one resource type of the `personalize` client."""

    label: str
    list_method: str
    list_key: str
    arn_field: str
    describe_method: str
    describe_key: str
    delete_method: str | None = None
    name_field: str = "name"


DATASET_GROUP = ResourceKind(
    "dataset group",
    "list_dataset_groups",
    "datasetGroups",
    "datasetGroupArn",
    "describe_dataset_group",
    "datasetGroup",
    "delete_dataset_group",
)
SCHEMA = ResourceKind(
    "schema", "list_schemas", "schemas", "schemaArn", "describe_schema", "schema", "delete_schema"
)
DATASET = ResourceKind(
    "dataset",
    "list_datasets",
    "datasets",
    "datasetArn",
    "describe_dataset",
    "dataset",
    "delete_dataset",
)
IMPORT_JOB = ResourceKind(
    "import job",
    "list_dataset_import_jobs",
    "datasetImportJobs",
    "datasetImportJobArn",
    "describe_dataset_import_job",
    "datasetImportJob",
    name_field="jobName",
)
SOLUTION = ResourceKind(
    "solution",
    "list_solutions",
    "solutions",
    "solutionArn",
    "describe_solution",
    "solution",
    "delete_solution",
)
SOLUTION_VERSION = ResourceKind(
    "solution version",
    "list_solution_versions",
    "solutionVersions",
    "solutionVersionArn",
    "describe_solution_version",
    "solutionVersion",
)
CAMPAIGN = ResourceKind(
    "campaign",
    "list_campaigns",
    "campaigns",
    "campaignArn",
    "describe_campaign",
    "campaign",
    "delete_campaign",
)
# A domain dataset group's use case deployment (GetRecommendations' recommenderArn).
RECOMMENDER = ResourceKind(
    "recommender",
    "list_recommenders",
    "recommenders",
    "recommenderArn",
    "describe_recommender",
    "recommender",
    "delete_recommender",
)
# ListFilters answers under "Filters", capitalised (unlike every other list_* call).
FILTER = ResourceKind(
    "filter", "list_filters", "Filters", "filterArn", "describe_filter", "filter", "delete_filter"
)
# One per dataset group; its description (not its summary) holds the trackingId.
EVENT_TRACKER = ResourceKind(
    "event tracker",
    "list_event_trackers",
    "eventTrackers",
    "eventTrackerArn",
    "describe_event_tracker",
    "eventTracker",
    "delete_event_tracker",
)


def list_all(client: Any, kind: ResourceKind, **parent: str) -> Iterator[dict[str, Any]]:
    """Every summary `kind.list_method` returns under `parent`, across all pages."""
    paginator = client.get_paginator(kind.list_method)
    for page in paginator.paginate(**parent):
        yield from page.get(kind.list_key, [])


def find_by_name(
    client: Any, kind: ResourceKind, name: str, **parent: str
) -> dict[str, Any] | None:
    """The summary of the `kind` named `name` under `parent`, or None."""
    for summary in list_all(client, kind, **parent):
        if summary.get(kind.name_field) == name:
            return summary
    return None


def find_or_create(
    client: Any,
    kind: ResourceKind,
    name: str,
    create: Callable[[], Mapping[str, Any]],
    *,
    dry_run: bool,
    **parent: str | None,
) -> tuple[str | None, bool]:
    """The ARN of the `kind` named `name` under `parent`, and whether it is new.

    An existing one is returned as it is: whatever else must match is the caller's to
    check. Otherwise `create` makes it and returns the create call's response; in a dry run
    it is not called and the ARN is None. A parent ARN of None (a parent a dry run has not
    created) means nothing can exist under it yet, so nothing is listed.
    """
    if None not in parent.values():
        found = find_by_name(client, kind, name, **parent)
        if found:
            return found[kind.arn_field], False
    if dry_run:
        return None, True
    return create()[kind.arn_field], True


def describe(client: Any, kind: ResourceKind, arn: str) -> dict[str, Any] | None:
    """The full description of one resource, or None once it no longer exists."""
    try:
        response = getattr(client, kind.describe_method)(**{kind.arn_field: arn})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    return response[kind.describe_key]


def delete(client: Any, kind: ResourceKind, arn: str) -> None:
    """Ask Personalize to delete one resource (deletion then runs in the background)."""
    if kind.delete_method is None:
        raise ValueError(f"a {kind.label} cannot be deleted")
    getattr(client, kind.delete_method)(**{kind.arn_field: arn})


class ProvisioningError(Exception):
    """Control-plane work cannot go on; the message says which resource and what to do."""


def status_of(description: dict[str, Any]) -> str:
    """A resource's effective status: an update in flight (a campaign's or a recommender's)
    counts over the ACTIVE base."""
    status = description.get("status", "")
    update = (
        description.get("latestCampaignUpdate") or description.get("latestRecommenderUpdate") or {}
    )
    if status == ACTIVE and update.get("status") not in (None, ACTIVE):
        return update["status"]
    return status


def is_failed(status: str) -> bool:
    """Whether a status is terminal and bad (CREATE FAILED, UPDATE FAILED, CREATE STOPPED)."""
    return "FAILED" in status or status.endswith("STOPPED")
