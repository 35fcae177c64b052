"""`recs personalize provision`: from a prepared dataset directory to ACTIVE campaigns (one
per recipe of `plan.RECIPES`) and an event tracker.

The sequence (each step finds its resource by name first and reuses it, so a re-run
resumes where a previous run stopped and changes nothing that is already right):

1. upload the CSV files to S3 (skipped when the same content is already there);
2. dataset group -> wait ACTIVE;
3. schemas (from `*.schema.json`), datasets -> wait ACTIVE;
4. one filter per `[filters]` expression (`NAME-<filter>`) -> wait ACTIVE;
5. the event tracker `NAME-events` -> wait ACTIVE (its trackingId is PutEvents');
6. one import job per file content -> wait ACTIVE (new data gets a new job);
7. one solution per recipe -> wait ACTIVE (Trending-Now's with the trend discovery
   frequency of `trend_interval`);
8. solution versions (trained again only when data was imported or none is usable)
   -> wait ACTIVE;
9. campaigns (created, or updated to the chosen solution version and exploration)
   -> wait ACTIVE.

A dataset group holds one event tracker: one of another name (made by hand) is reused, and
its step says so. The result carries its trackingId and the Items dataset's ARN, the keys
PutEvents and PutItems need.

Every filter expression is parsed before the first call, so a bad one stops the run naming
the filter and the position. A filter cannot be changed: one that exists with another
expression is reused and its step says so (delete it with `teardown --all`, or rename it).

The Trending-Now solution is created with `trend_discovery_frequency` from the request's
`trend_interval` ("30m", "1h", "3h", "1d": the local engine's spelling, mapped by
`plan.trend_discovery_frequency`), checked before the first call. A solution cannot be
changed: one that exists with another frequency is reused and its step says so, as for
filters.

The User-Personalization campaign is created with the request's item exploration,
`campaignConfig={"itemExplorationConfig": {"explorationWeight": "0.3",
"explorationItemAgeCutOff": "30"}}` (`plan.item_exploration_config`, checked before the first
call); the other campaigns get none (Personalize refuses it for their recipes). A campaign
can be updated: one that exists with another exploration (or none) is updated to it, its step
saying what changes, and waited for like any update.

With `domain` (`VIDEO_ON_DEMAND`, `recs personalize provision --domain video-on-demand`) the
dataset group is a domain dataset group and the schemas are the domain's (CreateDatasetGroup's
and CreateSchema's `domain`); filters, the event tracker and import jobs are as above, then
instead of steps 7-9 one recommender per use case of `plan.VOD_USE_CASES` (CreateRecommender
with the use case's recipe ARN) -> wait ACTIVE. The Top-picks one gets the request's item
exploration as `recommenderConfig={"itemExplorationConfig": {...}}`, and an existing one
exploring otherwise is updated (UpdateRecommender), like the campaign. A recommender that
exists under our name with another recipe is an error naming both. The result's
`recommender_arns` are `[personalize.recommender_arns]`. A dataset not prepared for the domain
(`plan.check_prepared_for_domain`) is refused before the first call, and so is a dataset group
of our name that exists with another domain (a domain cannot change).

With `dry_run` only read calls are made (list/describe, S3 head) and the steps say what
would happen. Clients are injected, so the exact call sequence is testable with Stubber.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from recs.ops import resources as res
from recs.ops.plan import (
    DEFAULT_EXPLORATION_AGE_CUTOFF,
    DEFAULT_EXPLORATION_WEIGHT,
    DEFAULT_TREND_INTERVAL,
    EXPLORATION_AGE_CUTOFF_KEY,
    EXPLORATION_WEIGHT_KEY,
    ITEM_EXPLORATION_CONFIG_KEY,
    ITEMS,
    RECIPES,
    RECOMMENDER_ARNS_KEY,
    TREND_DISCOVERY_FREQUENCY_KEY,
    TRENDING_NOW,
    USE_CASES,
    USER_PERSONALIZATION,
    DatasetSpec,
    FilterSpec,
    Names,
    Recipe,
    UseCase,
    check_base_name,
    check_domain,
    check_prepared_for_domain,
    dataset_specs,
    filter_specs,
    item_exploration_config,
    trend_discovery_frequency,
)
from recs.ops.resources import ProvisioningError
from recs.ops.s3 import S3Location, Upload, upload_if_changed
from recs.ops.waiting import Tracked, Waiter
from recs.pipeline.filters import FilterError, parse_filter

logger = logging.getLogger(__name__)

MAX_SCHEMA_LENGTH = 20000  # CreateSchema's limit on the schema text
IMPORT_MODE = "FULL"


@dataclass(frozen=True, slots=True)
class ProvisionRequest:
    """Everything `provision` needs to know, as given on the command line.

    `filters` maps filter name -> expression: the serve config's `[filters]` and its default
    filter (`serve_config.filters_to_provision`). `trend_interval` is the Trending-Now
    solution's trend discovery frequency in the local engine's spelling ("30m", "1h", "3h",
    "1d"; `serve_config.trend_interval_to_provision` reads `[local] trend_interval`).
    `exploration_weight` (0 to 1) and `exploration_item_age_cutoff` (days, at least 1) are
    the User-Personalization campaign's item exploration (`serve_config.exploration_to_provision`
    reads `[local] exploration_weight` and `exploration_item_age_cutoff`), or with `domain`
    the Top-picks recommender's. `domain` is None (a custom dataset group: solutions and
    campaigns) or "VIDEO_ON_DEMAND" (a domain dataset group: recommenders); `event_type`,
    `min_provisioned_tps` and `trend_interval` are the solutions' and campaigns', so unused
    with a domain.
    """

    data_dir: Path
    s3_prefix: S3Location
    name: str
    role_arn: str
    event_type: str | None = None
    min_provisioned_tps: int = 1
    filters: Mapping[str, str] = field(default_factory=dict)
    trend_interval: str = DEFAULT_TREND_INTERVAL
    exploration_weight: float = DEFAULT_EXPLORATION_WEIGHT
    exploration_item_age_cutoff: float = DEFAULT_EXPLORATION_AGE_CUTOFF
    domain: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One thing provisioning did, or would do in a dry run."""

    kind: str
    name: str
    action: str  # create, reuse, update, upload, unchanged
    arn: str = ""  # ARN or S3 URI; empty while it does not exist (dry run)
    note: str = ""  # what the operator must know about it (a filter that differs)
    change: str = ""  # what an update changes (a campaign's solution version, exploration)


