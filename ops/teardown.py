"""`recs personalize teardown`: delete what `provision` created, campaigns and recommenders
first.

Campaigns and recommenders (a domain dataset group's, `provision --domain`) bill every hour
they exist, even idle, so the default removes only them, together, then waits until they are
gone (the trained solution versions stay, and `provision` recreates campaigns in minutes;
recommenders train again when recreated). Campaigns are found through the group's solutions,
recommenders by listing the group's. With
`everything`, solutions, filters, the event tracker, datasets, the dataset group and the
schemas go too, each level waited for, because Personalize refuses to delete a parent whose
children still exist. Every filter and event tracker of the dataset group goes, whatever its
name: the group cannot go otherwise.
"""

from __future__ import annotations

import logging
from typing import Any

from recs.ops import resources as res
from recs.ops.plan import INTERACTIONS, ITEMS, Names, check_base_name
from recs.ops.provisioning import Step
from recs.ops.waiting import Tracked, Waiter

logger = logging.getLogger(__name__)


class Teardown:
    """Deletes the resources named after one base name, children before parents."""

    def __init__(self, personalize: Any, waiter: Waiter, *, dry_run: bool = False) -> None:
        self._personalize = personalize
        self._waiter = waiter
        self._dry_run = dry_run
        self._steps: list[Step] = []

    def run(self, name: str, *, everything: bool = False) -> list[Step]:
        """Delete the campaigns (and with `everything` the rest); returns the deletions."""
        self._steps = []
        names = Names(check_base_name(name))
        group = res.find_by_name(self._personalize, res.DATASET_GROUP, names.dataset_group)
        if group is not None:
            group_arn = group["datasetGroupArn"]
            solutions = list(
                res.list_all(self._personalize, res.SOLUTION, datasetGroupArn=group_arn)
            )
            campaigns = [
                campaign
                for solution in solutions
                for campaign in res.list_all(
                    self._personalize, res.CAMPAIGN, solutionArn=solution["solutionArn"]
                )
            ]
            recommenders = list(
                res.list_all(self._personalize, res.RECOMMENDER, datasetGroupArn=group_arn)
            )
            self._delete_level(res.CAMPAIGN, campaigns, res.RECOMMENDER, recommenders)
            if everything:
                self._delete_level(res.SOLUTION, solutions)
                filters = res.list_all(self._personalize, res.FILTER, datasetGroupArn=group_arn)
                self._delete_level(res.FILTER, list(filters))
                trackers = res.list_all(
                    self._personalize, res.EVENT_TRACKER, datasetGroupArn=group_arn
                )
                self._delete_level(res.EVENT_TRACKER, list(trackers))
                datasets = res.list_all(self._personalize, res.DATASET, datasetGroupArn=group_arn)
                self._delete_level(res.DATASET, list(datasets))
                self._delete_level(res.DATASET_GROUP, [group])
        else:
            logger.info("no dataset group %s: nothing of it to delete", names.dataset_group)
        if everything:
            schemas = [
                found
                for spec in (INTERACTIONS, ITEMS)
                if (found := res.find_by_name(self._personalize, res.SCHEMA, names.schema(spec)))
            ]
            self._delete_level(res.SCHEMA, schemas)
        return self._steps

    def _delete_level(
        self,
        kind: res.ResourceKind,
        summaries: list[dict[str, Any]],
        other_kind: res.ResourceKind | None = None,
        others: list[dict[str, Any]] | None = None,
    ) -> None:
        """Delete every resource of one level (of one kind, or two: campaigns and
        recommenders), then wait until they are all gone."""
        tracked = []
        level = [(kind, summary) for summary in summaries]
        if other_kind is not None:
            level += [(other_kind, summary) for summary in others or []]
        for each_kind, summary in level:
            arn, name = summary[each_kind.arn_field], summary[each_kind.name_field]
            deleting = summary.get("status", "").startswith("DELETE")
            if not deleting and not self._dry_run:
                res.delete(self._personalize, each_kind, arn)
            self._steps.append(
                Step(each_kind.label, name, "deleting" if deleting else "delete", arn)
            )
            logger.info(
                "%s %s: %s", each_kind.label, name, "would delete" if self._dry_run else "delete"
            )
            tracked.append(Tracked(each_kind, name, arn))
        if kind is not res.SCHEMA and not self._dry_run:
            self._waiter.until_deleted(tracked)
