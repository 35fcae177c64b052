"""`recs catalog --from-s3`: a catalog CSV from the listing of video objects (moto S3)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from moto import mock_aws

from recs.cli.main import main
from recs.cli.personalize import make_client
from recs.ops.s3 import S3Location
from recs.ops.s3_catalog import CatalogError, build_catalog, public_url
from recs.server.catalog import Catalog

BUCKET = "short-videos"
VIDEOS = ["shortVideos/1001.mp4", "shortVideos/1002.mp4", "shortVideos/deep/1003.mp4"]
OTHERS = ["shortVideos/1001.jpg", "shortVideos/readme.txt", "elsewhere/9.mp4"]


@pytest.fixture
def s3() -> Iterator[object]:
    with mock_aws():
        client = make_client("s3", "eu-west-1")  # as `recs catalog` makes it
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        for key in VIDEOS + OTHERS:
            client.put_object(Bucket=BUCKET, Key=key, Body=b"video")
        yield client


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


def test_public_style_urls_one_row_per_video(s3, tmp_path):
    out = tmp_path / "catalog.csv"
    summary = build_catalog(s3, S3Location(BUCKET, "shortVideos/"), out)
    assert (summary.items, summary.skipped) == (3, 2)
    assert read_rows(out) == [
        {
            "ITEM_ID": "1001",
            "TITLE": "",
            "URL": f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/shortVideos/1001.mp4",
        },
        {
            "ITEM_ID": "1002",
            "TITLE": "",
            "URL": f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/shortVideos/1002.mp4",
        },
        {
            "ITEM_ID": "1003",
            "TITLE": "",
            "URL": f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/shortVideos/deep/1003.mp4",
        },
    ]


def test_the_server_loads_the_catalog_it_writes(s3, tmp_path):
    out = tmp_path / "catalog.csv"
    build_catalog(s3, S3Location(BUCKET, "shortVideos/"), out, base_url="https://cdn.example.com/")
    entry = Catalog.load(out).get("1002")
    assert entry.url == "https://cdn.example.com/shortVideos/1002.mp4"
    assert entry.title == ""


def test_presigned_urls_are_signed_for_the_object_and_lifetime(s3, tmp_path):
    out = tmp_path / "catalog.csv"
    build_catalog(s3, S3Location(BUCKET, "shortVideos/1001"), out, presign_seconds=900)
    [row] = read_rows(out)
    url = urlparse(row["URL"])
    query = parse_qs(url.query)
    assert url.path.endswith("/shortVideos/1001.mp4")
    assert query["X-Amz-Expires"] == ["900"]
    assert "X-Amz-Signature" in query


def test_keys_are_url_quoted():
    assert (
        public_url("b", "us-east-1", "shortVideos/a b+c.mp4")
        == "https://b.s3.us-east-1.amazonaws.com/shortVideos/a%20b%2Bc.mp4"
    )


def test_two_objects_with_the_same_item_id_are_an_error_naming_both(s3, tmp_path):
    s3.put_object(Bucket=BUCKET, Key="shortVideos/other/1001.mp4", Body=b"")
    with pytest.raises(CatalogError, match=r"1001\.mp4 and s3://short-videos/shortVideos/other"):
        build_catalog(s3, S3Location(BUCKET, "shortVideos/"), tmp_path / "c.csv")
    assert not (tmp_path / "c.csv").exists()


def test_presign_lifetime_beyond_sigv4_limit_is_refused(s3, tmp_path):
    with pytest.raises(CatalogError, match="1 to 604800 seconds"):
        build_catalog(s3, S3Location(BUCKET, ""), tmp_path / "c.csv", presign_seconds=604801)


def test_command_writes_the_file_and_a_summary_line(s3, tmp_path, capsys):
    out = tmp_path / "catalog.csv"
    status = main(
        [
            "catalog",
            "--from-s3",
            f"s3://{BUCKET}/shortVideos/",
            "--out",
            str(out),
            "--region",
            "eu-west-1",
        ]
    )
    assert status == 0
    assert [row["ITEM_ID"] for row in read_rows(out)] == ["1001", "1002", "1003"]
    assert "3 videos" in capsys.readouterr().out


def test_command_rejects_a_non_s3_uri(tmp_path, capsys):
    status = main(["catalog", "--from-s3", "/local/dir", "--out", str(tmp_path / "c.csv")])
    assert status == 1
    assert "not an S3 URI" in capsys.readouterr().err
