"""The parts of provisioning moto emulates: S3 objects and Personalize schemas."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from recs.ops import resources as res
from recs.ops.provisioning import ensure_schema
from recs.ops.resources import ProvisioningError
from recs.ops.s3 import (
    S3Location,
    list_objects,
    parse_s3_uri,
    stored_sha256,
    upload_if_changed,
)
from tests.ops.control_plane import schema_text

BUCKET = "videos-data"


@pytest.fixture
def aws() -> Iterator[tuple[object, object]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield s3, boto3.client("personalize", region_name="us-east-1")


def test_upload_sends_new_content_once_and_records_its_hash(aws, tmp_path):
    s3, _ = aws
    path = tmp_path / "interactions.csv"
    path.write_text("USER_ID,ITEM_ID,TIMESTAMP\nu1,v1,1\n")
    location = S3Location(BUCKET, "data/interactions.csv")
    first = upload_if_changed(s3, path, location)
    again = upload_if_changed(s3, path, location)
    assert (first.changed, again.changed) == (True, False)
    body = s3.get_object(Bucket=BUCKET, Key="data/interactions.csv")["Body"].read()
    assert body == path.read_bytes()
    assert stored_sha256(s3, location) == first.sha256
    path.write_text("USER_ID,ITEM_ID,TIMESTAMP\nu1,v2,2\n")
    changed = upload_if_changed(s3, path, location)
    assert changed.changed and changed.sha256 != first.sha256
    assert stored_sha256(s3, location) == changed.sha256


def test_upload_dry_run_compares_without_sending(aws, tmp_path):
    s3, _ = aws
    path = tmp_path / "items.csv"
    path.write_text("ITEM_ID\nv1\n")
    planned = upload_if_changed(s3, path, S3Location(BUCKET, "items.csv"), dry_run=True)
    assert planned.changed
    assert stored_sha256(s3, S3Location(BUCKET, "items.csv")) is None


def test_listing_returns_every_object_under_the_prefix_across_pages(aws):
    s3, _ = aws
    keys = [f"shortVideos/{index}.mp4" for index in range(5)] + ["other/x.mp4"]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"")
    location = S3Location(BUCKET, "shortVideos/")
    listed = [entry["Key"] for entry in list_objects(s3, location, page_size=2)]
    assert listed == keys[:-1]  # three pages


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/shortVideos/", S3Location("bucket", "shortVideos/")),
        ("s3://bucket", S3Location("bucket", "")),
    ],
)
def test_s3_uris_are_parsed(uri, expected):
    assert parse_s3_uri(uri) == expected


def test_child_locations_join_prefix_and_name():
    assert S3Location("b", "data/v1/").child("a.csv").uri == "s3://b/data/v1/a.csv"
    assert S3Location("b", "").child("a.csv").uri == "s3://b/a.csv"


@pytest.mark.parametrize("uri", ["https://bucket/x", "bucket/x", "s3:///x"])
def test_other_uris_are_rejected_clearly(uri):
    with pytest.raises(ValueError, match="not an S3 URI"):
        parse_s3_uri(uri)


def test_schema_is_created_then_reused_by_name(aws):
    _, personalize = aws
    text = schema_text("interactions")
    arn, action = ensure_schema(personalize, "videos-interactions", text)
    assert action == "create"
    assert res.describe(personalize, res.SCHEMA, arn)["name"] == "videos-interactions"
    assert ensure_schema(personalize, "videos-interactions", text) == (arn, "reuse")
    assert [s["name"] for s in res.list_all(personalize, res.SCHEMA)] == ["videos-interactions"]


def test_schema_dry_run_creates_nothing(aws):
    _, personalize = aws
    assert ensure_schema(personalize, "videos-items", schema_text("items"), dry_run=True) == (
        None,
        "create",
    )
    assert res.find_by_name(personalize, res.SCHEMA, "videos-items") is None


def test_a_schema_of_the_same_name_with_other_fields_is_refused(aws):
    _, personalize = aws
    ensure_schema(personalize, "videos-interactions", schema_text("interactions"))
    with pytest.raises(ProvisioningError, match="already exists with other fields"):
        ensure_schema(personalize, "videos-interactions", schema_text("items"))


def test_deleted_schema_describes_as_gone(aws):
    _, personalize = aws
    arn, _ = ensure_schema(personalize, "videos-items", schema_text("items"))
    res.delete(personalize, res.SCHEMA, arn)
    assert res.describe(personalize, res.SCHEMA, arn) is None
