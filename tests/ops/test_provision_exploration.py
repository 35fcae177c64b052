"""The User-Personalization campaign's item exploration (`campaignConfig.itemExplorationConfig`)
from the local engine's `[local] exploration_weight` and `exploration_item_age_cutoff`, on
Stubber: created with it, updated when it differs, never sent to the other campaigns."""

from __future__ import annotations

import math

import pytest

from recs.ops.plan import (
    DEFAULT_EXPLORATION_AGE_CUTOFF,
    DEFAULT_EXPLORATION_WEIGHT,
    decimal_text,
    item_exploration_config,
)
from recs.ops.serve_config import exploration_to_provision
from tests.ops import control_plane as cp
from tests.ops.test_provisioning import actions, provision

UP_CAMPAIGN = f"{cp.NAME}-{cp.USER_PERSONALIZATION}"


def exploration(weight: str, cutoff: str) -> dict[str, str]:
    return {"explorationWeight": weight, "explorationItemAgeCutOff": cutoff}


def record_calls(client, operation: str) -> list[dict]:
    """The parameters of every `operation` call the client makes (before Stubber answers)."""
    calls: list[dict] = []
    client.meta.events.register(
        f"provide-client-params.personalize.{operation}",
        lambda params, **_: calls.append(dict(params)),
    )
    return calls


def campaign_steps(result):
    return {step.name: step for step in result.steps if step.kind == "campaign"}


def expect_up_to_campaigns(stubber) -> None:
    """A re-run with the same data, up to (not including) the campaigns."""
    cp.expect_dataset_group(stubber, exists=True)
    cp.expect_schemas(stubber, exists=True)
    cp.expect_datasets(stubber, exists=True)
    cp.expect_event_tracker(stubber, exists=True)
    cp.expect_import_jobs(stubber, existing=cp.DATASETS)
    cp.expect_solutions(stubber, exists=True)
    cp.expect_versions(stubber, train=False)


# a first run -------------------------------------------------------------------------


def test_only_the_user_personalization_campaign_is_created_with_the_exploration(personalize, s3):
    client, stubber = personalize
    created = record_calls(client, "CreateCampaign")
    cp.expect_fresh_provisioning(stubber)  # Stubber checks each create_campaign exactly
    provision(client, s3)
    stubber.assert_no_pending_responses()
    configs = {call["name"]: call.get("campaignConfig") for call in created}
    assert configs == {
        UP_CAMPAIGN: {
            "itemExplorationConfig": {"explorationWeight": "0.3", "explorationItemAgeCutOff": "30"}
        },
        f"{cp.NAME}-sims": None,
        f"{cp.NAME}-popularity-count": None,
        f"{cp.NAME}-trending-now": None,
        f"{cp.NAME}-personalized-ranking": None,
    }


@pytest.mark.parametrize(
    ("weight", "cutoff", "sent"),
    [
        (0.3, 30.0, exploration("0.3", "30")),
        (0.0, 1, exploration("0", "1")),
        (1, 90.0, exploration("1", "90")),
        (0.25, 7.5, exploration("0.25", "7.5")),
    ],
)
def test_the_request_s_values_are_sent_without_float_noise(personalize, s3, weight, cutoff, sent):
    client, stubber = personalize
    cp.expect_fresh_provisioning(stubber, exploration=sent)
    result, _sleeps = provision(
        client, s3, exploration_weight=weight, exploration_item_age_cutoff=cutoff
    )
    stubber.assert_no_pending_responses()
    assert campaign_steps(result)[UP_CAMPAIGN].action == "create"


def test_the_defaults_are_the_local_engine_s_and_personalize_s():
    assert (DEFAULT_EXPLORATION_WEIGHT, DEFAULT_EXPLORATION_AGE_CUTOFF) == (0.3, 30)
    assert item_exploration_config(0.3, 30) == cp.EXPLORATION
    local = pytest.importorskip("recs.backends.local.exploration")
    assert local.DEFAULT_WEIGHT == DEFAULT_EXPLORATION_WEIGHT
    assert local.DEFAULT_AGE_CUTOFF_DAYS == DEFAULT_EXPLORATION_AGE_CUTOFF


@pytest.mark.parametrize(
    ("value", "text"), [(0.3, "0.3"), (30.0, "30"), (1, "1"), (0.0, "0"), (7.5, "7.5")]
)
def test_numbers_are_written_as_decimals_without_trailing_noise(value, text):
    assert decimal_text(value) == text


# re-runs -----------------------------------------------------------------------------


def test_a_rerun_with_the_same_exploration_updates_nothing(personalize, s3):
    client, stubber = personalize
    cp.expect_idempotent_rerun(stubber)  # Stubber refuses any update_campaign
    result, sleeps = provision(client, s3)
    stubber.assert_no_pending_responses()
    assert actions(result)["campaign"] == ["reuse"] * 5
    assert sleeps == []


