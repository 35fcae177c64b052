"""No test reaches real AWS: fake credentials, no profile, no endpoint from the environment.

The conftest of every test package that builds boto3 clients (tests/backends/personalize,
tests/ops) imports `fake_aws_environment`, which then applies to each of its tests. Runtime
clients point at a closed loopback port unless a test gives its own endpoint; Stubber and
moto intercept calls before anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterator

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
    "AWS_ENDPOINT_URL_PERSONALIZE_EVENTS",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
)


@pytest.fixture(scope="package", autouse=True)
def fake_aws_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fake credentials and region; no config files, no instance metadata lookups.

    Package-scoped, so clients made by class-scoped fixtures (the contract suite) see it
    too; tests change it further with the function-scoped `monkeypatch`.
    """
    missing = tmp_path_factory.getbasetemp() / "no-such-aws-file"
    with pytest.MonkeyPatch.context() as patch:
        for name in _AWS_VARIABLES:
            patch.delenv(name, raising=False)
        patch.setenv("AWS_CONFIG_FILE", str(missing))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(missing))
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield
