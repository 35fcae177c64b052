"""`recs personalize ...` end to end through the CLI, with stubbed Personalize and moto S3."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from recs.backends.personalize.backend import PersonalizeBackend
from recs.backends.registry import create_backend
from recs.cli import personalize as personalize_cli
from recs.cli.main import main
from recs.config import create_configured_backend, load_config
from tests.ops import control_plane as cp


@pytest.fixture
def stubbed(monkeypatch) -> Iterator[Stubber]:
    """`make_client` hands out a stubbed personalize client and a moto S3 client."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=cp.BUCKET)
        personalize = boto3.client(
            "personalize", region_name="us-east-1", endpoint_url="http://127.0.0.1:1"
        )
        clients = {"personalize": personalize, "s3": s3}
        monkeypatch.setattr(
            personalize_cli, "make_client", lambda service, _region: clients[service]
        )
        with Stubber(personalize) as stubber:
            yield stubber
            stubber.assert_no_pending_responses()


def provision_args(config_out, *extra: str) -> list[str]:
    return [
        "personalize", "provision",
        "--data", str(cp.FIXTURE_DATASET),
        "--bucket", cp.BUCKET,
        "--prefix", cp.PREFIX,
        "--name", cp.NAME,
        "--role-arn", cp.ROLE_ARN,
        "--config-out", str(config_out),
        "--poll-interval", "0",
        *extra,
    ]  # fmt: skip


def test_provision_writes_a_serve_config_the_server_accepts(stubbed, tmp_path, capsys):
    cp.expect_fresh_provisioning(stubbed, filters=cp.DEFAULT_FILTERS)
    config_path = tmp_path / "serve.toml"
    config_path.write_text("[server]\nport = 6000\n[personalize]\nread_timeout = 2.5\n")
    assert main(provision_args(config_path)) == 0
    assert "provisioned videos: 5 campaigns and 1 filters ACTIVE" in capsys.readouterr().out
    config = load_config(config_path)
    assert config.backend == "personalize"
    assert config.server.port == 6000  # the rest of the file is kept
    assert config.catalog == cp.FIXTURE_DATASET / "items.csv"
    backend = create_backend(config.backend, config.backend_section())
    assert isinstance(backend, PersonalizeBackend)
    assert backend.config.read_timeout == 2.5
    assert backend.config.region == "us-east-1"
    for recipe, key in cp.RECIPES.items():
        assert getattr(backend.config, key) == cp.campaign_arn(recipe)
    # the default filter, exclude_interacted, is a Personalize filter with its ARN
    assert backend.config.filter_arns == {"exclude_interacted": cp.filter_arn("exclude_interacted")}
    # PutEvents and PutItems: the tracker's id and the Items dataset
    assert backend.config.event_tracking_id == cp.TRACKING_ID
    assert backend.config.items_dataset_arn == cp.dataset_arn("items")
    configured = create_configured_backend(config)
    assert configured.filters.default is not None
    assert configured.filters.default.name == "exclude_interacted"


def test_provision_creates_the_filters_of_the_serve_config_and_merges_their_arns(stubbed, tmp_path):
    config_path = tmp_path / "serve.toml"
    kept = "arn:aws:personalize:us-east-1:123456789012:filter/elsewhere"
    config_path.write_text(
        '[server]\ndefault_filter = ""\n'
        f"[filters]\nunwatched = '{cp.UNWATCHED}'\n"
        f'[personalize.filter_arns]\nelsewhere = "{kept}"\n'
    )
    cp.expect_fresh_provisioning(stubbed, filters={"unwatched": cp.UNWATCHED})
    assert main(provision_args(config_path)) == 0
    document = tomllib.loads(config_path.read_text())
    assert document["personalize"]["filter_arns"] == {
        "elsewhere": kept,
        "unwatched": cp.filter_arn("unwatched"),
    }
    assert document["filters"] == {"unwatched": cp.UNWATCHED}  # kept as it was
    assert document["server"] == {"default_filter": ""}


def test_provision_again_rewrites_the_same_event_keys_and_keeps_the_events_endpoint(
    stubbed, tmp_path
):
    config_path = tmp_path / "serve.toml"
    config_path.write_text(
        '[personalize]\nevents_endpoint_url = "http://127.0.0.1:9"\nevent_tracking_id = "stale"\n'
    )
    cp.expect_idempotent_rerun(stubbed, filters=cp.DEFAULT_FILTERS)
    assert main(provision_args(config_path)) == 0
    section = tomllib.loads(config_path.read_text())["personalize"]
    assert section["event_tracking_id"] == cp.TRACKING_ID
    assert section["items_dataset_arn"] == cp.dataset_arn("items")
    assert section["events_endpoint_url"] == "http://127.0.0.1:9"