@dataclass
class ProvisionResult:
    """The steps taken and, unless dry run, the ARNs: campaigns by config key (or with a
    domain, recommenders by their key of `[personalize.recommender_arns]`), filters by filter
    name (the keys of `[personalize.filter_arns]`), the event tracker's trackingId and the
    Items dataset (None without an items.csv)."""

    steps: list[Step] = field(default_factory=list)
    campaign_arns: dict[str, str] = field(default_factory=dict)
    recommender_arns: dict[str, str] = field(default_factory=dict)
    filter_arns: dict[str, str] = field(default_factory=dict)
    event_tracking_id: str | None = None
    items_dataset_arn: str | None = None

    def serve_config_keys(self) -> dict[str, Any]:
        """What provisioning made, as `[personalize]` keys (`serve_config.write_serve_config`)."""
        keys: dict[str, Any] = dict(self.campaign_arns)
        if self.recommender_arns:
            keys[RECOMMENDER_ARNS_KEY] = dict(self.recommender_arns)
        if self.filter_arns:
            keys["filter_arns"] = dict(self.filter_arns)
        if self.event_tracking_id is not None:
            keys["event_tracking_id"] = self.event_tracking_id
        if self.items_dataset_arn is not None:
            keys["items_dataset_arn"] = self.items_dataset_arn
        return keys

    def count(self, action: str) -> int:
        """How many steps had `action`."""
        return sum(step.action == action for step in self.steps)


def read_schema(path: Path, dataset: DatasetSpec) -> str:
    """The schema file as CreateSchema's compact JSON text, after basic checks."""
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ProvisioningError(
            f"{path}: line {exc.lineno} column {exc.colno}: not JSON ({exc.msg})"
        ) from exc
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ProvisioningError(f"{path}: an Avro schema of type 'record' is expected")
    if schema.get("name") != dataset.dataset_type:
        raise ProvisioningError(
            f"{path}: record name is {schema.get('name')!r}; Personalize wants"
            f" {dataset.dataset_type!r} for this dataset"
        )
    text = json.dumps(schema, separators=(",", ":"))
    if len(text) > MAX_SCHEMA_LENGTH:
        raise ProvisioningError(f"{path}: {len(text)} characters, over {MAX_SCHEMA_LENGTH}")
    return text


