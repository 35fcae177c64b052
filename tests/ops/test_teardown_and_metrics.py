"""`teardown` (children before parents, each level waited for) and `metrics`, on Stubber."""

from __future__ import annotations

import io
from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber
from rich.console import Console

from recs.ops.resources import ProvisioningError
from recs.ops.solution_metrics import collect_metrics
from recs.ops.teardown import Teardown
from recs.ops.waiting import Waiter
from tests.ops import control_plane as cp

QUIET = Console(file=io.StringIO())


@pytest.fixture
def personalize() -> Iterator[tuple[object, Stubber]]:
    client = boto3.client("personalize", region_name="us-east-1", endpoint_url="http://127.0.0.1:1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def teardown(client, *, everything=False, dry_run=False):
    waiter = Waiter(client, poll_interval=5, console=QUIET, sleep=lambda _s: None)
    return Teardown(client, waiter, dry_run=dry_run).run(cp.NAME, everything=everything)


def expect_inventory(
    stubber: Stubber, *, campaign_status: str = "ACTIVE", recommenders: tuple[str, ...] = ()
) -> None:
    """The group, its solutions (one per recipe, Trending-Now's included), one campaign
    each, and the group's recommenders (none unless `recommenders` names use cases)."""
    stubber.add_response(
        "list_dataset_groups",
        {"datasetGroups": [{"name": cp.NAME, "datasetGroupArn": cp.group_arn()}]},
        {},
    )
    stubber.add_response(
        "list_solutions",
        {
            "solutions": [
                {"name": f"{cp.NAME}-{recipe}", "solutionArn": cp.solution_arn(recipe)}
                for recipe in cp.RECIPES
            ]
        },
        {"datasetGroupArn": cp.group_arn()},
    )
    for recipe in cp.RECIPES:
        stubber.add_response(
            "list_campaigns",
            {
                "campaigns": [
                    {
                        "name": f"{cp.NAME}-{recipe}",
                        "campaignArn": cp.campaign_arn(recipe),
                        "status": campaign_status,
                    }
                ]
            },
            {"solutionArn": cp.solution_arn(recipe)},
        )
    cp.expect_recommender_listing(stubber, recommenders)


# delete method -> (describe method, its response key, the ARN parameter)
DELETIONS = {
    "delete_campaign": ("describe_campaign", "campaign", "campaignArn"),
    "delete_recommender": ("describe_recommender", "recommender", "recommenderArn"),
    "delete_solution": ("describe_solution", "solution", "solutionArn"),
    "delete_filter": ("describe_filter", "filter", "filterArn"),
    "delete_event_tracker": ("describe_event_tracker", "eventTracker", "eventTrackerArn"),
    "delete_dataset": ("describe_dataset", "dataset", "datasetArn"),
    "delete_dataset_group": ("describe_dataset_group", "datasetGroup", "datasetGroupArn"),
}


def expect_deleted(stubber: Stubber, method: str, arns: list[str], *, polls_before_gone=0):
    """Delete calls for `arns`, then the Waiter's polls until each describe is a 404."""
    describe, key, arn_field = DELETIONS[method]
    for arn in arns:
        stubber.add_response(method, {}, {arn_field: arn})
    for _ in range(polls_before_gone):
        for arn in arns:
            answer = {key: {arn_field: arn, "status": "DELETE IN_PROGRESS"}}
            stubber.add_response(describe, answer, {arn_field: arn})
    for arn in arns:
        stubber.add_client_error(
            describe, "ResourceNotFoundException", "gone", 404, expected_params={arn_field: arn}
        )


def test_default_teardown_deletes_only_the_campaigns_and_waits_for_them(personalize):
    client, stubber = personalize
    expect_inventory(stubber)
    campaigns = [cp.campaign_arn(recipe) for recipe in cp.RECIPES]
    expect_deleted(
        stubber,
        "delete_campaign",
        campaigns,
        polls_before_gone=1,
    )
    steps = teardown(client)
    assert [(step.kind, step.action) for step in steps] == [("campaign", "delete")] * 5
    assert cp.campaign_arn(cp.TRENDING) in [step.arn for step in steps]


def test_campaigns_already_being_deleted_are_only_waited_for(personalize):
    client, stubber = personalize
    expect_inventory(stubber, campaign_status="DELETE PENDING")
    for recipe in cp.RECIPES:
        stubber.add_client_error(
            "describe_campaign",
            "ResourceNotFoundException",
            expected_params={"campaignArn": cp.campaign_arn(recipe)},
        )
    steps = teardown(client)
    assert {step.action for step in steps} == {"deleting"}


def expect_filter_listing(stubber: Stubber, names: list[str], status: str = "ACTIVE") -> None:
    """The group's filters, whatever their names."""
    stubber.add_response(
        "list_filters",
        {
            "Filters": [
                {"name": f"{cp.NAME}-{name}", "filterArn": cp.filter_arn(name), "status": status}
                for name in names
            ]
        },
        {"datasetGroupArn": cp.group_arn()},
    )


def expect_tracker_listing(stubber: Stubber, names: list[str], status: str = "ACTIVE") -> None:
    """The group's event trackers (one at most on Personalize), whatever their names."""
    stubber.add_response(
        "list_event_trackers",
        {
            "eventTrackers": [
                {"name": name, "eventTrackerArn": cp.tracker_arn(name), "status": status}
                for name in names
            ]
        },
        {"datasetGroupArn": cp.group_arn()},
    )


def test_teardown_all_deletes_children_before_parents_then_schemas(personalize):
    client, stubber = personalize
    expect_inventory(stubber)
    expect_deleted(
        stubber,
        "delete_campaign",
        [cp.campaign_arn(recipe) for recipe in cp.RECIPES],
    )
    expect_deleted(
        stubber,
        "delete_solution",
        [cp.solution_arn(recipe) for recipe in cp.RECIPES],
    )
    expect_filter_listing(stubber, ["exclude_interacted", "unwatched"])
    expect_deleted(
        stubber,
        "delete_filter",
        [cp.filter_arn("exclude_interacted"), cp.filter_arn("unwatched")],
        polls_before_gone=1,
    )
    expect_tracker_listing(stubber, [cp.TRACKER_NAME])
    expect_deleted(stubber, "delete_event_tracker", [cp.tracker_arn()], polls_before_gone=1)
    stubber.add_response(
        "list_datasets",
        {
            "datasets": [
                {"name": f"{cp.NAME}-{slug}", "datasetArn": cp.dataset_arn(slug)}
                for slug in cp.DATASETS
            ]
        },
        {"datasetGroupArn": cp.group_arn()},
    )
    expect_deleted(
        stubber,
        "delete_dataset",
        [cp.dataset_arn(slug) for slug in cp.DATASETS],
        polls_before_gone=1,
    )
    expect_deleted(
        stubber,
        "delete_dataset_group",
        [cp.group_arn()],
    )
    for slug in cp.DATASETS:
        stubber.add_response(
            "list_schemas",
            {"schemas": [{"name": f"{cp.NAME}-{slug}", "schemaArn": cp.schema_arn(slug)}]},
            {},
        )
    for slug in cp.DATASETS:
        stubber.add_response("delete_schema", {}, {"schemaArn": cp.schema_arn(slug)})
    steps = teardown(client, everything=True)
    assert [step.kind for step in steps] == (
        ["campaign"] * 5
        + ["solution"] * 5
        + ["filter"] * 2
        + ["event tracker"]
        + ["dataset"] * 2
        + ["dataset group"]
        + ["schema"] * 2
    )
    filters = [(step.name, step.action) for step in steps if step.kind == "filter"]
    assert filters == [("videos-exclude_interacted", "delete"), ("videos-unwatched", "delete")]


def test_filters_already_being_deleted_are_only_waited_for(personalize):
    client, stubber = personalize
    stubber.add_response(
        "list_dataset_groups",
        {"datasetGroups": [{"name": cp.NAME, "datasetGroupArn": cp.group_arn()}]},
        {},
    )
    stubber.add_response("list_solutions", {"solutions": []}, {"datasetGroupArn": cp.group_arn()})
    cp.expect_recommender_listing(stubber)
    expect_filter_listing(stubber, ["unwatched"], status="DELETE PENDING")
    stubber.add_client_error(
        "describe_filter",
        "ResourceNotFoundException",
        expected_params={"filterArn": cp.filter_arn("unwatched")},
    )
    expect_tracker_listing(stubber, [])
    stubber.add_response("list_datasets", {"datasets": []}, {"datasetGroupArn": cp.group_arn()})
    expect_deleted(stubber, "delete_dataset_group", [cp.group_arn()])
    stubber.add_response("list_schemas", {"schemas": []}, {})
    stubber.add_response("list_schemas", {"schemas": []}, {})
    steps = teardown(client, everything=True)
    assert [(step.kind, step.action) for step in steps] == [
        ("filter", "deleting"),
        ("dataset group", "delete"),
    ]


def test_teardown_dry_run_lists_what_would_go_without_deleting(personalize):
    client, stubber = personalize
    expect_inventory(stubber)
    expect_filter_listing(stubber, ["exclude_interacted"])
    expect_tracker_listing(stubber, [cp.TRACKER_NAME])
    stubber.add_response("list_datasets", {"datasets": []}, {"datasetGroupArn": cp.group_arn()})
    stubber.add_response("list_schemas", {"schemas": []}, {})
    stubber.add_response("list_schemas", {"schemas": []}, {})
    steps = teardown(client, everything=True, dry_run=True)  # Stubber refuses delete_* calls
    assert [step.kind for step in steps] == (
        ["campaign"] * 5 + ["solution"] * 5 + ["filter", "event tracker"] + ["dataset group"]
    )


def test_a_tracker_of_another_name_goes_too_and_one_being_deleted_is_waited_for(personalize):
    client, stubber = personalize
    stubber.add_response(
        "list_dataset_groups",
        {"datasetGroups": [{"name": cp.NAME, "datasetGroupArn": cp.group_arn()}]},
        {},
    )
    stubber.add_response("list_solutions", {"solutions": []}, {"datasetGroupArn": cp.group_arn()})
    cp.expect_recommender_listing(stubber)
    expect_filter_listing(stubber, [])
    expect_tracker_listing(stubber, ["made-by-hand"], status="DELETE PENDING")
    stubber.add_client_error(
        "describe_event_tracker",
        "ResourceNotFoundException",
        expected_params={"eventTrackerArn": cp.tracker_arn("made-by-hand")},
    )
    stubber.add_response("list_datasets", {"datasets": []}, {"datasetGroupArn": cp.group_arn()})
    expect_deleted(stubber, "delete_dataset_group", [cp.group_arn()])
    stubber.add_response("list_schemas", {"schemas": []}, {})
    stubber.add_response("list_schemas", {"schemas": []}, {})
    steps = teardown(client, everything=True)
    assert [(step.kind, step.name, step.action) for step in steps] == [
        ("event tracker", "made-by-hand", "deleting"),
        ("dataset group", cp.NAME, "delete"),
    ]


def test_default_teardown_keeps_the_event_tracker(personalize):
    client, stubber = personalize
    expect_inventory(stubber)
    expect_deleted(stubber, "delete_campaign", [cp.campaign_arn(recipe) for recipe in cp.RECIPES])
    steps = teardown(client)  # Stubber refuses list_event_trackers: nothing stubbed
    assert {step.kind for step in steps} == {"campaign"}


def test_teardown_of_an_unknown_name_deletes_nothing(personalize):
    client, stubber = personalize
    stubber.add_response("list_dataset_groups", {"datasetGroups": []}, {})
    assert teardown(client) == []


def test_metrics_of_the_newest_active_version_of_each_solution(personalize):
    client, stubber = personalize
    stubber.add_response(
        "list_dataset_groups",
        {"datasetGroups": [{"name": cp.NAME, "datasetGroupArn": cp.group_arn()}]},
        {},
    )
    for index, recipe in enumerate(cp.RECIPES):
        listed = [{"name": f"{cp.NAME}-{recipe}", "solutionArn": cp.solution_arn(recipe)}]
        stubber.add_response(
            "list_solutions",
            {"solutions": listed if recipe != "sims" else []},
            {"datasetGroupArn": cp.group_arn()},
        )
        if recipe == "sims":
            continue
        versions = [
            {
                "solutionVersionArn": cp.version_arn(recipe, "v1"),
                "status": "ACTIVE",
                "creationDateTime": cp.T0,
            },
            {
                "solutionVersionArn": cp.version_arn(recipe, "v2"),
                "status": "ACTIVE",
                "creationDateTime": cp.T0.replace(day=2),
            },
            {
                "solutionVersionArn": cp.version_arn(recipe, "v3"),
                "status": "CREATE IN_PROGRESS",
                "creationDateTime": cp.T0.replace(day=3),
            },
        ]
        if recipe == "personalized-ranking":
            versions = versions[2:]
        stubber.add_response(
            "list_solution_versions",
            {"solutionVersions": versions},
            {"solutionArn": cp.solution_arn(recipe)},
        )
        if recipe != "personalized-ranking":
            stubber.add_response(
                "get_solution_metrics",
                {
                    "solutionVersionArn": cp.version_arn(recipe, "v2"),
                    "metrics": {"coverage": 0.1 * (index + 1), "precision_at_25": 0.01},
                },
                {"solutionVersionArn": cp.version_arn(recipe, "v2")},
            )
    results = collect_metrics(client, cp.NAME)
    assert [(r.recipe, r.status) for r in results] == [
        ("user-personalization", "ACTIVE"),
        ("sims", "missing"),
        ("popularity-count", "ACTIVE"),
        ("trending-now", "ACTIVE"),
        ("personalized-ranking", "no ACTIVE version"),
    ]
    assert results[0].metrics == {"coverage": 0.1, "precision_at_25": 0.01}
    assert results[2].version_arn == cp.version_arn("popularity-count", "v2")


def test_metrics_of_an_unknown_name_is_an_error(personalize):
    client, stubber = personalize
    stubber.add_response("list_dataset_groups", {"datasetGroups": []}, {})
    with pytest.raises(ProvisioningError, match="no dataset group named videos"):
        collect_metrics(client, cp.NAME)


def test_default_teardown_deletes_the_recommenders_with_the_campaigns(personalize):
    client, stubber = personalize
    use_cases = tuple(cp.USE_CASES)
    expect_inventory(stubber, recommenders=use_cases)
    campaigns = [cp.campaign_arn(recipe) for recipe in cp.RECIPES]
    recommenders = [cp.recommender_arn(use_case) for use_case in use_cases]
    for arn in campaigns:
        stubber.add_response("delete_campaign", {}, {"campaignArn": arn})
    for arn in recommenders:
        stubber.add_response("delete_recommender", {}, {"recommenderArn": arn})
    # one level: campaigns and recommenders are waited for together, round by round
    for arn in campaigns:
        answer = {"campaign": {"campaignArn": arn, "status": "DELETE IN_PROGRESS"}}
        stubber.add_response("describe_campaign", answer, {"campaignArn": arn})
    for arn in recommenders:
        answer = {"recommender": {"recommenderArn": arn, "status": "DELETE IN_PROGRESS"}}
        stubber.add_response("describe_recommender", answer, {"recommenderArn": arn})
    for arn in campaigns:
        stubber.add_client_error(
            "describe_campaign", "ResourceNotFoundException", expected_params={"campaignArn": arn}
        )
    for arn in recommenders:
        stubber.add_client_error(
            "describe_recommender",
            "ResourceNotFoundException",
            expected_params={"recommenderArn": arn},
        )
    steps = teardown(client)
    assert [(step.kind, step.action) for step in steps] == [("campaign", "delete")] * 5 + [
        ("recommender", "delete")
    ] * 5
    assert [step.name for step in steps if step.kind == "recommender"] == [
        f"{cp.NAME}-{use_case}" for use_case in use_cases
    ]


def test_teardown_of_a_vod_group_only_waits_for_recommenders_being_deleted(personalize):
    client, stubber = personalize
    stubber.add_response(
        "list_dataset_groups",
        {"datasetGroups": [{"name": cp.NAME, "datasetGroupArn": cp.group_arn()}]},
        {},
    )
    stubber.add_response("list_solutions", {"solutions": []}, {"datasetGroupArn": cp.group_arn()})
    cp.expect_recommender_listing(stubber, ("top-picks",), status="DELETE PENDING")
    stubber.add_client_error(
        "describe_recommender",
        "ResourceNotFoundException",
        expected_params={"recommenderArn": cp.recommender_arn("top-picks")},
    )
    steps = teardown(client)  # Stubber refuses delete_recommender
    assert [(step.kind, step.action) for step in steps] == [("recommender", "deleting")]


def test_teardown_dry_run_lists_the_recommenders_without_deleting(personalize):
    client, stubber = personalize
    expect_inventory(stubber, recommenders=tuple(cp.USE_CASES))
    steps = teardown(client, dry_run=True)
    assert [step.kind for step in steps] == ["campaign"] * 5 + ["recommender"] * 5
