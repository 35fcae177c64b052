"""Every test here runs with fake AWS credentials and no way to reach real AWS.

Runtime clients point at a closed loopback port unless a test gives its own endpoint;
Stubber and moto intercept calls before anything is sent.
"""

from __future__ import annotations

import pytest

# Variables that could make botocore find real credentials, a profile or an endpoint.
_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_PERSONALIZE",
    "AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
)


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory) -> None:
    """Fake credentials and region; no config files, no instance metadata lookups."""
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    missing = tmp_path_factory.getbasetemp() / "no-such-aws-file"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(missing))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(missing))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