def ensure_schema(
    personalize: Any,
    name: str,
    schema_text: str,
    *,
    dry_run: bool = False,
    domain: str | None = None,
) -> tuple[str | None, str]:
    """(ARN, action) of the schema `name` holding `schema_text`: reused, or created (for
    `domain`, a domain dataset group's, when given).

    Schemas cannot be changed, so one of that name with other content, or of another
    domain, is an error.
    """
    params = {"name": name, "schema": schema_text}
    if domain is not None:
        params["domain"] = domain
    arn, created = res.find_or_create(
        personalize,
        res.SCHEMA,
        name,
        lambda: personalize.create_schema(**params),
        dry_run=dry_run,
    )
    if created:
        return arn, "create"
    existing = res.describe(personalize, res.SCHEMA, arn) or {}
    if existing.get("domain") != domain:
        raise ProvisioningError(
            f"schema {name} already exists for {_domain_label(existing.get('domain'))}, not"
            f" {_domain_label(domain)}, and schemas cannot change: run `recs personalize"
            " teardown --all` or choose another --name"
        )
    if json.loads(existing.get("schema") or "{}") != json.loads(schema_text):
        raise ProvisioningError(
            f"schema {name} already exists with other fields and schemas cannot"
            " change: run `recs personalize teardown --all` or choose another --name"
        )
    return arn, "reuse"


