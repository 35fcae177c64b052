"""Scripts of the `personalize` control-plane calls provisioning is expected to make.

Each `expect_*` adds the calls of one step to a Stubber, in order, with the exact
parameters; Stubber checks both the requests and these canned answers against the
real service model. Waiting is scripted round by round, the way `Waiter` polls; with
`dry_run` a helper scripts only the reads a dry run makes (no waits).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from botocore.stub import Stubber

from recs.backends.filtering import DEFAULT_FILTER_EXPRESSION, DEFAULT_FILTER_NAME
from recs.ops.s3 import file_sha256

FIXTURE_DATASET = Path(__file__).parents[1] / "fixtures" / "personalize" / "dataset"
ACCOUNT = "arn:aws:personalize:us-east-1:123456789012"
NAME = "videos"
ROLE_ARN = "arn:aws:iam::123456789012:role/PersonalizeS3Access"
BUCKET = "videos-data"
PREFIX = "personalize/v1"
DATASETS = ("interactions", "items")
RECIPES = {
    "user-personalization": "user_personalization_campaign_arn",
    "sims": "similar_items_campaign_arn",
    "popularity-count": "popularity_campaign_arn",
    "trending-now": "trending_now_campaign_arn",
    "personalized-ranking": "personalized_ranking_campaign_arn",
}
TRENDING = "trending-now"
USER_PERSONALIZATION = "user-personalization"
# CreateSolution's solutionConfig for Trending-Now: the default trend interval "3h".
TREND_FREQUENCY = "3 hours"
# The User-Personalization campaign's itemExplorationConfig: the defaults of [local]
# exploration_weight (0.3) and exploration_item_age_cutoff (30 days).
EXPLORATION = {"explorationWeight": "0.3", "explorationItemAgeCutOff": "30"}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
# What a serve config without [filters] provisions: the built-in default filter.
DEFAULT_FILTERS = {DEFAULT_FILTER_NAME: DEFAULT_FILTER_EXPRESSION}
UNWATCHED = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")'


def group_arn() -> str:
    return f"{ACCOUNT}:dataset-group/{NAME}"


def schema_arn(slug: str) -> str:
    return f"{ACCOUNT}:schema/{NAME}-{slug}"


def dataset_arn(slug: str) -> str:
    return f"{ACCOUNT}:dataset/{NAME}/{slug.upper()}"


def job_name(slug: str, data_dir: Path = FIXTURE_DATASET) -> str:
    return f"{NAME}-{slug}-{file_sha256(data_dir / f'{slug}.csv')[:8]}"


def job_arn(slug: str, data_dir: Path = FIXTURE_DATASET) -> str:
    return f"{ACCOUNT}:dataset-import-job/{job_name(slug, data_dir)}"


def solution_arn(recipe: str) -> str:
    return f"{ACCOUNT}:solution/{NAME}-{recipe}"


def version_arn(recipe: str, version: str = "v1") -> str:
    return f"{solution_arn(recipe)}/{version}"


def campaign_arn(recipe: str) -> str:
    return f"{ACCOUNT}:campaign/{NAME}-{recipe}"


def filter_arn(name: str) -> str:
    return f"{ACCOUNT}:filter/{NAME}-{name}"


TRACKER_NAME = f"{NAME}-events"
TRACKING_ID = "5f0e2a43-8c1d-4b6e-9a7f-3d2c1b0a9e8d"


def tracker_arn(name: str = TRACKER_NAME) -> str:
    return f"{ACCOUNT}:event-tracker/{name}"


def schema_text(slug: str, data_dir: Path = FIXTURE_DATASET) -> str:
    schema = json.loads((data_dir / f"{slug}.schema.json").read_text())
    return json.dumps(schema, separators=(",", ":"))


def expect_wait(
    stubber: Stubber, method: str, key: str, arn_field: str, statuses: dict[str, list[str]]
) -> None:
    """describe_* answers for `Waiter`: each round polls every resource still pending."""
    pending = {arn: list(sequence) for arn, sequence in statuses.items()}
    while pending:
        for arn in list(pending):
            status = pending[arn].pop(0)
            stubber.add_response(
                method, {key: {arn_field: arn, "status": status}}, {arn_field: arn}
            )
            if status == "ACTIVE" or "FAILED" in status:
                del pending[arn]


def expect_dataset_group(
    stubber: Stubber,
    *,
    exists: bool,
    polls: list[str] | None = None,
    dry_run: bool = False,
    domain: str | None = None,
):
    """The dataset group found or created (a domain dataset group with `domain`)."""
    group = {"name": NAME, "datasetGroupArn": group_arn(), "status": "ACTIVE"}
    if domain:
        group["domain"] = domain
    stubber.add_response("list_dataset_groups", {"datasetGroups": [group] if exists else []}, {})
    if not exists:
        params = {"name": NAME} if domain is None else {"name": NAME, "domain": domain}
        stubber.add_response("create_dataset_group", {"datasetGroupArn": group_arn()}, params)
    if dry_run:
        return
    expect_wait(
        stubber,
        "describe_dataset_group",
        "datasetGroup",
        "datasetGroupArn",
        {group_arn(): polls or ["ACTIVE"]},
    )


def expect_schemas(
    stubber: Stubber,
    *,
    exists: bool,
    data_dir: Path = FIXTURE_DATASET,
    domain: str | None = None,
) -> None:
    """The schemas of `data_dir` found (described: same fields, same domain) or created
    (for `domain`, a domain dataset group's)."""
    for slug in DATASETS:
        name = f"{NAME}-{slug}"
        listed = [{"name": name, "schemaArn": schema_arn(slug)}] if exists else []
        stubber.add_response("list_schemas", {"schemas": listed}, {})
        if exists:
            described = {
                "name": name,
                "schemaArn": schema_arn(slug),
                "schema": schema_text(slug, data_dir),
            }
            if domain:
                described["domain"] = domain
            stubber.add_response(
                "describe_schema", {"schema": described}, {"schemaArn": schema_arn(slug)}
            )
        else:
            params = {"name": name, "schema": schema_text(slug, data_dir)}
            if domain:
                params["domain"] = domain
            stubber.add_response("create_schema", {"schemaArn": schema_arn(slug)}, params)


def expect_datasets(stubber: Stubber, *, exists: bool, dry_run: bool = False) -> None:
    for slug in DATASETS:
        name = f"{NAME}-{slug}"
        listed = (
            [{"name": name, "datasetArn": dataset_arn(slug), "status": "ACTIVE"}] if exists else []
        )
        stubber.add_response(
            "list_datasets", {"datasets": listed}, {"datasetGroupArn": group_arn()}
        )
        if not exists:
            stubber.add_response(
                "create_dataset",
                {"datasetArn": dataset_arn(slug)},
                {
                    "name": name,
                    "schemaArn": schema_arn(slug),
                    "datasetGroupArn": group_arn(),
                    "datasetType": slug.capitalize(),
                },
            )
    if dry_run:
        return
    expect_wait(
        stubber,
        "describe_dataset",
        "dataset",
        "datasetArn",
        {dataset_arn(slug): ["ACTIVE"] for slug in DATASETS},
    )


def expect_filters(
    stubber: Stubber,
    filters: Mapping[str, str],
    *,
    existing: Mapping[str, str] | None = None,
    polls: list[str] | None = None,
    dry_run: bool = False,
) -> None:
    """Filters `filters` (name -> expression) found or created, then waited for.

    `existing` maps the names of filters already in the group to their expression there; a
    new filter is polled through `polls` (default: pending once, then ACTIVE).
    """
    existing = existing or {}
    listed = [
        {"name": f"{NAME}-{name}", "filterArn": filter_arn(name), "status": "ACTIVE"}
        for name in existing
    ]
    for name, expression in filters.items():
        stubber.add_response("list_filters", {"Filters": listed}, {"datasetGroupArn": group_arn()})
        if name in existing:
            stubber.add_response(
                "describe_filter",
                {
                    "filter": {
                        "name": f"{NAME}-{name}",
                        "filterArn": filter_arn(name),
                        "filterExpression": existing[name],
                        "status": "ACTIVE",
                    }
                },
                {"filterArn": filter_arn(name)},
            )
        else:
            stubber.add_response(
                "create_filter",
                {"filterArn": filter_arn(name)},
                {
                    "name": f"{NAME}-{name}",
                    "datasetGroupArn": group_arn(),
                    "filterExpression": expression,
                },
            )
    if dry_run:
        return
    expect_wait(
        stubber,
        "describe_filter",
        "filter",
        "filterArn",
        {
            filter_arn(name): ["ACTIVE"]
            if name in existing
            else list(polls or ["CREATE PENDING", "ACTIVE"])
            for name in filters
        },
    )


def expect_event_tracker(
    stubber: Stubber,
    *,
    exists: bool,
    name: str = TRACKER_NAME,
    polls: list[str] | None = None,
    dry_run: bool = False,
) -> None:
    """The group's event tracker found (`name`, described for its trackingId) or created
    (`NAME-events`), then waited for through `polls` (default: ACTIVE at once)."""
    listed = [{"name": name, "eventTrackerArn": tracker_arn(name), "status": "ACTIVE"}]
    stubber.add_response(
        "list_event_trackers",
        {"eventTrackers": listed if exists else []},
        {"datasetGroupArn": group_arn()},
    )
    arn = tracker_arn(name if exists else TRACKER_NAME)
    if exists:
        stubber.add_response(
            "describe_event_tracker",
            {
                "eventTracker": {
                    "name": name,
                    "eventTrackerArn": arn,
                    "trackingId": TRACKING_ID,
                    "datasetGroupArn": group_arn(),
                    "status": "ACTIVE",
                }
            },
            {"eventTrackerArn": arn},
        )
    else:
        stubber.add_response(
            "create_event_tracker",
            {"eventTrackerArn": arn, "trackingId": TRACKING_ID},
            {"name": TRACKER_NAME, "datasetGroupArn": group_arn()},
        )
    if dry_run:
        return
    expect_wait(
        stubber,
        "describe_event_tracker",
        "eventTracker",
        "eventTrackerArn",
        {arn: list(polls or ["ACTIVE"])},
    )


def expect_import_jobs(
    stubber: Stubber,
    *,
    existing: tuple[str, ...],
    data_dir: Path = FIXTURE_DATASET,
    dry_run: bool = False,
) -> None:
    """Jobs for the current file contents; those of `existing` datasets already ran."""
    for slug in DATASETS:
        name = job_name(slug, data_dir)
        listed = (
            [{"jobName": name, "datasetImportJobArn": job_arn(slug, data_dir), "status": "ACTIVE"}]
            if slug in existing
            else [{"jobName": f"{NAME}-{slug}-00000000", "datasetImportJobArn": "x:old"}]
        )
        stubber.add_response(
            "list_dataset_import_jobs",
            {"datasetImportJobs": listed},
            {"datasetArn": dataset_arn(slug)},
        )
        if slug not in existing:
            stubber.add_response(
                "create_dataset_import_job",
                {"datasetImportJobArn": job_arn(slug, data_dir)},
                {
                    "jobName": name,
                    "datasetArn": dataset_arn(slug),
                    "dataSource": {"dataLocation": f"s3://{BUCKET}/{PREFIX}/{slug}.csv"},
                    "roleArn": ROLE_ARN,
                    "importMode": "FULL",
                },
            )
    if dry_run:
        return
    expect_wait(
        stubber,
        "describe_dataset_import_job",
        "datasetImportJob",
        "datasetImportJobArn",
        {
            job_arn(slug, data_dir): ["ACTIVE"]
            if slug in existing
            else ["CREATE IN_PROGRESS", "ACTIVE"]
            for slug in DATASETS
        },
    )


def trending_solution_config(frequency: str = TREND_FREQUENCY) -> dict:
    """CreateSolution's (and DescribeSolution's) solutionConfig of the Trending-Now solution."""
    return {"featureTransformationParameters": {"trend_discovery_frequency": frequency}}


def expect_trending_description(stubber: Stubber, frequency: str | None = TREND_FREQUENCY) -> None:
    """DescribeSolution of the existing Trending-Now solution, discovering trends every
    `frequency` (None: created without one)."""
    solution = {
        "name": f"{NAME}-{TRENDING}",
        "solutionArn": solution_arn(TRENDING),
        "recipeArn": "arn:aws:personalize:::recipe/aws-trending-now",
        "status": "ACTIVE",
    }
    if frequency is not None:
        solution["solutionConfig"] = trending_solution_config(frequency)
    stubber.add_response(
        "describe_solution", {"solution": solution}, {"solutionArn": solution_arn(TRENDING)}
    )


def expect_solutions(
    stubber: Stubber,
    *,
    exists: bool,
    event_type: str | None = None,
    frequency: str = TREND_FREQUENCY,
    existing_frequency: str | None = TREND_FREQUENCY,
    dry_run: bool = False,
) -> None:
    """Solutions found (Trending-Now's described for its frequency, `existing_frequency`)
    or created (Trending-Now's with `frequency`), then waited for."""
    for recipe in RECIPES:
        name = f"{NAME}-{recipe}"
        listed = [{"name": name, "solutionArn": solution_arn(recipe)}] if exists else []
        stubber.add_response(
            "list_solutions", {"solutions": listed}, {"datasetGroupArn": group_arn()}
        )
        if exists and recipe == TRENDING:
            expect_trending_description(stubber, existing_frequency)
        if not exists:
            params = {
                "name": name,
                "datasetGroupArn": group_arn(),
                "recipeArn": f"arn:aws:personalize:::recipe/aws-{recipe}",
                "performAutoTraining": False,
            }
            if event_type:
                params["eventType"] = event_type
            if recipe == TRENDING:
                params["solutionConfig"] = trending_solution_config(frequency)
            stubber.add_response("create_solution", {"solutionArn": solution_arn(recipe)}, params)
    if dry_run:
        return
    expect_wait(
        stubber,
        "describe_solution",
        "solution",
        "solutionArn",
        {solution_arn(recipe): ["ACTIVE"] for recipe in RECIPES},
    )


def expect_versions(
    stubber: Stubber, *, train: bool, version: str = "v1", dry_run: bool = False
) -> None:
    """New versions (`train`) or the reuse of each solution's newest usable one."""
    for recipe in RECIPES:
        if train:
            stubber.add_response(
                "create_solution_version",
                {"solutionVersionArn": version_arn(recipe, version)},
                {"solutionArn": solution_arn(recipe), "trainingMode": "FULL"},
            )
        else:
            listed = [
                {
                    "solutionVersionArn": version_arn(recipe, "v0"),
                    "status": "ACTIVE",
                    "creationDateTime": T0,
                },
                {
                    "solutionVersionArn": version_arn(recipe, "v1"),
                    "status": "ACTIVE",
                    "creationDateTime": T0.replace(month=2),
                },
                {
                    "solutionVersionArn": version_arn(recipe, "v2"),
                    "status": "CREATE FAILED",
                    "creationDateTime": T0.replace(month=3),
                },
            ]
            stubber.add_response(
                "list_solution_versions",
                {"solutionVersions": listed},
                {"solutionArn": solution_arn(recipe)},
            )
    if dry_run:
        return
    expect_wait(
        stubber,
        "describe_solution_version",
        "solutionVersion",
        "solutionVersionArn",
        {
            version_arn(recipe, version): (
                ["CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE"] if train else ["ACTIVE"]
            )
            for recipe in RECIPES
        },
    )


def campaign_config(exploration: Mapping[str, str] | None = EXPLORATION) -> dict:
    """CreateCampaign's (and DescribeCampaign's) campaignConfig holding `exploration`."""
    return {} if exploration is None else {"itemExplorationConfig": dict(exploration)}


def same_exploration(existing: Mapping[str, str] | None, wanted: Mapping[str, str]) -> bool:
    """Whether a campaign exploring with `existing` needs no update to `wanted`: the same
    numbers ("30" is "30.0"); none at all differs."""
    return existing is not None and all(
        key in existing and float(existing[key]) == float(value) for key, value in wanted.items()
    )


def expect_campaigns(
    stubber: Stubber,
    *,
    exists: bool,
    serving: str = "v1",
    version: str = "v1",
    exploration: Mapping[str, str] = EXPLORATION,
    existing_exploration: Mapping[str, str] | None = EXPLORATION,
    update_polls: list[str] | None = None,
    dry_run: bool = False,
) -> None:
    """Campaigns created, reused (serving `version`) or updated: moved from `serving` to
    `version`, and the User-Personalization one from `existing_exploration` (None: created
    without) to `exploration`, its campaignConfig restated with every update.

    Only the User-Personalization campaign has an itemExplorationConfig. An updated campaign
    is polled through `update_polls`, the statuses of its latestCampaignUpdate (default:
    ACTIVE at once); with `dry_run` nothing is updated nor waited for.
    """
    updated = []
    for recipe in RECIPES:
        name = f"{NAME}-{recipe}"
        explores = recipe == USER_PERSONALIZATION
        listed = [{"name": name, "campaignArn": campaign_arn(recipe)}] if exists else []
        stubber.add_response(
            "list_campaigns", {"campaigns": listed}, {"solutionArn": solution_arn(recipe)}
        )
        if not exists:
            params = {
                "name": name,
                "solutionVersionArn": version_arn(recipe, version),
                "minProvisionedTPS": 1,
            }
            if explores:
                params["campaignConfig"] = campaign_config(exploration)
            stubber.add_response("create_campaign", {"campaignArn": campaign_arn(recipe)}, params)
            continue
        described = {
            "campaignArn": campaign_arn(recipe),
            "status": "ACTIVE",
            "solutionVersionArn": version_arn(recipe, serving),
        }
        if explores and existing_exploration is not None:
            described["campaignConfig"] = campaign_config(existing_exploration)
        stubber.add_response(
            "describe_campaign", {"campaign": described}, {"campaignArn": campaign_arn(recipe)}
        )
        params = {"campaignArn": campaign_arn(recipe)}
        if serving != version:
            params["solutionVersionArn"] = version_arn(recipe, version)
        if explores and (
            serving != version or not same_exploration(existing_exploration, exploration)
        ):
            params["campaignConfig"] = campaign_config(exploration)
        if len(params) > 1:
            updated.append(recipe)
            if not dry_run:
                stubber.add_response(
                    "update_campaign", {"campaignArn": campaign_arn(recipe)}, params
                )
    if dry_run:
        return
    pending = {
        recipe: list(update_polls or ["ACTIVE"]) if recipe in updated else ["ACTIVE"]
        for recipe in RECIPES
    }
    while pending:
        for recipe in list(pending):
            status = pending[recipe].pop(0)
            campaign = {"campaignArn": campaign_arn(recipe), "status": "ACTIVE"}
            if recipe in updated:
                campaign["latestCampaignUpdate"] = {"status": status}
            else:
                campaign["status"] = status
            stubber.add_response(
                "describe_campaign", {"campaign": campaign}, {"campaignArn": campaign_arn(recipe)}
            )
            if status == "ACTIVE" or "FAILED" in status:
                del pending[recipe]


def expect_fresh_provisioning(
    stubber: Stubber,
    *,
    event_type: str | None = None,
    filters: Mapping[str, str] | None = None,
    frequency: str = TREND_FREQUENCY,
    exploration: Mapping[str, str] = EXPLORATION,
) -> None:
    """Every call of a first run, when nothing exists yet (Trending-Now's solution
    discovering trends every `frequency`, the User-Personalization campaign exploring with
    `exploration`)."""
    expect_dataset_group(stubber, exists=False, polls=["CREATE PENDING", "ACTIVE"])
    expect_schemas(stubber, exists=False)
    expect_datasets(stubber, exists=False)
    if filters:
        expect_filters(stubber, filters)
    expect_event_tracker(stubber, exists=False)
    expect_import_jobs(stubber, existing=())
    expect_solutions(stubber, exists=False, event_type=event_type, frequency=frequency)
    expect_versions(stubber, train=True)
    expect_campaigns(stubber, exists=False, exploration=exploration)


def expect_idempotent_rerun(
    stubber: Stubber,
    *,
    filters: Mapping[str, str] | None = None,
    existing_filters: Mapping[str, str] | None = None,
    existing_frequency: str | None = TREND_FREQUENCY,
    exploration: Mapping[str, str] = EXPLORATION,
    existing_exploration: Mapping[str, str] | None = EXPLORATION,
    dry_run: bool = False,
) -> None:
    """Every call of a run after a complete one with the same data: reads only, unless the
    User-Personalization campaign explores with `existing_exploration` rather than
    `exploration` (then it is updated and waited for).

    The filters exist with the configured expressions unless `existing_filters` says which;
    the Trending-Now solution discovers trends every `existing_frequency`. `dry_run`: the
    reads of a dry run (no waits).
    """
    expect_dataset_group(stubber, exists=True, dry_run=dry_run)
    expect_schemas(stubber, exists=True)
    expect_datasets(stubber, exists=True, dry_run=dry_run)
    if filters:
        expect_filters(stubber, filters, existing=existing_filters or filters, dry_run=dry_run)
    expect_event_tracker(stubber, exists=True, dry_run=dry_run)
    expect_import_jobs(stubber, existing=DATASETS, dry_run=dry_run)
    expect_solutions(stubber, exists=True, existing_frequency=existing_frequency, dry_run=dry_run)
    expect_versions(stubber, train=False, dry_run=dry_run)
    expect_campaigns(
        stubber,
        exists=True,
        serving="v1",
        version="v1",
        exploration=exploration,
        existing_exploration=existing_exploration,
        dry_run=dry_run,
    )


# --- VIDEO_ON_DEMAND (`provision --domain video-on-demand`) ---------------------------------

VIDEO_ON_DEMAND = "VIDEO_ON_DEMAND"
# use case (recommender NAME-<use case>, recipe aws-vod-<use case>) -> [personalize.
# recommender_arns] key
USE_CASES = {
    "top-picks": "recommendations",
    "because-you-watched-x": "similar_items",
    "more-like-x": "more_like_x",
    "most-popular": "popular_items",
    "trending-now": "trending_items",
}
TOP_PICKS = "top-picks"


def recommender_arn(use_case: str) -> str:
    return f"{ACCOUNT}:recommender/{NAME}-{use_case}"


def vod_recipe_arn(use_case: str) -> str:
    return f"arn:aws:personalize:::recipe/aws-vod-{use_case}"


def write_vod_dataset(data_dir: Path) -> Path:
    """A dataset as `recs prepare --domain video-on-demand` prepares it: Watch/Click events,
    items with the domain's GENRES and CREATION_TIMESTAMP."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "interactions.csv").write_text(
        "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\n"
        "u1,v1,1700000000,Watch,0.9\n"
        "u1,v2,1700000100,Click,\n"
        "u2,v1,1700000200,Watch,0.5\n"
    )
    (data_dir / "items.csv").write_text(
        "ITEM_ID,GENRES,CREATION_TIMESTAMP\nv1,Animals,1690000000\nv2,Animals|Sports,1690000100\n"
    )
    schemas = {
        "interactions": ("Interactions", [
            {"name": "USER_ID", "type": "string"},
            {"name": "ITEM_ID", "type": "string"},
            {"name": "TIMESTAMP", "type": "long"},
            {"name": "EVENT_TYPE", "type": "string"},
            {"name": "EVENT_VALUE", "type": ["float", "null"]},
        ]),
        "items": ("Items", [
            {"name": "ITEM_ID", "type": "string"},
            {"name": "GENRES", "type": "string", "categorical": True},
            {"name": "CREATION_TIMESTAMP", "type": "long"},
        ]),
    }  # fmt: skip
    for slug, (record, fields) in schemas.items():
        schema = {
            "type": "record",
            "name": record,
            "namespace": "com.amazonaws.personalize.schema",
            "fields": fields,
            "version": "1.0",
        }
        (data_dir / f"{slug}.schema.json").write_text(json.dumps(schema))
    (data_dir / "dataset.json").write_text('{"domain": "VIDEO_ON_DEMAND"}')  # recs prepare's marker
    return data_dir


def recommender_config(exploration: Mapping[str, str] | None = EXPLORATION) -> dict:
    """CreateRecommender's (and ListRecommenders') recommenderConfig holding `exploration`."""
    return {} if exploration is None else {"itemExplorationConfig": dict(exploration)}


def expect_recommenders(
    stubber: Stubber,
    *,
    exists: bool,
    exploration: Mapping[str, str] = EXPLORATION,
    existing_exploration: Mapping[str, str] | None = EXPLORATION,
    polls: list[str] | None = None,
    dry_run: bool = False,
    group_known: bool = True,
) -> None:
    """Recommenders found (the Top-picks one updated when it explores with
    `existing_exploration` rather than `exploration`) or created (the Top-picks one with
    `exploration`), then waited for: new ones through `polls` (default: pending, then
    ACTIVE). `group_known` False: a dry run whose dataset group does not exist lists
    nothing."""
    updated = []
    for use_case in USE_CASES:
        name = f"{NAME}-{use_case}"
        explores = use_case == TOP_PICKS
        summary = {
            "name": name,
            "recommenderArn": recommender_arn(use_case),
            "recipeArn": vod_recipe_arn(use_case),
            "datasetGroupArn": group_arn(),
            "status": "ACTIVE",
        }
        if explores and existing_exploration is not None:
            summary["recommenderConfig"] = recommender_config(existing_exploration)
        if group_known:
            stubber.add_response(
                "list_recommenders",
                {"recommenders": [summary] if exists else []},
                {"datasetGroupArn": group_arn()},
            )
        if not exists:
            if dry_run:
                continue
            params = {
                "name": name,
                "datasetGroupArn": group_arn(),
                "recipeArn": vod_recipe_arn(use_case),
            }
            if explores:
                params["recommenderConfig"] = recommender_config(exploration)
            stubber.add_response(
                "create_recommender", {"recommenderArn": recommender_arn(use_case)}, params
            )
        elif explores and not same_exploration(existing_exploration, exploration):
            updated.append(use_case)
            if not dry_run:
                stubber.add_response(
                    "update_recommender",
                    {"recommenderArn": recommender_arn(use_case)},
                    {
                        "recommenderArn": recommender_arn(use_case),
                        "recommenderConfig": recommender_config(exploration),
                    },
                )
    if dry_run:
        return
    pending = {
        use_case: list(polls or ["CREATE PENDING", "ACTIVE"])
        if not exists
        else (["UPDATE IN_PROGRESS", "ACTIVE"] if use_case in updated else ["ACTIVE"])
        for use_case in USE_CASES
    }
    while pending:
        for use_case in list(pending):
            status = pending[use_case].pop(0)
            recommender = {"recommenderArn": recommender_arn(use_case), "status": status}
            if use_case in updated:
                recommender["status"] = "ACTIVE"
                recommender["latestRecommenderUpdate"] = {"status": status}
            stubber.add_response(
                "describe_recommender",
                {"recommender": recommender},
                {"recommenderArn": recommender_arn(use_case)},
            )
            if status == "ACTIVE" or "FAILED" in status:
                del pending[use_case]


def expect_fresh_vod_provisioning(
    stubber: Stubber,
    data_dir: Path,
    *,
    filters: Mapping[str, str] | None = None,
    exploration: Mapping[str, str] = EXPLORATION,
) -> None:
    """Every call of a first `--domain video-on-demand` run, when nothing exists yet."""
    expect_dataset_group(
        stubber, exists=False, polls=["CREATE PENDING", "ACTIVE"], domain=VIDEO_ON_DEMAND
    )
    expect_schemas(stubber, exists=False, data_dir=data_dir, domain=VIDEO_ON_DEMAND)
    expect_datasets(stubber, exists=False)
    if filters:
        expect_filters(stubber, filters)
    expect_event_tracker(stubber, exists=False)
    expect_import_jobs(stubber, existing=(), data_dir=data_dir)
    expect_recommenders(stubber, exists=False, exploration=exploration)


def expect_vod_rerun(
    stubber: Stubber,
    data_dir: Path,
    *,
    filters: Mapping[str, str] | None = None,
    exploration: Mapping[str, str] = EXPLORATION,
    existing_exploration: Mapping[str, str] | None = EXPLORATION,
    dry_run: bool = False,
) -> None:
    """Every call of a `--domain video-on-demand` run after a complete one with the same
    data: reads only, unless the Top-picks recommender explores otherwise (then updated)."""
    expect_dataset_group(stubber, exists=True, dry_run=dry_run, domain=VIDEO_ON_DEMAND)
    expect_schemas(stubber, exists=True, data_dir=data_dir, domain=VIDEO_ON_DEMAND)
    expect_datasets(stubber, exists=True, dry_run=dry_run)
    if filters:
        expect_filters(stubber, filters, existing=filters, dry_run=dry_run)
    expect_event_tracker(stubber, exists=True, dry_run=dry_run)
    expect_import_jobs(stubber, existing=DATASETS, data_dir=data_dir, dry_run=dry_run)
    expect_recommenders(
        stubber,
        exists=True,
        exploration=exploration,
        existing_exploration=existing_exploration,
        dry_run=dry_run,
    )


def expect_recommender_listing(
    stubber: Stubber, use_cases: tuple[str, ...] = (), *, status: str = "ACTIVE"
) -> None:
    """ListRecommenders of the dataset group (teardown): the recommenders of `use_cases`."""
    stubber.add_response(
        "list_recommenders",
        {
            "recommenders": [
                {
                    "name": f"{NAME}-{use_case}",
                    "recommenderArn": recommender_arn(use_case),
                    "recipeArn": vod_recipe_arn(use_case),
                    "status": status,
                }
                for use_case in use_cases
            ]
        },
        {"datasetGroupArn": group_arn()},
    )
