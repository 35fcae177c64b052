"""Provisioning the event tracker (PutEvents' trackingId) and handing its id and the Items
dataset's ARN to the serve config: Stubber for Personalize, moto for S3."""

from __future__ import annotations

import pytest

from recs.ops.provisioning import ProvisionResult
from recs.ops.resources import ProvisioningError
from tests.ops import control_plane as cp
from tests.ops.test_provisioning import actions, provision


def tracker_steps(result: ProvisionResult):
    return [step for step in result.steps if step.kind == "event tracker"]


def expect_up_to_the_datasets(stubber) -> None:
    """A group whose schemas and datasets exist already (and no filters asked for)."""
    cp.expect_dataset_group(stubber, exists=True)
    cp.expect_schemas(stubber, exists=True)
    cp.expect_datasets(stubber, exists=True)


def stop_after_the_tracker(stubber) -> None:
    """The next step's first call fails, so a test covers the tracker step alone."""
    stubber.add_client_error("list_dataset_import_jobs", "AccessDeniedException", "stop here")


def test_first_run_creates_the_tracker_waits_and_returns_its_id_and_the_items_dataset(
    personalize, s3
):
    client, stubber = personalize
    cp.expect_dataset_group(stubber, exists=False)
    cp.expect_schemas(stubber, exists=False)
    cp.expect_datasets(stubber, exists=False)
    cp.expect_event_tracker(stubber, exists=False, polls=["CREATE PENDING", "ACTIVE"])
    cp.expect_import_jobs(stubber, existing=())
    cp.expect_solutions(stubber, exists=False)
    cp.expect_versions(stubber, train=True)
    cp.expect_campaigns(stubber, exists=False)
    result, sleeps = provision(client, s3)
    stubber.assert_no_pending_responses()
    assert [(s.name, s.action, s.arn) for s in tracker_steps(result)] == [
        (cp.TRACKER_NAME, "create", cp.tracker_arn())
    ]
    assert result.event_tracking_id == cp.TRACKING_ID
    assert result.items_dataset_arn == cp.dataset_arn("items")
    assert sleeps == [7] * 4  # the tracker was pending once: one round
    keys = result.serve_config_keys()
    assert keys["event_tracking_id"] == cp.TRACKING_ID
    assert keys["items_dataset_arn"] == cp.dataset_arn("items")


def test_a_rerun_reuses_the_tracker_and_reads_its_tracking_id(personalize, s3):
    client, stubber = personalize
    expect_up_to_the_datasets(stubber)
    cp.expect_event_tracker(stubber, exists=True)  # Stubber would refuse create_event_tracker
    stop_after_the_tracker(stubber)
    with pytest.raises(Exception, match="stop here"):
        provision(client, s3)
    stubber.assert_no_pending_responses()


def test_a_complete_rerun_returns_the_same_tracking_id(personalize, s3):
    client, stubber = personalize
    cp.expect_idempotent_rerun(stubber)
    result, _sleeps = provision(client, s3)
    stubber.assert_no_pending_responses()
    assert actions(result)["event tracker"] == ["reuse"]
    assert result.event_tracking_id == cp.TRACKING_ID
    assert result.items_dataset_arn == cp.dataset_arn("items")


def test_the_group_s_tracker_of_another_name_is_reused_and_said_so(personalize, s3):
    client, stubber = personalize
    expect_up_to_the_datasets(stubber)
    cp.expect_event_tracker(stubber, exists=True, name="made-by-hand")
    cp.expect_import_jobs(stubber, existing=cp.DATASETS)
    cp.expect_solutions(stubber, exists=True)
    cp.expect_versions(stubber, train=False)
    cp.expect_campaigns(stubber, exists=True)
    result, _sleeps = provision(client, s3)
    stubber.assert_no_pending_responses()
    (step,) = tracker_steps(result)
    assert (step.name, step.action, step.arn) == (
        "made-by-hand",
        "reuse",
        cp.tracker_arn("made-by-hand"),
    )
    assert "a group holds one" in step.note and cp.TRACKER_NAME in step.note
    assert result.event_tracking_id == cp.TRACKING_ID


def test_a_tracker_being_deleted_stops_provisioning_saying_what_to_do(personalize, s3):
    client, stubber = personalize
    expect_up_to_the_datasets(stubber)
    stubber.add_response(
        "list_event_trackers",
        {
            "eventTrackers": [
                {
                    "name": cp.TRACKER_NAME,
                    "eventTrackerArn": cp.tracker_arn(),
                    "status": "DELETE IN_PROGRESS",
                }
            ]
        },
        {"datasetGroupArn": cp.group_arn()},
    )
    with pytest.raises(ProvisioningError, match=r"DELETE IN_PROGRESS.*once it is gone"):
        provision(client, s3)
    stubber.assert_no_pending_responses()


def test_a_tracker_that_fails_stops_with_personalize_s_reason(personalize, s3):
    client, stubber = personalize
    expect_up_to_the_datasets(stubber)
    stubber.add_response(
        "list_event_trackers", {"eventTrackers": []}, {"datasetGroupArn": cp.group_arn()}
    )
    stubber.add_response(
        "create_event_tracker",
        {"eventTrackerArn": cp.tracker_arn(), "trackingId": cp.TRACKING_ID},
        {"name": cp.TRACKER_NAME, "datasetGroupArn": cp.group_arn()},
    )
    stubber.add_response(
        "describe_event_tracker",
        {
            "eventTracker": {
                "eventTrackerArn": cp.tracker_arn(),
                "status": "CREATE FAILED",  # (an EventTracker has no failureReason)
            }
        },
        {"eventTrackerArn": cp.tracker_arn()},
    )
    with pytest.raises(
        ProvisioningError, match="event tracker videos-events is CREATE FAILED: no reason"
    ):
        provision(client, s3)


def test_dry_run_in_an_existing_group_plans_the_tracker_without_creating_it(personalize, s3):
    client, stubber = personalize
    stubber.add_response(
        "list_dataset_groups",
        {"datasetGroups": [{"name": cp.NAME, "datasetGroupArn": cp.group_arn()}]},
        {},
    )
    cp.expect_schemas(stubber, exists=True)
    for _slug in cp.DATASETS:
        stubber.add_response("list_datasets", {"datasets": []}, {"datasetGroupArn": cp.group_arn()})
    stubber.add_response(
        "list_event_trackers", {"eventTrackers": []}, {"datasetGroupArn": cp.group_arn()}
    )
    for _recipe in cp.RECIPES:
        stubber.add_response(
            "list_solutions", {"solutions": []}, {"datasetGroupArn": cp.group_arn()}
        )
    result, sleeps = provision(client, s3, dry_run=True)  # Stubber refuses any create_*
    stubber.assert_no_pending_responses()
    assert [(s.name, s.action, s.arn) for s in tracker_steps(result)] == [
        (cp.TRACKER_NAME, "create", "")
    ]
    assert result.serve_config_keys() == {}
    assert sleeps == []
