"""S3 locations, content-addressed uploads and listings, shared by provisioning and catalog.

Uploads are idempotent: each object carries the SHA-256 of its content in its metadata,
and a file whose hash matches the object already there is not sent again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

SHA256_METADATA_KEY = "sha256"
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class S3Location:
    """A bucket and a key (or key prefix)."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        """`s3://bucket/key`, the form Personalize's dataLocation takes."""
        return f"s3://{self.bucket}/{self.key}"

    def child(self, name: str) -> S3Location:
        """The object `name` under this prefix."""
        prefix = self.key.strip("/")
        return S3Location(self.bucket, f"{prefix}/{name}" if prefix else name)


def parse_s3_uri(uri: str) -> S3Location:
    """`s3://bucket/some/prefix/` -> S3Location; a clear ValueError for anything else."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"{uri!r} is not an S3 URI like s3://bucket/prefix/")
    return S3Location(parsed.netloc, parsed.path.lstrip("/"))


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Upload:
    """One local file and where it lives in S3; `changed` tells whether it had to be sent."""

    path: Path
    location: S3Location
    sha256: str
    changed: bool


def stored_sha256(s3: Any, location: S3Location) -> str | None:
    """The content hash recorded on an object by `upload_if_changed`, None if none/absent."""
    try:
        head = s3.head_object(Bucket=location.bucket, Key=location.key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return head.get("Metadata", {}).get(SHA256_METADATA_KEY)


def upload_if_changed(
    s3: Any,
    path: Path,
    location: S3Location,
    *,
    dry_run: bool = False,
    on_bytes: Callable[[int], None] | None = None,
) -> Upload:
    """Upload `path` to `location` unless the same content is already there.

    With `dry_run` only the comparison happens. `on_bytes` receives transfer progress.
    """
    sha256 = file_sha256(path)
    changed = stored_sha256(s3, location) != sha256
    if changed and not dry_run:
        s3.upload_file(
            str(path),
            location.bucket,
            location.key,
            ExtraArgs={"Metadata": {SHA256_METADATA_KEY: sha256}, "ContentType": "text/csv"},
            Callback=on_bytes,
        )
    return Upload(path, location, sha256, changed)


def list_objects(
    s3: Any, location: S3Location, *, page_size: int = 1000
) -> Iterator[dict[str, Any]]:
    """Every object under the prefix `location.key` (S3's `Contents` entries), page by page.

    `page_size` is the number of keys per ListObjectsV2 request (S3's maximum is 1000).
    """
    paginator = s3.get_paginator("list_objects_v2")
    pages = paginator.paginate(
        Bucket=location.bucket,
        Prefix=location.key,
        PaginationConfig={"PageSize": page_size},
    )
    for page in pages:
        yield from page.get("Contents", [])