def test_provision_of_another_default_filter_does_not_add_the_built_in_one(stubbed, tmp_path):
    config_path = tmp_path / "serve.toml"
    config_path.write_text(
        f"[server]\ndefault_filter = 'unwatched'\n[filters]\nunwatched = '{cp.UNWATCHED}'\n"
    )
    cp.expect_fresh_provisioning(stubbed, filters={"unwatched": cp.UNWATCHED})
    assert main(provision_args(config_path)) == 0
    arns = tomllib.loads(config_path.read_text())["personalize"]["filter_arns"]
    assert arns == {"unwatched": cp.filter_arn("unwatched")}


def test_provision_refuses_a_bad_filter_expression_before_any_call(stubbed, tmp_path, capsys):
    config_path = tmp_path / "serve.toml"
    config_path.write_text("[filters]\nrecent = 'EXCLUDE ItemID WHERE Items.GENRE IN'\n")
    assert main(provision_args(config_path)) == 1  # Stubber: no call was made
    err = capsys.readouterr().err
    assert "[filters]: filter 'recent' at character" in err
    assert "filter_arns" not in config_path.read_text()


def test_provision_says_when_a_filter_exists_with_another_expression(stubbed, tmp_path, capsys):
    config_path = tmp_path / "serve.toml"
    old = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")'
    cp.expect_idempotent_rerun(
        stubbed, filters=cp.DEFAULT_FILTERS, existing_filters={"exclude_interacted": old}
    )
    assert main(provision_args(config_path)) == 0
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "warning: filter videos-exclude_interacted exists with another expression" in out
    assert "recs personalize teardown --all" in out


