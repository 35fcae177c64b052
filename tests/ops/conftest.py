"""Every test here runs with fake AWS credentials and no way to reach real AWS (tests/aws.py).

`s3` is moto's S3 with the test bucket; `personalize` a control-plane client answering only
what a test stubs (moto has no Personalize filters, solutions or campaigns).
"""

from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from tests.aws import fake_aws_environment  # noqa: F401
from tests.ops import control_plane as cp


@pytest.fixture
def s3() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=cp.BUCKET)
        yield client


@pytest.fixture
def personalize() -> Iterator[tuple[object, Stubber]]:
    client = boto3.client("personalize", region_name="us-east-1", endpoint_url="http://127.0.0.1:1")
    with Stubber(client) as stubber:
        yield client, stubber