def test_the_same_numbers_spelt_otherwise_are_the_same_exploration(personalize, s3):
    client, stubber = personalize
    cp.expect_idempotent_rerun(stubber, existing_exploration=exploration("0.30", "30.0"))
    result, _sleeps = provision(client, s3)
    stubber.assert_no_pending_responses()
    assert actions(result)["campaign"] == ["reuse"] * 5


def test_a_rerun_with_another_weight_updates_the_campaign_and_waits(personalize, s3):
    client, stubber = personalize
    updates = record_calls(client, "UpdateCampaign")
    cp.expect_idempotent_rerun(
        stubber, exploration=exploration("0.5", "30"), existing_exploration=cp.EXPLORATION
    )
    result, _sleeps = provision(client, s3, exploration_weight=0.5)
    stubber.assert_no_pending_responses()
    assert updates == [
        {
            "campaignArn": cp.campaign_arn(cp.USER_PERSONALIZATION),
            "campaignConfig": {"itemExplorationConfig": exploration("0.5", "30")},
        }
    ]  # no solutionVersionArn: the campaign keeps its version
    steps = campaign_steps(result)
    assert steps[UP_CAMPAIGN].action == "update"
    assert steps[UP_CAMPAIGN].change == (
        "itemExplorationConfig explorationWeight 0.3, explorationItemAgeCutOff 30 ->"
        " explorationWeight 0.5, explorationItemAgeCutOff 30"
    )
    assert steps[UP_CAMPAIGN].note == ""
    assert [s.action for name, s in steps.items() if name != UP_CAMPAIGN] == ["reuse"] * 4


def test_an_update_in_progress_is_polled_until_active(personalize, s3):
    client, stubber = personalize
    expect_up_to_campaigns(stubber)
    cp.expect_campaigns(
        stubber,
        exists=True,
        exploration=exploration("0.8", "30"),
        update_polls=["UPDATE PENDING", "UPDATE IN_PROGRESS", "ACTIVE"],
    )
    result, sleeps = provision(client, s3, exploration_weight=0.8)
    stubber.assert_no_pending_responses()
    assert campaign_steps(result)[UP_CAMPAIGN].action == "update"
    assert sleeps == [7, 7]


def test_a_campaign_created_without_exploration_is_given_it(personalize, s3):
    client, stubber = personalize
    cp.expect_idempotent_rerun(stubber, existing_exploration=None)
    result, _sleeps = provision(client, s3)
    stubber.assert_no_pending_responses()
    step = campaign_steps(result)[UP_CAMPAIGN]
    assert step.action == "update"
    assert step.change.startswith("itemExplorationConfig none (Personalize's defaults) ->")


def test_a_new_version_and_a_new_exploration_are_one_update(personalize, s3, tmp_path):
    client, stubber = personalize
    updates = record_calls(client, "UpdateCampaign")
    cp.expect_dataset_group(stubber, exists=True)
    cp.expect_schemas(stubber, exists=True)
    cp.expect_datasets(stubber, exists=True)
    cp.expect_event_tracker(stubber, exists=True)
    cp.expect_import_jobs(stubber, existing=cp.DATASETS)
    cp.expect_solutions(stubber, exists=True)
    cp.expect_versions(stubber, train=False)  # the newest usable one is v1
    cp.expect_campaigns(
        stubber, exists=True, serving="v0", version="v1", exploration=exploration("0.1", "30")
    )
    result, _sleeps = provision(client, s3, exploration_weight=0.1)
    stubber.assert_no_pending_responses()
    assert len(updates) == 5  # every campaign moves to v1 ...
    by_arn = {call["campaignArn"]: call for call in updates}
    assert by_arn[cp.campaign_arn(cp.USER_PERSONALIZATION)] == {
        "campaignArn": cp.campaign_arn(cp.USER_PERSONALIZATION),
        "solutionVersionArn": cp.version_arn(cp.USER_PERSONALIZATION, "v1"),
        "campaignConfig": {"itemExplorationConfig": exploration("0.1", "30")},
    }  # ... and the User-Personalization one changes its exploration in the same call
    others = [
        call for arn, call in by_arn.items() if arn != cp.campaign_arn(cp.USER_PERSONALIZATION)
    ]
    assert all("campaignConfig" not in call for call in others)
    assert campaign_steps(result)[UP_CAMPAIGN].change == (
        "solution version v0 -> v1; itemExplorationConfig explorationWeight 0.3,"
        " explorationItemAgeCutOff 30 -> explorationWeight 0.1, explorationItemAgeCutOff 30"
    )