def test_provision_dry_run_prints_the_plan_and_writes_nothing(stubbed, tmp_path, capsys):
    stubbed.add_response("list_dataset_groups", {"datasetGroups": []}, {})
    stubbed.add_response("list_schemas", {"schemas": []}, {})
    stubbed.add_response("list_schemas", {"schemas": []}, {})
    config_path = tmp_path / "serve.toml"
    assert main(provision_args(config_path, "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "plan (dry run)" in out
    assert "dry run of videos: 24 create, 2 upload" in out
    assert not config_path.exists()


def test_provision_reports_aws_refusals_without_a_traceback(stubbed, tmp_path, capsys):
    stubbed.add_client_error(
        "list_dataset_groups", "AccessDeniedException", "not allowed", 400, expected_params={}
    )
    assert main(provision_args(tmp_path / "serve.toml")) == 1
    assert (
        "AWS refused ListDatasetGroups: AccessDeniedException: not allowed"
        in capsys.readouterr().err
    )


def test_metrics_json(stubbed, capsys):
    stubbed.add_response(
        "list_dataset_groups",
        {"datasetGroups": [{"name": cp.NAME, "datasetGroupArn": cp.group_arn()}]},
        {},
    )
    for _recipe in cp.RECIPES:
        stubbed.add_response(
            "list_solutions", {"solutions": []}, {"datasetGroupArn": cp.group_arn()}
        )
    assert main(["personalize", "metrics", "--name", cp.NAME, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [entry["status"] for entry in printed] == ["missing"] * 5


def test_teardown_needs_confirmation_when_not_interactive(stubbed, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["personalize", "teardown", "--name", cp.NAME]) == 1
    assert "nothing deleted" in capsys.readouterr().out


def test_teardown_with_yes_runs(stubbed, capsys):
    stubbed.add_response("list_dataset_groups", {"datasetGroups": []}, {})
    assert main(["personalize", "teardown", "--name", cp.NAME, "--yes"]) == 0
    assert "deleted 0 resources" in capsys.readouterr().out


def test_serve_config_keeps_other_sections_and_is_valid_toml(tmp_path):
    from recs.ops.serve_config import write_serve_config

    path = tmp_path / "serve.toml"
    path.write_text('backend = "local"\n[local]\nmodel_dir = "m"\n')
    write_serve_config(path, {"region": "eu-west-1"}, catalog=None)
    document = tomllib.loads(path.read_text())
    assert document == {
        "backend": "personalize",
        "local": {"model_dir": "m"},
        "personalize": {"region": "eu-west-1"},
    }


def test_serve_config_refuses_keys_the_backend_would_reject(tmp_path):
    from recs.ops.serve_config import write_serve_config

    path = tmp_path / "serve.toml"
    path.write_text("[personalize]\ncampaign = 1\n")
    with pytest.raises(ValueError, match="campaign"):
        write_serve_config(path, {"region": "eu-west-1"})
    assert path.read_text() == "[personalize]\ncampaign = 1\n"


def test_provision_takes_the_trend_interval_of_the_serve_config(stubbed, tmp_path):
    """`[local] trend_interval` becomes Trending-Now's trend discovery frequency."""
    config_path = tmp_path / "serve.toml"
    config_path.write_text('[server]\ndefault_filter = ""\n[local]\ntrend_interval = "1d"\n')
    cp.expect_fresh_provisioning(stubbed, frequency="1 day")
    assert main(provision_args(config_path)) == 0
    stubbed.assert_no_pending_responses()


def test_provision_takes_the_exploration_of_the_serve_config(stubbed, tmp_path):
    """`[local] exploration_weight` and `exploration_item_age_cutoff` become the
    User-Personalization campaign's itemExplorationConfig."""
    config_path = tmp_path / "serve.toml"
    config_path.write_text(
        '[server]\ndefault_filter = ""\n'
        "[local]\nexploration_weight = 0.5\nexploration_item_age_cutoff = 14\n"
    )
    cp.expect_fresh_provisioning(
        stubbed, exploration={"explorationWeight": "0.5", "explorationItemAgeCutOff": "14"}
    )
    assert main(provision_args(config_path)) == 0
    stubbed.assert_no_pending_responses()


def test_provision_refuses_a_bad_exploration_value_before_any_call(stubbed, tmp_path, capsys):
    config_path = tmp_path / "serve.toml"
    config_path.write_text("[local]\nexploration_weight = 3\n")
    assert main(provision_args(config_path)) == 1  # Stubber: no call was made
    err = capsys.readouterr().err
    assert "[local] exploration_weight: exploration weight 3: use a number from 0" in err
    assert "[personalize]" not in config_path.read_text()


def test_provision_updates_the_campaign_when_the_exploration_changed_and_says_so(
    stubbed, tmp_path, capsys
):
    config_path = tmp_path / "serve.toml"
    config_path.write_text('[server]\ndefault_filter = ""\n[local]\nexploration_weight = 0.1\n')
    cp.expect_idempotent_rerun(
        stubbed, exploration={"explorationWeight": "0.1", "explorationItemAgeCutOff": "30"}
    )  # the campaign explores with the defaults: update_campaign, then a wait
    assert main(provision_args(config_path)) == 0
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert (
        "campaign videos-user-personalization: update itemExplorationConfig explorationWeight"
        " 0.3, explorationItemAgeCutOff 30 -> explorationWeight 0.1, explorationItemAgeCutOff 30"
    ) in out
    assert "(1 update, 22 reuse, 2 upload)" in out


def test_provision_dry_run_says_it_would_update_the_exploration(stubbed, tmp_path, capsys):
    config_path = tmp_path / "serve.toml"
    config_path.write_text(
        '[server]\ndefault_filter = ""\n[local]\nexploration_item_age_cutoff = 60\n'
    )
    cp.expect_idempotent_rerun(
        stubbed,
        exploration={"explorationWeight": "0.3", "explorationItemAgeCutOff": "60"},
        dry_run=True,
    )  # reads only: Stubber refuses update_campaign
    assert main(provision_args(config_path, "--dry-run")) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "campaign videos-user-personalization: would update itemExplorationConfig" in out
    assert "dry run of videos: 1 update, 22 reuse, 2 upload" in out


def test_cli_writes_the_recommender_arns_the_server_config_accepts(stubbed, tmp_path, capsys):
    vod_dir = cp.write_vod_dataset(tmp_path / "vod")
    cp.expect_fresh_vod_provisioning(stubbed, vod_dir, filters=cp.DEFAULT_FILTERS)
    config_path = tmp_path / "serve.toml"
    args = provision_args(config_path, "--domain", "video-on-demand")
    args[args.index("--data") + 1] = str(vod_dir)
    assert main(args) == 0
    assert "provisioned videos: 5 recommenders and 1 filters ACTIVE" in capsys.readouterr().out
    document = tomllib.loads(config_path.read_text())
    assert document["personalize"]["recommender_arns"] == {
        key: cp.recommender_arn(use_case) for use_case, key in cp.USE_CASES.items()
    }


def test_cli_refuses_data_without_the_domain_before_any_call(stubbed, tmp_path, capsys):
    config_path = tmp_path / "serve.toml"
    assert main(provision_args(config_path, "--domain", "video-on-demand")) == 1
    assert "run `recs prepare --domain video-on-demand` first" in " ".join(
        capsys.readouterr().err.split()
    )
    assert not config_path.exists()
