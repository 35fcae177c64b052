"""Provisioning the filters of `[filters]`: Stubber for Personalize (moto has no filters)."""

from __future__ import annotations

import pytest

from recs.ops.plan import MAX_FILTERS
from recs.ops.resources import ProvisioningError
from recs.pipeline.filters import FilterError
from tests.ops import control_plane as cp
from tests.ops.test_provisioning import actions, provision

FILTERS = {"unwatched": cp.UNWATCHED, **cp.DEFAULT_FILTERS}


def filter_steps(result):
    return [step for step in result.steps if step.kind == "filter"]


def test_first_run_creates_each_filter_after_the_datasets_and_returns_the_arns(personalize, s3):
    client, stubber = personalize
    cp.expect_fresh_provisioning(stubber, filters=FILTERS)
    result, sleeps = provision(client, s3, filters=FILTERS)
    stubber.assert_no_pending_responses()
    assert result.filter_arns == {
        "unwatched": cp.filter_arn("unwatched"),
        "exclude_interacted": cp.filter_arn("exclude_interacted"),
    }
    assert [(step.name, step.action, step.note) for step in filter_steps(result)] == [
        ("videos-unwatched", "create", ""),
        ("videos-exclude_interacted", "create", ""),
    ]
    assert sleeps == [7] * 5  # one more round: the filters were pending once


def test_a_second_run_reuses_the_filters_and_creates_nothing(personalize, s3):
    client, stubber = personalize
    cp.expect_fresh_provisioning(stubber, filters=FILTERS)
    provision(client, s3, filters=FILTERS)
    cp.expect_idempotent_rerun(stubber, filters=FILTERS)
    result, sleeps = provision(client, s3, filters=FILTERS)
    stubber.assert_no_pending_responses()  # and Stubber saw no create_filter
    assert actions(result)["filter"] == ["reuse", "reuse"]
    assert result.filter_arns == {name: cp.filter_arn(name) for name in FILTERS}
    assert sleeps == []


def test_an_existing_filter_with_the_same_expression_spaced_otherwise_is_just_reused(
    personalize, s3
):
    client, stubber = personalize
    respaced = 'EXCLUDE ItemID   WHERE Interactions.EVENT_TYPE IN ( "watched" )'
    cp.expect_idempotent_rerun(
        stubber, filters=FILTERS, existing_filters={**FILTERS, "unwatched": respaced}
    )
    result, _sleeps = provision(client, s3, filters=FILTERS)
    assert [step.note for step in filter_steps(result)] == ["", ""]


def test_an_existing_filter_with_another_expression_is_reused_and_said_to_differ(personalize, s3):
    client, stubber = personalize
    old = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")'
    cp.expect_idempotent_rerun(
        stubber, filters=FILTERS, existing_filters={**FILTERS, "unwatched": old}
    )
    result, _sleeps = provision(client, s3, filters=FILTERS)
    stubber.assert_no_pending_responses()
    differing = filter_steps(result)[0]
    assert (differing.name, differing.action) == ("videos-unwatched", "reuse")
    assert "exists with another expression" in differing.note
    assert old in differing.note and cp.UNWATCHED in differing.note
    assert "cannot be updated" in differing.note
    assert "recs personalize teardown --all" in differing.note
    assert "rename 'unwatched' in [filters]" in differing.note
    assert result.filter_arns["unwatched"] == cp.filter_arn("unwatched")


def test_dry_run_from_nothing_plans_the_filters_without_creating_them(personalize, s3):
    client, stubber = personalize
    stubber.add_response("list_dataset_groups", {"datasetGroups": []}, {})
    stubber.add_response("list_schemas", {"schemas": []}, {})
    stubber.add_response("list_schemas", {"schemas": []}, {})
    result, sleeps = provision(client, s3, filters=FILTERS, dry_run=True)
    stubber.assert_no_pending_responses()  # nothing listed under a group yet to be made
    assert [(step.name, step.action, step.arn) for step in filter_steps(result)] == [
        ("videos-unwatched", "create", ""),
        ("videos-exclude_interacted", "create", ""),
    ]
    assert result.filter_arns == {}
    assert sleeps == []


