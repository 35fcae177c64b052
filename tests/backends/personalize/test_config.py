"""The `[personalize]` section and the runtime client it configures."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from recs.backends.errors import BackendMisconfiguredError
from recs.backends.personalize.backend import PersonalizeBackend
from recs.backends.personalize.client import create_events_client, create_runtime_client
from recs.backends.personalize.config import PersonalizeBackendConfig
from recs.backends.registry import create_backend
from tests.backends.personalize.runtime_helpers import CAMPAIGNS


def test_defaults_need_nothing_but_give_no_campaigns():
    config = PersonalizeBackendConfig()
    assert config.user_personalization_campaign_arn is None
    assert (config.retry_mode, config.max_attempts) == ("standard", 3)
    assert config.anonymous_user_id == "anonymous"
    assert config.endpoint() is None


def test_unknown_keys_are_rejected_by_name():
    with pytest.raises(ValidationError) as caught:
        PersonalizeBackendConfig.model_validate({"similar_campaign_arn": "arn:aws:personalize:x"})
    assert caught.value.errors()[0]["loc"] == ("similar_campaign_arn",)


def test_registry_builds_the_backend_and_reports_bad_keys_clearly():
    backend = create_backend("personalize", {"region": "eu-west-1", **CAMPAIGNS})
    assert isinstance(backend, PersonalizeBackend)
    assert backend.config.region == "eu-west-1"
    with pytest.raises(BackendMisconfiguredError, match=r"\[personalize\] campaign_arn: Extra"):
        create_backend("personalize", {"campaign_arn": "x"})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("user_personalization_campaign_arn", "not-an-arn"),
        ("similar_items_campaign_arn", "arn:aws:s3:::bucket/key"),
        ("filter_arns", {"unwatched": "arn:aws:personalize:us-east-1:1:" + "x" * 256}),
        ("filter_arns", {"unwatched": "arn:aws:s3:::bucket/key"}),
        ("filter_arns", {"": "arn:aws:personalize:us-east-1:1:filter/x"}),
        ("filter_arns", {"f" * 64: "arn:aws:personalize:us-east-1:1:filter/x"}),
        ("retry_mode", "fast"),
        ("max_attempts", 0),
        ("max_concurrency", 0),
        ("read_timeout", 0),
        ("endpoint_url", "localhost:8080"),
        ("anonymous_user_id", ""),
        ("event_tracking_id", ""),
        ("event_tracking_id", "t" * 257),
        ("items_dataset_arn", "not-an-arn"),
        ("items_dataset_arn", "arn:aws:s3:::bucket/key"),
        ("events_endpoint_url", "localhost:8080"),
    ],
)
def test_invalid_values_are_rejected_naming_the_key(key, value):
    with pytest.raises(ValidationError) as caught:
        PersonalizeBackendConfig.model_validate({key: value})
    assert caught.value.errors()[0]["loc"][0] == key


def test_filter_arns_map_filter_names_to_arns():
    arn = "arn:aws:personalize:us-east-1:123456789012:filter/videos-unwatched"
    config = PersonalizeBackendConfig.model_validate({"filter_arns": {"unwatched": arn}})
    assert config.filter_arns == {"unwatched": arn}
    assert PersonalizeBackendConfig().filter_arns == {}


def test_a_bad_filter_arn_is_reported_naming_the_filter():
    with pytest.raises(
        BackendMisconfiguredError, match=r"\[personalize\] filter_arns\.unwatched: "
    ):
        create_backend("personalize", {"filter_arns": {"unwatched": "not-an-arn"}})


@pytest.mark.parametrize(
    "key",
    [
        "user_personalization_filter_arn",
        "similar_items_filter_arn",
        "popularity_filter_arn",
        "personalized_ranking_filter_arn",
    ],
)
def test_the_per_rpc_filter_keys_are_gone(key):
    with pytest.raises(ValidationError) as caught:
        PersonalizeBackendConfig.model_validate({key: "arn:aws:personalize:us-east-1:1:filter/x"})
    assert caught.value.errors()[0]["loc"] == (key,)


def test_client_gets_timeouts_retries_pool_and_endpoint_from_config():
    config = PersonalizeBackendConfig(
        region="eu-west-1",
        endpoint_url="http://127.0.0.1:1",
        connect_timeout=1.5,
        read_timeout=4,
        retry_mode="adaptive",
        max_attempts=5,
        max_concurrency=7,
    )
    client = create_runtime_client(config)
    settings = client.meta.config
    assert (settings.connect_timeout, settings.read_timeout) == (1.5, 4)
    assert settings.retries == {"mode": "adaptive", "total_max_attempts": 5}
    assert settings.max_pool_connections == 7
    assert client.meta.endpoint_url == "http://127.0.0.1:1"
    assert client.meta.region_name == "eu-west-1"


def test_standard_endpoint_variable_points_the_client_elsewhere(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME", "http://127.0.0.1:2")
    client = create_runtime_client(PersonalizeBackendConfig(region="us-east-1"))
    assert client.meta.endpoint_url == "http://127.0.0.1:2"


def test_start_creates_one_client_and_close_is_idempotent():
    backend = PersonalizeBackend(PersonalizeBackendConfig(endpoint_url="http://127.0.0.1:1"))
    backend.start()
    backend.close()
    backend.close()


def test_event_keys_default_to_unset_and_take_a_tracker_and_a_dataset():
    config = PersonalizeBackendConfig()
    assert (config.event_tracking_id, config.items_dataset_arn) == (None, None)
    assert config.events_endpoint() is None
    items = "arn:aws:personalize:us-east-1:123456789012:dataset/videos/ITEMS"
    config = PersonalizeBackendConfig(
        event_tracking_id="b5c0a7e4-0f3a-4d34",
        items_dataset_arn=items,
        events_endpoint_url="http://127.0.0.1:9/",
    )
    assert config.event_tracking_id == "b5c0a7e4-0f3a-4d34"
    assert config.items_dataset_arn == items
    assert config.events_endpoint() == "http://127.0.0.1:9"


def test_events_client_gets_the_runtime_settings_and_its_own_endpoint():
    config = PersonalizeBackendConfig(
        region="eu-west-1",
        endpoint_url="http://127.0.0.1:1",
        events_endpoint_url="http://127.0.0.1:3",
        connect_timeout=1.5,
        read_timeout=4,
        retry_mode="adaptive",
        max_attempts=5,
        max_concurrency=7,
    )
    client = create_events_client(config)
    settings = client.meta.config
    assert client.meta.service_model.service_name == "personalize-events"
    assert (settings.connect_timeout, settings.read_timeout) == (1.5, 4)
    assert settings.retries == {"mode": "adaptive", "total_max_attempts": 5}
    assert settings.max_pool_connections == 7
    assert client.meta.endpoint_url == "http://127.0.0.1:3"
    assert client.meta.region_name == "eu-west-1"


def test_events_client_uses_aws_or_the_standard_variable_not_the_runtime_endpoint(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", raising=False)
    config = PersonalizeBackendConfig(region="us-east-1", endpoint_url="http://127.0.0.1:1")
    client = create_events_client(config)
    assert client.meta.endpoint_url == "https://personalize-events.us-east-1.amazonaws.com"
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", "http://127.0.0.1:4")
    assert create_events_client(config).meta.endpoint_url == "http://127.0.0.1:4"