class Provisioner:
    """Runs the provisioning sequence against injected `personalize` and `s3` clients."""

    def __init__(
        self,
        personalize: Any,
        s3: Any,
        waiter: Waiter,
        *,
        dry_run: bool = False,
        console: Console | None = None,
    ) -> None:
        self._personalize = personalize
        self._s3 = s3
        self._waiter = waiter
        self._dry_run = dry_run
        self._console = console
        self._result = ProvisionResult()

    def run(self, request: ProvisionRequest) -> ProvisionResult:
        """Provision everything `request` describes; returns what was done."""
        self._result = ProvisionResult()
        names = Names(check_base_name(request.name))
        domain = check_domain(request.domain)
        datasets = dataset_specs(request.data_dir)
        check_prepared_for_domain(request.data_dir, domain)  # before any call
        filters = filter_specs(names, request.filters)
        trend_discovery_frequency(request.trend_interval)  # a bad one stops before any call
        exploration = item_exploration_config(
            request.exploration_weight, request.exploration_item_age_cutoff
        )  # likewise
        schemas = {
            spec: read_schema(request.data_dir / spec.schema_file, spec) for spec in datasets
        }
        uploads = {spec: self._upload(request, spec) for spec in datasets}

        group_arn = self._dataset_group(names, domain)
        self._wait_active([(res.DATASET_GROUP, names.dataset_group, group_arn)])
        schema_arns = {
            spec: self._schema(names.schema(spec), schemas[spec], domain) for spec in datasets
        }
        dataset_arns = {
            spec: self._dataset(names.dataset(spec), spec, schema_arns[spec], group_arn)
            for spec in datasets
        }
        self._wait_active([(res.DATASET, names.dataset(s), a) for s, a in dataset_arns.items()])
        filter_arns = {spec: self._filter(spec, group_arn) for spec in filters}
        self._wait_active([(res.FILTER, s.aws_name, arn) for s, arn in filter_arns.items()])
        tracker_name, tracker_arn, tracking_id = self._event_tracker(names, group_arn)
        self._wait_active([(res.EVENT_TRACKER, tracker_name, tracker_arn)])
        job_names = {spec: names.import_job(spec, uploads[spec].sha256) for spec in datasets}
        jobs = {
            spec: self._import_job(
                job_names[spec], dataset_arns[spec], uploads[spec], request.role_arn
            )
            for spec in datasets
        }
        self._wait_active(
            [(res.IMPORT_JOB, job_names[spec], arn) for spec, (arn, _new) in jobs.items()]
        )
        retrain = any(new for _arn, new in jobs.values())

        if domain is not None:
            self._result.recommender_arns = self._recommenders(
                names, USE_CASES[domain], group_arn, exploration
            )
        else:
            self._result.campaign_arns = self._campaigns(
                names, group_arn, request, exploration, retrain
            )
        self._result.filter_arns = {
            spec.name: arn for spec, arn in filter_arns.items() if arn is not None
        }
        self._result.event_tracking_id = tracking_id
        self._result.items_dataset_arn = dataset_arns.get(ITEMS)
        return self._result

    def _campaigns(
        self,
        names: Names,
        group_arn: str | None,
        request: ProvisionRequest,
        exploration: Mapping[str, str],
        retrain: bool,
    ) -> dict[str, str]:
        """Steps 7-9 of a custom dataset group: solutions, versions and campaigns, ACTIVE;
        returns the campaign ARNs by config key."""
        solutions = {
            recipe: self._solution(names.solution(recipe), recipe, group_arn, request)
            for recipe in RECIPES
        }
        self._wait_active(
            [(res.SOLUTION, names.solution(r), arn) for r, (arn, _new) in solutions.items()]
        )
        versions = {
            recipe: self._solution_version(names.solution(recipe), arn, retrain or new)
            for recipe, (arn, new) in solutions.items()
        }
        self._wait_active(
            [(res.SOLUTION_VERSION, names.solution(r), arn) for r, arn in versions.items()]
        )
        campaigns = {
            recipe: self._campaign(
                names.campaign(recipe),
                solutions[recipe][0],
                versions[recipe],
                request.min_provisioned_tps,
                exploration if recipe == USER_PERSONALIZATION else None,
            )
            for recipe in RECIPES
        }
        self._wait_active([(res.CAMPAIGN, names.campaign(r), a) for r, a in campaigns.items()])
        return {recipe.campaign_key: arn for recipe, arn in campaigns.items() if arn is not None}

    def _recommenders(
        self,
        names: Names,
        use_cases: tuple[UseCase, ...],
        group_arn: str | None,
        exploration: Mapping[str, str],
    ) -> dict[str, str]:
        """A domain dataset group's recommenders, one per use case, ACTIVE; returns their
        ARNs by `[personalize.recommender_arns]` key."""
        recommenders = {
            use_case: self._recommender(
                names.recommender(use_case),
                use_case,
                group_arn,
                exploration if use_case.explores else None,
            )
            for use_case in use_cases
        }
        self._wait_active(
            [(res.RECOMMENDER, names.recommender(u), a) for u, a in recommenders.items()]
        )
        return {
            use_case.config_key: arn for use_case, arn in recommenders.items() if arn is not None
        }

    def _record(
        self,
        kind: str,
        name: str,
        action: str,
        arn: str | None,
        note: str = "",
        change: str = "",
    ) -> None:
        step = Step(kind, name, action, arn or "", note, change)
        self._result.steps.append(step)
        verb = f"would {action}" if self._dry_run and action in ("create", "update") else action
        logger.info("%s %s: %s %s%s", kind, name, verb, arn or "", f" ({change})" if change else "")
        if note:
            logger.warning("%s %s: %s", kind, name, note)

    def _find_or_create(
        self,
        kind: res.ResourceKind,
        name: str,
        create: Callable[[], Mapping[str, Any]],
        **parent: str | None,
    ) -> tuple[str | None, bool]:
        """`res.find_or_create` with this run's client and dry-run flag, recorded as a step."""
        arn, created = res.find_or_create(
            self._personalize, kind, name, create, dry_run=self._dry_run, **parent
        )
        self._record(kind.label, name, "create" if created else "reuse", arn)
        return arn, created

    def _wait_active(self, items: list[tuple[res.ResourceKind, str, str | None]]) -> None:
        if self._dry_run:
            return
        self._waiter.until_active([Tracked(kind, name, arn) for kind, name, arn in items if arn])

    def _upload(self, request: ProvisionRequest, spec: DatasetSpec) -> Upload:
        path = request.data_dir / spec.csv_file
        location = request.s3_prefix.child(spec.csv_file)
        columns = (
            TextColumn(f"upload {spec.csv_file}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
        )
        with Progress(*columns, console=self._console, disable=self._dry_run) as progress:
            task = progress.add_task("upload", total=path.stat().st_size)
            upload = upload_if_changed(
                self._s3,
                path,
                location,
                dry_run=self._dry_run,
                on_bytes=lambda sent: progress.advance(task, sent),
            )
        self._record(
            "S3 object", spec.csv_file, "upload" if upload.changed else "unchanged", location.uri
        )
        return upload

    def _dataset_group(self, names: Names, domain: str | None = None) -> str | None:
        """The dataset group: reused, or created (a domain dataset group with `domain`).

        With `domain`, one of our name that exists with another domain (or none) is an
        error: a dataset group's domain cannot change.
        """
        name = names.dataset_group
        if domain is None:
            arn, _created = self._find_or_create(
                res.DATASET_GROUP, name, lambda: self._personalize.create_dataset_group(name=name)
            )
            return arn
        found = res.find_by_name(self._personalize, res.DATASET_GROUP, name)
        if found is not None:
            if found.get("domain") != domain:
                raise ProvisioningError(
                    f"dataset group {name} already exists as"
                    f" {_domain_label(found.get('domain'))}, not {_domain_label(domain)}, and"
                    " its domain cannot change: run `recs personalize teardown --all` or"
                    " choose another --name"
                )
            self._record(res.DATASET_GROUP.label, name, "reuse", found["datasetGroupArn"])
            return found["datasetGroupArn"]
        arn = None
        if not self._dry_run:
            arn = self._personalize.create_dataset_group(name=name, domain=domain)[
                "datasetGroupArn"
            ]
        self._record(res.DATASET_GROUP.label, name, "create", arn)
        return arn

    def _schema(self, name: str, schema_text: str, domain: str | None = None) -> str | None:
        arn, action = ensure_schema(
            self._personalize, name, schema_text, dry_run=self._dry_run, domain=domain
        )
        self._record(res.SCHEMA.label, name, action, arn)
        return arn

    def _dataset(
        self, name: str, spec: DatasetSpec, schema_arn: str | None, group_arn: str | None
    ) -> str | None:
        arn, _created = self._find_or_create(
            res.DATASET,
            name,
            lambda: self._personalize.create_dataset(
                name=name,
                schemaArn=schema_arn,
                datasetGroupArn=group_arn,
                datasetType=spec.dataset_type,
            ),
            datasetGroupArn=group_arn,
        )
        return arn

    def _filter(self, spec: FilterSpec, group_arn: str | None) -> str | None:
        """The filter named `spec.aws_name` in the group: created, or reused as it is.

        Filters cannot be updated, so one whose expression differs from `spec`'s is reused
        and the step's note says what to do.
        """
        arn, created = res.find_or_create(
            self._personalize,
            res.FILTER,
            spec.aws_name,
            lambda: self._personalize.create_filter(
                name=spec.aws_name, datasetGroupArn=group_arn, filterExpression=spec.expression
            ),
            dry_run=self._dry_run,
            datasetGroupArn=group_arn,
        )
        note = "" if created else self._filter_difference(spec, arn)
        self._record(res.FILTER.label, spec.aws_name, "create" if created else "reuse", arn, note)
        return arn

    def _filter_difference(self, spec: FilterSpec, arn: str) -> str:
        """Empty when the existing filter `arn` holds `spec`'s expression (spacing aside),
        else what differs and what to do about it."""
        existing = (res.describe(self._personalize, res.FILTER, arn) or {}).get(
            "filterExpression", ""
        )
        if _same_filter(spec, existing):
            return ""
        return (
            f"exists with another expression ({existing!r}, [filters] says"
            f" {spec.expression!r}) and a filter cannot be updated: delete it"
            f" (recs personalize teardown --all) or rename {spec.name!r} in [filters];"
            " until then Personalize applies the old expression"
        )

    def _event_tracker(
        self, names: Names, group_arn: str | None
    ) -> tuple[str, str | None, str | None]:
        """(name, ARN, trackingId) of the dataset group's event tracker.

        Ours (`NAME-events`) is reused; so is one of another name, since a group holds only
        one (CreateEventTracker refuses a second); otherwise it is created. One being deleted
        cannot be used, nor can another be created until it is gone: an error says so. In a
        dry run a tracker to create has no ARN and no trackingId.
        """
        name = names.event_tracker
        trackers = (
            []
            if group_arn is None
            else list(res.list_all(self._personalize, res.EVENT_TRACKER, datasetGroupArn=group_arn))
        )
        found = next((t for t in trackers if t.get("name") == name), None) or next(
            iter(trackers), None
        )
        if found is None:
            arn = tracking_id = None
            if not self._dry_run:
                created = self._personalize.create_event_tracker(
                    name=name, datasetGroupArn=group_arn
                )
                arn, tracking_id = created["eventTrackerArn"], created["trackingId"]
            self._record(res.EVENT_TRACKER.label, name, "create", arn)
            return name, arn, tracking_id
        arn, status = found["eventTrackerArn"], found.get("status", "")
        if status.startswith("DELETE"):
            raise ProvisioningError(
                f"event tracker {found['name']} is {status}: a dataset group holds one tracker,"
                " so run provision again once it is gone"
            )
        note = (
            ""
            if found["name"] == name
            else f"is the dataset group's event tracker (a group holds one), not {name}: reused"
        )
        description = res.describe(self._personalize, res.EVENT_TRACKER, arn) or {}
        self._record(res.EVENT_TRACKER.label, found["name"], "reuse", arn, note)
        return found["name"], arn, description.get("trackingId")

    def _import_job(
        self, name: str, dataset_arn: str | None, upload: Upload, role_arn: str
    ) -> tuple[str | None, bool]:
        """The import job for this file content; True when it is new (so: retrain)."""
        return self._find_or_create(
            res.IMPORT_JOB,
            name,
            lambda: self._personalize.create_dataset_import_job(
                jobName=name,
                datasetArn=dataset_arn,
                dataSource={"dataLocation": upload.location.uri},
                roleArn=role_arn,
                importMode=IMPORT_MODE,
            ),
            datasetArn=dataset_arn,
        )

    def _solution(
        self, name: str, recipe: Recipe, group_arn: str | None, request: ProvisionRequest
    ) -> tuple[str | None, bool]:
        """The solution for `recipe`; True when it is new (so: needs a first version).

        Trending-Now's carries the trend discovery frequency; an existing one with another
        is reused as it is (a solution cannot be updated) and its step says so.
        """
        params: dict[str, Any] = {
            "name": name,
            "datasetGroupArn": group_arn,
            "recipeArn": recipe.recipe_arn,
            # Off: automatic training would start a billed version every 7 days.
            "performAutoTraining": False,
        }
        if request.event_type:
            params["eventType"] = request.event_type
        frequency = None
        if recipe == TRENDING_NOW:
            frequency = trend_discovery_frequency(request.trend_interval)
            params["solutionConfig"] = {
                "featureTransformationParameters": {TREND_DISCOVERY_FREQUENCY_KEY: frequency}
            }
            logger.info("solution %s: trend discovery frequency %s", name, frequency)
        arn, created = res.find_or_create(
            self._personalize,
            res.SOLUTION,
            name,
            lambda: self._personalize.create_solution(**params),
            dry_run=self._dry_run,
            datasetGroupArn=group_arn,
        )
        note = ""
        if frequency is not None and not created:
            note = self._frequency_difference(arn, frequency, request.trend_interval)
        self._record(res.SOLUTION.label, name, "create" if created else "reuse", arn, note)
        return arn, created

    def _frequency_difference(self, arn: str, wanted: str, interval: str) -> str:
        """Empty when the existing Trending-Now solution `arn` discovers trends every
        `wanted`, else what differs and what to do about it."""
        description = res.describe(self._personalize, res.SOLUTION, arn) or {}
        parameters = (description.get("solutionConfig") or {}).get(
            "featureTransformationParameters"
        ) or {}
        existing = parameters.get(TREND_DISCOVERY_FREQUENCY_KEY)
        if existing == wanted:
            return ""
        has = repr(existing) if existing else "Personalize's default"
        return (
            f"exists with trend discovery frequency {has} (the trend interval {interval!r}"
            f" asks {wanted!r}) and a solution cannot be updated: delete it and its campaign"
            " (recs personalize teardown --all) to recreate it; until then Personalize keeps"
            " the old frequency"
        )

    def _solution_version(self, name: str, solution_arn: str | None, train: bool) -> str | None:
        """The newest usable version (ACTIVE or training), or a new one when `train`.

        Versions have no name to find them by, so `res.find_or_create` does not fit: the
        one reused is chosen by status and age, and none is when the data changed.
        """
        if solution_arn is not None and not train:
            usable = [
                version
                for version in res.list_all(
                    self._personalize, res.SOLUTION_VERSION, solutionArn=solution_arn
                )
                if version.get("status") == res.ACTIVE
                or version.get("status") in res.IN_PROGRESS_STATUSES
            ]
            if usable:
                newest = max(usable, key=lambda version: version["creationDateTime"])
                self._record(
                    res.SOLUTION_VERSION.label, name, "reuse", newest["solutionVersionArn"]
                )
                return newest["solutionVersionArn"]
        arn = None
        if not self._dry_run:
            arn = self._personalize.create_solution_version(
                solutionArn=solution_arn, trainingMode="FULL"
            )["solutionVersionArn"]
        self._record(res.SOLUTION_VERSION.label, name, "create", arn)
        return arn

    def _campaign(
        self,
        name: str,
        solution_arn: str | None,
        version_arn: str | None,
        min_tps: int,
        exploration: Mapping[str, str] | None = None,
    ) -> str | None:
        """The campaign serving `version_arn`: created, or an existing one updated to it.

        `exploration` is the User-Personalization campaign's `itemExplorationConfig` (None
        for the other recipes, which take none).
        """
        params: dict[str, Any] = {
            "name": name,
            "solutionVersionArn": version_arn,
            "minProvisionedTPS": min_tps,
        }
        if exploration is not None:
            params["campaignConfig"] = {ITEM_EXPLORATION_CONFIG_KEY: dict(exploration)}
            logger.info(
                "campaign %s: item exploration weight %s, item age cutoff %s days",
                name,
                exploration[EXPLORATION_WEIGHT_KEY],
                exploration[EXPLORATION_AGE_CUTOFF_KEY],
            )
        arn, created = res.find_or_create(
            self._personalize,
            res.CAMPAIGN,
            name,
            lambda: self._personalize.create_campaign(**params),
            dry_run=self._dry_run,
            solutionArn=solution_arn,
        )
        if not created:
            return self._update_campaign(name, arn, version_arn, exploration)
        self._record(res.CAMPAIGN.label, name, "create", arn)
        return arn

    def _update_campaign(
        self,
        name: str,
        campaign_arn: str,
        version_arn: str | None,
        exploration: Mapping[str, str] | None,
    ) -> str:
        """Reuse a campaign, updating it if it serves another version than `version_arn` or,
        given `exploration`, explores otherwise.

        One UpdateCampaign does both. An update of a campaign with `exploration` always
        restates it, with the rest of its campaignConfig as it is. `version_arn` is None
        only in a dry run, for a version still to be trained.
        """
        description = res.describe(self._personalize, res.CAMPAIGN, campaign_arn) or {}
        params: dict[str, Any] = {"campaignArn": campaign_arn}
        changes = []
        serving = _serving_version(description)
        if serving != version_arn:
            params["solutionVersionArn"] = version_arn
            changes.append(
                f"solution version {_version_label(serving, 'none')} ->"
                f" {_version_label(version_arn, 'the new one')}"
            )
        if exploration is not None:
            config = _campaign_config(description)
            existing = config.get(ITEM_EXPLORATION_CONFIG_KEY)
            if not _same_exploration(existing, exploration):
                changes.append(
                    f"{ITEM_EXPLORATION_CONFIG_KEY} {_exploration_label(existing)} ->"
                    f" {_exploration_label(exploration)}"
                )
            if changes:
                params["campaignConfig"] = {
                    **config,
                    ITEM_EXPLORATION_CONFIG_KEY: dict(exploration),
                }
        if not changes:
            self._record(res.CAMPAIGN.label, name, "reuse", campaign_arn)
            return campaign_arn
        if not self._dry_run:
            self._personalize.update_campaign(**params)
        self._record(res.CAMPAIGN.label, name, "update", campaign_arn, change="; ".join(changes))
        return campaign_arn

    def _recommender(
        self,
        name: str,
        use_case: UseCase,
        group_arn: str | None,
        exploration: Mapping[str, str] | None,
    ) -> str | None:
        """The recommender of `use_case`: created, reused, or updated to `exploration`.

        `exploration` is the Top-picks recommender's `itemExplorationConfig` (None for the
        use cases that take none). One of this name with another recipe is an error (a
        recommender's recipe cannot change), and so is one being deleted or stopped.
        """
        params: dict[str, Any] = {
            "name": name,
            "datasetGroupArn": group_arn,
            "recipeArn": use_case.recipe_arn,
        }
        if exploration is not None:
            params["recommenderConfig"] = {ITEM_EXPLORATION_CONFIG_KEY: dict(exploration)}
            logger.info(
                "recommender %s: item exploration weight %s, item age cutoff %s days",
                name,
                exploration[EXPLORATION_WEIGHT_KEY],
                exploration[EXPLORATION_AGE_CUTOFF_KEY],
            )
        found = (
            None
            if group_arn is None
            else res.find_by_name(
                self._personalize, res.RECOMMENDER, name, datasetGroupArn=group_arn
            )
        )
        if found is None:
            arn = None
            if not self._dry_run:
                arn = self._personalize.create_recommender(**params)["recommenderArn"]
            self._record(res.RECOMMENDER.label, name, "create", arn)
            return arn
        arn = found["recommenderArn"]
        if found.get("recipeArn") != use_case.recipe_arn:
            raise ProvisioningError(
                f"recommender {name} already exists with recipe {found.get('recipeArn')}, not"
                f" {use_case.recipe_arn}, and a recommender's recipe cannot change: delete it"
                " (recs personalize teardown) or choose another --name"
            )
        status = found.get("status", "")
        if status.startswith("DELETE") or status.startswith("STOP") or status == "INACTIVE":
            raise ProvisioningError(
                f"recommender {name} is {status}: run provision again once it is gone, or"
                " start it (aws personalize start-recommender) if it was stopped"
            )
        existing = (found.get("recommenderConfig") or {}).get(ITEM_EXPLORATION_CONFIG_KEY)
        if exploration is None or _same_exploration(existing, exploration):
            self._record(res.RECOMMENDER.label, name, "reuse", arn)
            return arn
        change = (
            f"{ITEM_EXPLORATION_CONFIG_KEY} {_exploration_label(existing)} ->"
            f" {_exploration_label(exploration)}"
        )
        if not self._dry_run:
            self._personalize.update_recommender(
                recommenderArn=arn,
                recommenderConfig={
                    **(found.get("recommenderConfig") or {}),
                    ITEM_EXPLORATION_CONFIG_KEY: dict(exploration),
                },
            )
        self._record(res.RECOMMENDER.label, name, "update", arn, change=change)
        return arn


def _domain_label(domain: str | None) -> str:
    """How errors name a dataset group's or a schema's domain."""
    return f"domain {domain}" if domain else "no domain (custom)"


def _same_filter(spec: FilterSpec, expression: str) -> bool:
    """Whether `expression` says what `spec` says (compared parsed, so spacing is ignored)."""
    try:
        return parse_filter(spec.name, expression).parts == spec.filter.parts
    except FilterError:
        return False


def _serving_version(campaign: Mapping[str, Any]) -> str | None:
    """The solution version a campaign serves, or is being moved to."""
    update = campaign.get("latestCampaignUpdate") or {}
    return update.get("solutionVersionArn") or campaign.get("solutionVersionArn")


def _campaign_config(campaign: Mapping[str, Any]) -> dict[str, Any]:
    """The campaignConfig a campaign has, or is being updated to."""
    update = campaign.get("latestCampaignUpdate") or {}
    return dict(update.get("campaignConfig") or campaign.get("campaignConfig") or {})


def _same_exploration(existing: Mapping[str, str] | None, wanted: Mapping[str, str]) -> bool:
    """Whether an itemExplorationConfig says what `wanted` says (values compared as
    numbers, so "30" and "30.0" are the same); none at all is not."""
    if not existing:
        return False
    return all(_same_number(existing.get(key), value) for key, value in wanted.items())


def _same_number(found: str | None, wanted: str) -> bool:
    if found is None:
        return False
    try:
        return float(found) == float(wanted)
    except ValueError:
        return found == wanted


def _version_label(arn: str | None, missing: str) -> str:
    """A solution version as a change names it: the end of its ARN, or `missing`."""
    return arn.rsplit("/", 1)[-1] if arn else missing


def _exploration_label(config: Mapping[str, str] | None) -> str:
    """An itemExplorationConfig as a change names it."""
    if not config:
        return "none (Personalize's defaults)"
    return ", ".join(
        f"{key} {config[key]}"
        for key in (EXPLORATION_WEIGHT_KEY, EXPLORATION_AGE_CUTOFF_KEY)
        if key in config
    ) or repr(dict(config))