def test_dry_run_in_an_existing_group_only_reads_the_filters(personalize, s3):
    client, stubber = personalize
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
    existing = [
        {"name": f"{cp.NAME}-exclude_interacted", "filterArn": cp.filter_arn("exclude_interacted")}
    ]
    stubber.add_response("list_filters", {"Filters": existing}, {"datasetGroupArn": cp.group_arn()})
    stubber.add_response("list_filters", {"Filters": existing}, {"datasetGroupArn": cp.group_arn()})
    stubber.add_response(
        "describe_filter",
        {
            "filter": {
                "filterArn": cp.filter_arn("exclude_interacted"),
                "filterExpression": cp.DEFAULT_FILTERS["exclude_interacted"],
            }
        },
        {"filterArn": cp.filter_arn("exclude_interacted")},
    )
    stubber.add_response(
        "list_event_trackers", {"eventTrackers": []}, {"datasetGroupArn": cp.group_arn()}
    )
    for slug in cp.DATASETS:
        stubber.add_response(
            "list_dataset_import_jobs",
            {"datasetImportJobs": []},
            {"datasetArn": cp.dataset_arn(slug)},
        )
    for _recipe in cp.RECIPES:
        stubber.add_response(
            "list_solutions", {"solutions": []}, {"datasetGroupArn": cp.group_arn()}
        )
    result, _sleeps = provision(client, s3, filters=FILTERS, dry_run=True)
    stubber.assert_no_pending_responses()
    assert [(step.name, step.action) for step in filter_steps(result)] == [
        ("videos-unwatched", "create"),
        ("videos-exclude_interacted", "reuse"),
    ]


def test_a_filter_that_fails_to_become_active_stops_with_personalize_s_reason(personalize, s3):
    client, stubber = personalize
    cp.expect_dataset_group(stubber, exists=True)
    cp.expect_schemas(stubber, exists=True)
    cp.expect_datasets(stubber, exists=True)
    stubber.add_response("list_filters", {"Filters": []}, {"datasetGroupArn": cp.group_arn()})
    stubber.add_response(
        "create_filter",
        {"filterArn": cp.filter_arn("unwatched")},
        {
            "name": "videos-unwatched",
            "datasetGroupArn": cp.group_arn(),
            "filterExpression": cp.UNWATCHED,
        },
    )
    stubber.add_response(
        "describe_filter",
        {
            "filter": {
                "filterArn": cp.filter_arn("unwatched"),
                "status": "CREATE FAILED",
                "failureReason": "Dataset Items has no field GENRES",
            }
        },
        {"filterArn": cp.filter_arn("unwatched")},
    )
    with pytest.raises(ProvisioningError, match="filter videos-unwatched is CREATE FAILED: Data"):
        provision(client, s3, filters={"unwatched": cp.UNWATCHED})


@pytest.mark.parametrize(
    ("filters", "error", "message"),
    [
        (
            {
                "unwatched": cp.UNWATCHED,
                "bad": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("x"',
            },
            FilterError,
            r"filter 'bad' at character 53: expected ',' or '\)'",
        ),
        ({"bad": "INCLUDE ItemID WHERE Users.AGE > 3"}, FilterError, "filter 'bad' at character"),
        (
            {f"f{i}": cp.UNWATCHED for i in range(MAX_FILTERS + 1)},
            ValueError,
            r"\[filters\]: 11 filters .* at most 10",
        ),
        ({"not watched": cp.UNWATCHED}, ValueError, r"\[filters\] 'not watched': .*letters"),
        ({"u" * 60: cp.UNWATCHED}, ValueError, r"is 67 characters, at most 63"),
    ],
)
def test_filters_personalize_would_refuse_stop_provisioning_before_any_call(
    personalize, s3, filters, error, message
):
    client, _stubber = personalize  # nothing stubbed: any call would fail differently
    with pytest.raises(error, match=message):
        provision(client, s3, filters=filters)
    assert s3.list_objects_v2(Bucket=cp.BUCKET).get("KeyCount") == 0  # nothing uploaded


def test_ten_filters_are_accepted(personalize, s3):
    client, stubber = personalize
    filters = {f"f{i}": cp.UNWATCHED for i in range(MAX_FILTERS)}
    cp.expect_dataset_group(stubber, exists=True)
    cp.expect_schemas(stubber, exists=True)
    cp.expect_datasets(stubber, exists=True)
    cp.expect_filters(stubber, filters, existing=filters)
    cp.expect_event_tracker(stubber, exists=True)
    stubber.add_client_error("list_dataset_import_jobs", "AccessDeniedException", "stop here")
    with pytest.raises(Exception, match="stop here"):
        provision(client, s3, filters=filters)
    stubber.assert_no_pending_responses()
