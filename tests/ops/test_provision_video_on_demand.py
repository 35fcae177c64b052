"""`provision --domain video-on-demand`: a domain dataset group, the domain's schemas and one
recommender per VIDEO_ON_DEMAND use case instead of solutions and campaigns (Stubber, moto S3).
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from recs.ops.plan import VIDEO_ON_DEMAND, prepared_for_video_on_demand
from recs.ops.provisioning import Provisioner, ProvisionRequest, ProvisionResult
from recs.ops.resources import ProvisioningError
from recs.ops.s3 import S3Location
from recs.ops.waiting import Waiter
from tests.ops import control_plane as cp

QUIET = Console(file=io.StringIO())


@pytest.fixture
def vod_dir(tmp_path) -> Path:
    return cp.write_vod_dataset(tmp_path / "vod")


def provision(client, s3, data_dir: Path, **options) -> tuple[ProvisionResult, list[float]]:
    sleeps: list[float] = []
    dry_run = options.pop("dry_run", False)
    waiter = Waiter(client, poll_interval=7, console=QUIET, sleep=sleeps.append)
    request = ProvisionRequest(
        data_dir=data_dir,
        s3_prefix=S3Location(cp.BUCKET, cp.PREFIX),
        name=cp.NAME,
        role_arn=cp.ROLE_ARN,
        domain=options.pop("domain", VIDEO_ON_DEMAND),
        **options,
    )
    result = Provisioner(client, s3, waiter, dry_run=dry_run, console=QUIET).run(request)
    return result, sleeps


def actions(result: ProvisionResult) -> dict[str, list[str]]:
    by_kind: dict[str, list[str]] = {}
    for step in result.steps:
        by_kind.setdefault(step.kind, []).append(step.action)
    return by_kind


def expected_recommenders() -> dict[str, str]:
    return {key: cp.recommender_arn(use_case) for use_case, key in cp.USE_CASES.items()}


def test_first_run_creates_a_domain_group_and_five_recommenders(personalize, s3, vod_dir):
    client, stubber = personalize
    cp.expect_fresh_vod_provisioning(stubber, vod_dir, filters=cp.DEFAULT_FILTERS)
    result, sleeps = provision(client, s3, vod_dir, filters=cp.DEFAULT_FILTERS)
    stubber.assert_no_pending_responses()
    assert result.recommender_arns == expected_recommenders()
    assert result.campaign_arns == {}
    assert actions(result) == {
        "S3 object": ["upload", "upload"],
        "dataset group": ["create"],
        "schema": ["create", "create"],
        "dataset": ["create", "create"],
        "filter": ["create"],
        "event tracker": ["create"],
        "import job": ["create", "create"],
        "recommender": ["create"] * 5,
    }
    # group, filter, import jobs and recommenders each pending once
    assert sleeps == [7, 7, 7, 7]
    keys = result.serve_config_keys()
    assert keys["recommender_arns"] == {
        "recommendations": cp.recommender_arn("top-picks"),
        "similar_items": cp.recommender_arn("because-you-watched-x"),
        "more_like_x": cp.recommender_arn("more-like-x"),
        "popular_items": cp.recommender_arn("most-popular"),
        "trending_items": cp.recommender_arn("trending-now"),
    }
    assert not any(key.endswith("_campaign_arn") for key in keys)
    assert keys["event_tracking_id"] == cp.TRACKING_ID


def test_rerun_reuses_everything_and_only_reads(personalize, s3, vod_dir):
    client, stubber = personalize
    cp.expect_fresh_vod_provisioning(stubber, vod_dir)
    provision(client, s3, vod_dir)
    cp.expect_vod_rerun(stubber, vod_dir)
    result, sleeps = provision(client, s3, vod_dir)
    stubber.assert_no_pending_responses()
    assert result.recommender_arns == expected_recommenders()
    assert {step.action for step in result.steps} == {"unchanged", "reuse"}
    assert sleeps == []


def test_a_top_picks_recommender_exploring_otherwise_is_updated_and_waited_for(
    personalize, s3, vod_dir
):
    client, stubber = personalize
    cp.expect_fresh_vod_provisioning(stubber, vod_dir)
    provision(client, s3, vod_dir)
    wanted = {"explorationWeight": "0.5", "explorationItemAgeCutOff": "30"}
    cp.expect_vod_rerun(stubber, vod_dir, exploration=wanted)
    result, sleeps = provision(client, s3, vod_dir, exploration_weight=0.5)
    stubber.assert_no_pending_responses()
    updates = [step for step in result.steps if step.action == "update"]
    assert [step.name for step in updates] == [f"{cp.NAME}-top-picks"]
    assert "explorationWeight 0.3" in updates[0].change
    assert "explorationWeight 0.5" in updates[0].change
    assert sleeps == [7]


def test_dry_run_from_nothing_only_reads_and_plans_the_recommenders(personalize, s3, vod_dir):
    client, stubber = personalize
    stubber.add_response("list_dataset_groups", {"datasetGroups": []}, {})
    stubber.add_response("list_schemas", {"schemas": []}, {})
    stubber.add_response("list_schemas", {"schemas": []}, {})
    result, sleeps = provision(client, s3, vod_dir, dry_run=True)
    stubber.assert_no_pending_responses()  # Stubber refuses every create_* call
    assert actions(result)["recommender"] == ["create"] * 5
    assert "solution" not in actions(result) and "campaign" not in actions(result)
    assert result.recommender_arns == {}
    assert sleeps == []
    assert s3.list_objects_v2(Bucket=cp.BUCKET).get("KeyCount") == 0


def test_dry_run_after_a_complete_run_plans_the_exploration_update_without_it(
    personalize, s3, vod_dir
):
    client, stubber = personalize
    cp.expect_fresh_vod_provisioning(stubber, vod_dir)
    provision(client, s3, vod_dir)
    wanted = {"explorationWeight": "0.3", "explorationItemAgeCutOff": "7"}
    cp.expect_vod_rerun(stubber, vod_dir, exploration=wanted, dry_run=True)
    result, sleeps = provision(client, s3, vod_dir, exploration_item_age_cutoff=7, dry_run=True)
    stubber.assert_no_pending_responses()  # no update_recommender, no describe polls
    assert actions(result)["recommender"] == ["update", "reuse", "reuse", "reuse", "reuse"]
    assert sleeps == []


def test_data_prepared_without_the_domain_is_refused_before_any_call(personalize, s3):
    client, _stubber = personalize  # nothing stubbed: any call would fail
    with pytest.raises(ValueError, match=r"recs prepare --domain video-on-demand"):
        provision(client, s3, cp.FIXTURE_DATASET)
    assert s3.list_objects_v2(Bucket=cp.BUCKET).get("KeyCount") == 0


def test_the_domain_check_reads_the_marker_recs_prepare_writes(tmp_path, vod_dir):
    assert prepared_for_video_on_demand(vod_dir)
    assert not prepared_for_video_on_demand(cp.FIXTURE_DATASET)
    unmarked = tmp_path / "unmarked"
    shutil.copytree(vod_dir, unmarked)
    (unmarked / "dataset.json").unlink()  # Watch/Click and GENRES alone do not make it VOD
    assert not prepared_for_video_on_demand(unmarked)


def test_a_recommender_with_another_recipe_is_an_error_naming_it(personalize, s3, vod_dir):
    client, stubber = personalize
    cp.expect_dataset_group(stubber, exists=True, domain=cp.VIDEO_ON_DEMAND)
    cp.expect_schemas(stubber, exists=True, data_dir=vod_dir, domain=cp.VIDEO_ON_DEMAND)
    cp.expect_datasets(stubber, exists=True)
    cp.expect_event_tracker(stubber, exists=True)
    cp.expect_import_jobs(stubber, existing=cp.DATASETS, data_dir=vod_dir)
    stubber.add_response(
        "list_recommenders",
        {
            "recommenders": [
                {
                    "name": f"{cp.NAME}-top-picks",
                    "recommenderArn": cp.recommender_arn("top-picks"),
                    "recipeArn": cp.vod_recipe_arn("most-popular"),
                    "status": "ACTIVE",
                }
            ]
        },
        {"datasetGroupArn": cp.group_arn()},
    )
    with pytest.raises(
        ProvisioningError, match=r"recommender videos-top-picks .*aws-vod-most-popular"
    ):
        provision(client, s3, vod_dir)


def test_a_custom_dataset_group_of_the_same_name_is_an_error(personalize, s3, vod_dir):
    client, stubber = personalize
    cp.expect_dataset_group(stubber, exists=True, dry_run=True)  # listed without a domain
    with pytest.raises(ProvisioningError, match="dataset group videos already exists as no domain"):
        provision(client, s3, vod_dir)


def test_a_custom_schema_of_the_same_name_is_an_error(personalize, s3, vod_dir):
    client, stubber = personalize
    cp.expect_dataset_group(stubber, exists=True, domain=cp.VIDEO_ON_DEMAND)
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
        {"schema": {"schemaArn": cp.schema_arn("interactions"), "schema": "{}"}},
        {"schemaArn": cp.schema_arn("interactions")},
    )
    with pytest.raises(ProvisioningError, match="schema videos-interactions already exists for no"):
        provision(client, s3, vod_dir)
