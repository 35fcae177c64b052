"""Every test here runs with fake AWS credentials and no way to reach real AWS (tests/aws.py)."""

from tests.aws import fake_aws_environment  # noqa: F401