def test_an_update_keeps_the_rest_of_the_campaign_config(personalize, s3):
    client, stubber = personalize
    expect_up_to_campaigns(stubber)
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
        campaign = {
            "campaignArn": cp.campaign_arn(recipe),
            "status": "ACTIVE",
            "solutionVersionArn": cp.version_arn(recipe),
        }
        if recipe == cp.USER_PERSONALIZATION:
            campaign["campaignConfig"] = {
                "itemExplorationConfig": cp.EXPLORATION,
                "enableMetadataWithRecommendations": True,
            }
        stubber.add_response(
            "describe_campaign", {"campaign": campaign}, {"campaignArn": cp.campaign_arn(recipe)}
        )
        if recipe == cp.USER_PERSONALIZATION:
            stubber.add_response(
                "update_campaign",
                {"campaignArn": cp.campaign_arn(recipe)},
                {
                    "campaignArn": cp.campaign_arn(recipe),
                    "campaignConfig": {
                        "itemExplorationConfig": exploration("0", "30"),
                        "enableMetadataWithRecommendations": True,
                    },
                },
            )
    for recipe in cp.RECIPES:
        stubber.add_response(
            "describe_campaign",
            {"campaign": {"campaignArn": cp.campaign_arn(recipe), "status": "ACTIVE"}},
            {"campaignArn": cp.campaign_arn(recipe)},
        )
    provision(client, s3, exploration_weight=0)
    stubber.assert_no_pending_responses()


def test_a_dry_run_only_reads_and_plans_the_update(personalize, s3):
    client, stubber = personalize
    cp.expect_idempotent_rerun(
        stubber,
        exploration=exploration("0.6", "45"),
        existing_exploration=cp.EXPLORATION,
        dry_run=True,
    )  # Stubber refuses update_campaign and every create_*
    result, sleeps = provision(
        client, s3, dry_run=True, exploration_weight=0.6, exploration_item_age_cutoff=45
    )
    stubber.assert_no_pending_responses()
    step = campaign_steps(result)[UP_CAMPAIGN]
    assert step.action == "update"
    assert step.change.endswith("-> explorationWeight 0.6, explorationItemAgeCutOff 45")
    assert sleeps == []


# bad values --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"exploration_weight": 1.5}, r"exploration weight 1\.5: use a number from 0"),
        ({"exploration_weight": -0.1}, r"exploration weight -0\.1"),
        ({"exploration_weight": math.nan}, r"exploration weight nan"),
        ({"exploration_item_age_cutoff": 0.5}, r"item age cutoff 0\.5: .* at least 1"),
        ({"exploration_item_age_cutoff": 0}, r"item age cutoff 0:"),
        ({"exploration_item_age_cutoff": math.inf}, r"item age cutoff inf"),
    ],
)
def test_a_value_personalize_refuses_stops_before_any_call(personalize, s3, options, message):
    client, _stubber = personalize  # nothing stubbed: any call would fail differently
    with pytest.raises(ValueError, match=message):
        provision(client, s3, **options)
    assert s3.list_objects_v2(Bucket=cp.BUCKET).get("KeyCount") == 0  # nothing uploaded


# the serve config's [local] exploration_weight / exploration_item_age_cutoff ------------


def test_the_exploration_comes_from_the_serve_config_s_local_section(tmp_path):
    path = tmp_path / "serve.toml"
    assert exploration_to_provision(path) == (0.3, 30.0)  # no file
    path.write_text("[server]\nport = 6000\n")
    assert exploration_to_provision(path) == (0.3, 30.0)  # no section
    path.write_text("[local]\nexploration_weight = 0.5\n")
    assert exploration_to_provision(path) == (0.5, 30.0)  # one key
    path.write_text("[local]\nexploration_weight = 1\nexploration_item_age_cutoff = 7\n")
    assert exploration_to_provision(path) == (1.0, 7.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "[local]\nexploration_weight = 1.2\n",
            r"\[local\] exploration_weight: exploration weight 1\.2",
        ),
        ("[local]\nexploration_weight = -1\n", r"\[local\] exploration_weight: "),
        ('[local]\nexploration_weight = "0.3"\n', r"\[local\] exploration_weight: .*'0\.3'"),
        ("[local]\nexploration_weight = true\n", r"\[local\] exploration_weight: "),
        ("[local]\nexploration_weight = nan\n", r"\[local\] exploration_weight: "),
        (
            "[local]\nexploration_item_age_cutoff = 0.5\n",
            r"\[local\] exploration_item_age_cutoff: .* at least 1",
        ),
        ("[local]\nexploration_item_age_cutoff = 0\n", r"\[local\] exploration_item_age_cutoff: "),
        ('[local]\nexploration_item_age_cutoff = "30"\n', r"\[local\] exploration_item_age_cutoff"),
        ("[local]\nexploration_item_age_cutoff = inf\n", r"\[local\] exploration_item_age_cutoff"),
        ("[local\n", "not valid TOML"),
    ],
)
def test_a_bad_exploration_value_in_the_serve_config_is_named(tmp_path, content, message):
    path = tmp_path / "serve.toml"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as caught:
        exploration_to_provision(path)
    assert str(path) in str(caught.value)
