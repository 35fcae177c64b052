"""The provisioning sequence, call by call: Stubber for Personalize, moto for S3."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from recs.ops.plan import INTERACTIONS
from recs.ops.provisioning import (
    Provisioner,
    ProvisionRequest,
    ProvisionResult,
    read_schema,
)
from recs.ops.resources import ProvisioningError
from recs.ops.s3 import S3Location, file_sha256
from recs.ops.waiting import Waiter
from tests.ops import control_plane as cp

QUIET = Console(file=io.StringIO())


def provision(personalize_client, s3_client, data_dir: Path = cp.FIXTURE_DATASET, **options):
    """Run provisioning with instant waits; returns the result and the sleeps requested."""
    sleeps: list[float] = []
    dry_run = options.pop("dry_run", False)
    waiter = Waiter(personalize_client, poll_interval=7, console=QUIET, sleep=sleeps.append)
    request = ProvisionRequest(
        data_dir=data_dir,
        s3_prefix=S3Location(cp.BUCKET, cp.PREFIX),
        name=cp.NAME,
        role_arn=cp.ROLE_ARN,
        **options,
    )
    provisioner = Provisioner(personalize_client, s3_client, waiter, dry_run=dry_run, console=QUIET)
    return provisioner.run(request), sleeps


def actions(result: ProvisionResult) -> dict[str, list[str]]:
    by_kind: dict[str, list[str]] = {}
    for step in result.steps:
        by_kind.setdefault(step.kind, []).append(step.action)
    return by_kind


def expected_campaigns() -> dict[str, str]:
    return {key: cp.campaign_arn(recipe) for recipe, key in cp.RECIPES.items()}


def test_first_run_creates_everything_waits_and_returns_the_campaigns(personalize, s3):
    client, stubber = personalize
    cp.expect_fresh_provisioning(stubber, event_type="watched")
    result, sleeps = provision(client, s3, event_type="watched")
    stubber.assert_no_pending_responses()
    assert result.campaign_arns == expected_campaigns()
    assert actions(result) == {
        "S3 object": ["upload", "upload"],
        "dataset group": ["create"],
        "schema": ["create", "create"],
        "dataset": ["create", "create"],
        "event tracker": ["create"],
        "import job": ["create", "create"],
        "solution": ["create"] * 5,
        "solution version": ["create"] * 5,
        "campaign": ["create"] * 5,
    }
    # group pending once, import jobs once, solution versions twice: one sleep per round
    assert sleeps == [7, 7, 7, 7]
    head = s3.head_object(Bucket=cp.BUCKET, Key=f"{cp.PREFIX}/interactions.csv")
    assert head["ContentLength"] == (cp.FIXTURE_DATASET / "interactions.csv").stat().st_size
    assert head["Metadata"]["sha256"] == file_sha256(cp.FIXTURE_DATASET / "interactions.csv")


def test_rerun_with_the_same_data_reuses_everything_and_uploads_nothing(personalize, s3):
    client, stubber = personalize
    cp.expect_fresh_provisioning(stubber)
    provision(client, s3)
    cp.expect_idempotent_rerun(stubber)
    result, sleeps = provision(client, s3)
    stubber.assert_no_pending_responses()
    assert result.campaign_arns == expected_campaigns()
    assert {action for step in result.steps for action in [step.action]} == {
        "unchanged",
        "reuse",
    }
    assert sleeps == []


def test_new_data_is_imported_trained_on_and_campaigns_move_to_it(personalize, s3, tmp_path):
    client, stubber = personalize
    data_dir = tmp_path / "dataset"
    shutil.copytree(cp.FIXTURE_DATASET, data_dir)
    with (data_dir / "interactions.csv").open("a") as stream:
        stream.write("u3,v2,1700000400,watched,1.0\n")
    cp.expect_dataset_group(stubber, exists=True)
    cp.expect_schemas(stubber, exists=True)
    cp.expect_datasets(stubber, exists=True)
    cp.expect_event_tracker(stubber, exists=True)
    cp.expect_import_jobs(stubber, existing=("items",), data_dir=data_dir)
    cp.expect_solutions(stubber, exists=True)
    cp.expect_versions(stubber, train=True, version="v3")
    cp.expect_campaigns(stubber, exists=True, serving="v1", version="v3")
    result, _sleeps = provision(client, s3, data_dir=data_dir)
    stubber.assert_no_pending_responses()
    assert actions(result)["import job"] == ["create", "reuse"]
    assert actions(result)["solution version"] == ["create"] * 5
    assert actions(result)["campaign"] == ["update"] * 5


def test_dry_run_from_nothing_only_reads_and_plans_every_creation(personalize, s3):
    client, stubber = personalize
    stubber.add_response("list_dataset_groups", {"datasetGroups": []}, {})
    stubber.add_response("list_schemas", {"schemas": []}, {})
    stubber.add_response("list_schemas", {"schemas": []}, {})
    result, sleeps = provision(client, s3, dry_run=True)
    stubber.assert_no_pending_responses()
    assert {step.action for step in result.steps} == {"create", "upload"}
    assert len(result.steps) == 2 + 1 + 2 + 2 + 1 + 2 + 5 + 5 + 5
    assert actions(result)["event tracker"] == ["create"]
    assert result.campaign_arns == {}
    assert (result.event_tracking_id, result.items_dataset_arn) == (None, None)
    assert sleeps == []
    assert s3.list_objects_v2(Bucket=cp.BUCKET).get("KeyCount") == 0


def test_dry_run_after_new_data_plans_the_import_retrain_and_campaign_moves(
    personalize, s3, tmp_path
):
    client, stubber = personalize
    data_dir = tmp_path / "dataset"
    shutil.copytree(cp.FIXTURE_DATASET, data_dir)
    (data_dir / "items.csv").write_text((data_dir / "items.csv").read_text().replace("Cats", "Cat"))
    stubber.add_response(
        "list_dataset_groups",
        {"datasetGroups": [{"name": cp.NAME, "datasetGroupArn": cp.group_arn()}]},
        {},
    )
    cp.expect_schemas(stubber, exists=True)
    for slug in cp.DATASETS:
        stubber.add_response(
            "list_datasets",
            {"datasets": [{"name": f"{cp.NAME}-{slug}", "datasetArn": cp.dataset_arn(slug)}]},
            {"datasetGroupArn": cp.group_arn()},
        )
    stubber.add_response(
        "list_event_trackers",
        {"eventTrackers": [{"name": cp.TRACKER_NAME, "eventTrackerArn": cp.tracker_arn()}]},
        {"datasetGroupArn": cp.group_arn()},
    )
    stubber.add_response(
        "describe_event_tracker",
        {"eventTracker": {"eventTrackerArn": cp.tracker_arn(), "trackingId": cp.TRACKING_ID}},
        {"eventTrackerArn": cp.tracker_arn()},
    )
    for slug in cp.DATASETS:
        existing = (
            []
            if slug == "items"
            else [{"jobName": cp.job_name(slug), "datasetImportJobArn": cp.job_arn(slug)}]
        )
        stubber.add_response(
            "list_dataset_import_jobs",
            {"datasetImportJobs": existing},
            {"datasetArn": cp.dataset_arn(slug)},
        )
    for recipe in cp.RECIPES:
        stubber.add_response(
            "list_solutions",
            {
                "solutions": [
                    {"name": f"{cp.NAME}-{recipe}", "solutionArn": cp.solution_arn(recipe)}
                ]
            },
            {"datasetGroupArn": cp.group_arn()},
        )
        if recipe == cp.TRENDING:
            cp.expect_trending_description(stubber)
    for recipe in cp.RECIPES:
        stubber.add_response(
            "list_campaigns",
            {
                "campaigns": [
                    {"name": f"{cp.NAME}-{recipe}", "campaignArn": cp.campaign_arn(recipe)}
                ]
            },
            {"solutionArn": cp.solution_arn(recipe)},
        )
        stubber.add_response(
            "describe_campaign",
            {
                "campaign": {
                    "campaignArn": cp.campaign_arn(recipe),
                    "solutionVersionArn": cp.version_arn(recipe),
                }
            },
            {"campaignArn": cp.campaign_arn(recipe)},
        )
    result, _sleeps = provision(client, s3, data_dir=data_dir, dry_run=True)
    stubber.assert_no_pending_responses()
    assert actions(result)["S3 object"] == ["upload", "upload"]  # nothing in the bucket yet
    assert actions(result)["import job"] == ["reuse", "create"]
    assert actions(result)["solution version"] == ["create"] * 5
    assert actions(result)["campaign"] == ["update"] * 5
    assert actions(result)["event tracker"] == ["reuse"]


def test_a_failed_solution_version_stops_with_personalize_s_reason(personalize, s3):
    client, stubber = personalize
    cp.expect_dataset_group(stubber, exists=True)
    cp.expect_schemas(stubber, exists=True)
    cp.expect_datasets(stubber, exists=True)
    cp.expect_event_tracker(stubber, exists=True)
    cp.expect_import_jobs(stubber, existing=cp.DATASETS)
    cp.expect_solutions(stubber, exists=True)
    for recipe in cp.RECIPES:
        stubber.add_response(
            "list_solution_versions",
            {"solutionVersions": []},
            {"solutionArn": cp.solution_arn(recipe)},
        )
        stubber.add_response(
            "create_solution_version",
            {"solutionVersionArn": cp.version_arn(recipe)},
            {"solutionArn": cp.solution_arn(recipe), "trainingMode": "FULL"},
        )
    stubber.add_response(
        "describe_solution_version",
        {
            "solutionVersion": {
                "solutionVersionArn": cp.version_arn("user-personalization"),
                "status": "CREATE FAILED",
                "failureReason": "Dataset has fewer than 25 users",
            }
        },
        {"solutionVersionArn": cp.version_arn("user-personalization")},
    )
    with pytest.raises(ProvisioningError, match="CREATE FAILED: Dataset has fewer than 25 users"):
        provision(client, s3)


def test_waiting_gives_up_after_the_timeout_naming_what_is_pending(personalize, s3):
    client, stubber = personalize
    stubber.add_response("list_dataset_groups", {"datasetGroups": []}, {})
    stubber.add_response(
        "create_dataset_group", {"datasetGroupArn": cp.group_arn()}, {"name": cp.NAME}
    )
    for _ in range(4):  # polls at t=0, 60, 120 and 180 (past the 150s timeout)
        stubber.add_response(
            "describe_dataset_group",
            {"datasetGroup": {"datasetGroupArn": cp.group_arn(), "status": "CREATE PENDING"}},
            {"datasetGroupArn": cp.group_arn()},
        )
    now = [0.0]
    waiter = Waiter(
        client,
        poll_interval=60,
        timeout=150,
        console=QUIET,
        sleep=lambda seconds: now.__setitem__(0, now[0] + seconds),
        clock=lambda: now[0],
    )
    request = ProvisionRequest(cp.FIXTURE_DATASET, S3Location(cp.BUCKET, ""), cp.NAME, cp.ROLE_ARN)
    with pytest.raises(ProvisioningError, match=r"gave up after 150s .* dataset group videos"):
        Provisioner(client, s3, waiter, console=QUIET).run(request)
    stubber.assert_no_pending_responses()


def test_an_existing_schema_with_other_fields_is_an_error(personalize, s3):
    client, stubber = personalize
    cp.expect_dataset_group(stubber, exists=True)
    stubber.add_response(
        "list_schemas",
        {
            "schemas": [
                {"name": f"{cp.NAME}-interactions", "schemaArn": cp.schema_arn("interactions")}
            ]
        },
        {},
    )
    stubber.add_response(
        "describe_schema",
        {"schema": {"schemaArn": cp.schema_arn("interactions"), "schema": '{"type":"record"}'}},
        {"schemaArn": cp.schema_arn("interactions")},
    )
    with pytest.raises(ProvisioningError, match="schema videos-interactions already exists"):
        provision(client, s3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"type": "record",\n "name": }', "line 2 column 10: not JSON"),
        ('{"type": "enum", "name": "Interactions"}', "type 'record' is expected"),
        ('{"type": "record", "name": "Items", "fields": []}', "Personalize wants 'Interactions'"),
    ],
)
def test_bad_schema_files_are_reported_with_their_path(tmp_path, content, message):
    path = tmp_path / "interactions.schema.json"
    path.write_text(content)
    with pytest.raises(ProvisioningError, match=message) as caught:
        read_schema(path, INTERACTIONS)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["interactions.csv"], "interactions.schema.json is missing"),
        (["interactions.csv", "interactions.schema.json", "items.csv"], "items.schema.json"),
        (["items.csv", "items.schema.json"], "interactions.csv not found"),
    ],
)
def test_incomplete_dataset_directories_fail_before_any_call(
    personalize, s3, tmp_path, files, message
):
    client, _stubber = personalize
    for name in files:
        shutil.copy(cp.FIXTURE_DATASET / name, tmp_path / name)
    with pytest.raises(ValueError, match=message):
        provision(client, s3, data_dir=tmp_path)


@pytest.mark.parametrize("name", ["-videos", "videos prod", "v" * 42])
def test_names_personalize_would_reject_fail_before_any_call(personalize, s3, name):
    client, _stubber = personalize
    waiter = Waiter(client, console=QUIET)
    request = ProvisionRequest(cp.FIXTURE_DATASET, S3Location(cp.BUCKET, ""), name, cp.ROLE_ARN)
    with pytest.raises(ValueError, match="--name"):
        Provisioner(client, s3, waiter, console=QUIET).run(request)
