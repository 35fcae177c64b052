"""The Trending-Now solution and campaign: its trend discovery frequency from the trend
interval ("30m", "1h", "3h", "1d", the local engine's spelling), on Stubber."""

from __future__ import annotations

import pytest

from recs.backends.personalize.config import PersonalizeBackendConfig
from recs.ops.plan import (
    DEFAULT_TREND_INTERVAL,
    TREND_DISCOVERY_FREQUENCIES,
    trend_discovery_frequency,
)
from recs.ops.serve_config import trend_interval_to_provision, write_serve_config
from tests.ops import control_plane as cp
from tests.ops.test_provisioning import provision

TRENDING_KEY = "trending_now_campaign_arn"


def trending_steps(result):
    return [step for step in result.steps if step.name == f"{cp.NAME}-{cp.TRENDING}"]


@pytest.mark.parametrize(
    ("interval", "frequency"),
    [("30m", "30 minutes"), ("1h", "1 hour"), ("3h", "3 hours"), ("1d", "1 day")],
)
def test_the_solution_discovers_trends_at_the_interval_s_frequency(
    personalize, s3, interval, frequency
):
    client, stubber = personalize
    cp.expect_fresh_provisioning(stubber, frequency=frequency)  # create_solution checked
    result, _sleeps = provision(client, s3, trend_interval=interval)
    stubber.assert_no_pending_responses()
    assert result.campaign_arns[TRENDING_KEY] == cp.campaign_arn(cp.TRENDING)
    assert [(step.kind, step.action, step.note) for step in trending_steps(result)] == [
        ("solution", "create", ""),
        ("solution version", "create", ""),
        ("campaign", "create", ""),
    ]


def test_the_default_interval_is_three_hours(personalize, s3):
    client, stubber = personalize
    cp.expect_fresh_provisioning(stubber, frequency="3 hours")
    provision(client, s3)  # no trend_interval given
    stubber.assert_no_pending_responses()
    assert DEFAULT_TREND_INTERVAL == "3h"


def test_the_campaign_is_written_into_the_serve_config(personalize, s3, tmp_path):
    client, stubber = personalize
    cp.expect_fresh_provisioning(stubber)
    result, _sleeps = provision(client, s3)
    keys = result.serve_config_keys()
    assert keys[TRENDING_KEY] == cp.campaign_arn(cp.TRENDING)
    path = tmp_path / "serve.toml"
    document = write_serve_config(path, {"region": "us-east-1", **keys})
    config = PersonalizeBackendConfig.model_validate(document["personalize"])
    assert config.trending_now_campaign_arn == cp.campaign_arn(cp.TRENDING)


def test_a_rerun_reuses_the_solution_after_reading_its_frequency(personalize, s3):
    client, stubber = personalize
    cp.expect_idempotent_rerun(stubber, existing_frequency="1 hour")
    result, _sleeps = provision(client, s3, trend_interval="1h")
    stubber.assert_no_pending_responses()  # and Stubber saw no create_* call
    assert [(step.kind, step.action, step.note) for step in trending_steps(result)] == [
        ("solution", "reuse", ""),
        ("solution version", "reuse", ""),
        ("campaign", "reuse", ""),
    ]


@pytest.mark.parametrize(
    ("existing", "said"),
    [("1 day", "trend discovery frequency '1 day'"), (None, "Personalize's default")],
)
def test_a_solution_with_another_frequency_is_reused_and_said_to_differ(
    personalize, s3, existing, said
):
    client, stubber = personalize
    cp.expect_idempotent_rerun(stubber, existing_frequency=existing)
    result, _sleeps = provision(client, s3, trend_interval="30m")
    stubber.assert_no_pending_responses()  # nothing created, nothing updated
    solution = trending_steps(result)[0]
    assert (solution.kind, solution.action) == ("solution", "reuse")
    assert said in solution.note
    assert "the trend interval '30m' asks '30 minutes'" in solution.note
    assert "recs personalize teardown --all" in solution.note
    others = [step for step in result.steps if step not in trending_steps(result)]
    assert all(step.note == "" for step in others)


def test_dry_run_from_nothing_plans_the_trending_solution_and_campaign(personalize, s3):
    client, stubber = personalize
    stubber.add_response("list_dataset_groups", {"datasetGroups": []}, {})
    stubber.add_response("list_schemas", {"schemas": []}, {})
    stubber.add_response("list_schemas", {"schemas": []}, {})
    result, _sleeps = provision(client, s3, dry_run=True, trend_interval="1d")
    stubber.assert_no_pending_responses()  # only reads
    assert [(step.kind, step.action, step.arn) for step in trending_steps(result)] == [
        ("solution", "create", ""),
        ("solution version", "create", ""),
        ("campaign", "create", ""),
    ]
    assert TRENDING_KEY not in result.serve_config_keys()


@pytest.mark.parametrize("interval", ["2h", "3 hours", "", "3H", "1w"])
def test_an_interval_personalize_has_no_frequency_for_stops_before_any_call(
    personalize, s3, interval
):
    client, _stubber = personalize  # nothing stubbed: any call would fail differently
    with pytest.raises(ValueError, match=r"trend interval .*: use one of 30m, 1h, 3h, 1d"):
        provision(client, s3, trend_interval=interval)
    assert s3.list_objects_v2(Bucket=cp.BUCKET).get("KeyCount") == 0  # nothing uploaded


def test_the_frequencies_are_the_four_personalize_documents():
    assert {trend_discovery_frequency(i) for i in TREND_DISCOVERY_FREQUENCIES} == {
        "30 minutes",
        "1 hour",
        "3 hours",
        "1 day",
    }


def test_the_spelling_is_the_local_engine_s():
    trending = pytest.importorskip("recs.backends.local.trending")
    intervals = getattr(trending, "TREND_INTERVALS", None)
    if intervals is None:
        pytest.skip("the local engine names its trend intervals otherwise")
    assert set(TREND_DISCOVERY_FREQUENCIES) == set(intervals)
    assert trending.DEFAULT_TREND_INTERVAL == DEFAULT_TREND_INTERVAL


# the serve config's [local] trend_interval --------------------------------------------


def test_the_trend_interval_comes_from_the_serve_config_s_local_section(tmp_path):
    path = tmp_path / "serve.toml"
    assert trend_interval_to_provision(path) == "3h"  # no file
    path.write_text("[server]\nport = 6000\n")
    assert trend_interval_to_provision(path) == "3h"  # no key
    path.write_text('[local]\ntrend_interval = "1h"\n')
    assert trend_interval_to_provision(path) == "1h"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[local]\ntrend_interval = "2h"\n', r"\[local\] trend_interval: trend interval '2h'"),
        ("[local]\ntrend_interval = 3\n", r"\[local\] trend_interval must be a string"),
        ("[local\n", "not valid TOML"),
    ],
)
def test_a_bad_trend_interval_in_the_serve_config_is_named(tmp_path, content, message):
    path = tmp_path / "serve.toml"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as caught:
        trend_interval_to_provision(path)
    assert str(path) in str(caught.value)
