"""`recs catalog --from-s3`: the catalog CSV built from a listing of the video objects.

Each `<item_id>.mp4` object under the prefix is one item. The URL is public-style
(`https://<bucket>.s3.<region>.amazonaws.com/<key>`), under `--base-url` (a CDN), or
presigned (temporary, for private buckets). The file uses the prepared dataset's items
columns ITEM_ID,TITLE,URL; titles are unknown from a listing and left empty.
"""

from __future__ import annotations

import csv
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from recs.backends.base import MAX_ID_LENGTH
from recs.ops.s3 import S3Location, list_objects

logger = logging.getLogger(__name__)

CATALOG_COLUMNS = ("ITEM_ID", "TITLE", "URL")
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's limit on presigned URLs


class CatalogError(ValueError):
    """The listing cannot become a catalog; the message names the object key."""


@dataclass(frozen=True, slots=True)
class CatalogSummary:
    """What a catalog build found."""

    items: int
    skipped: int
    path: Path


def public_url(bucket: str, region: str, key: str, base_url: str | None = None) -> str:
    """The public-style URL of an object, or its URL under `base_url` (e.g. a CDN)."""
    quoted = quote(key, safe="/")
    if base_url:
        return f"{base_url.rstrip('/')}/{quoted}"
    return f"https://{bucket}.s3.{region}.amazonaws.com/{quoted}"


def build_catalog(
    s3: Any,
    location: S3Location,
    out: Path,
    *,
    suffix: str = ".mp4",
    presign_seconds: int | None = None,
    base_url: str | None = None,
    on_object: Callable[[], None] | None = None,
) -> CatalogSummary:
    """List `location`, write one catalog row per `*suffix` object to `out` (atomically).

    Objects with another suffix are counted as skipped and logged. Two objects giving the
    same item id, or an id longer than Personalize allows, stop the build with an error.
    """
    if presign_seconds is not None and not 1 <= presign_seconds <= MAX_PRESIGN_SECONDS:
        raise CatalogError(f"presigned URLs last 1 to {MAX_PRESIGN_SECONDS} seconds")
    region = s3.meta.region_name
    rows: dict[str, tuple[str, str]] = {}  # item id -> (key, url)
    skipped = 0
    for entry in list_objects(s3, location):
        if on_object is not None:
            on_object()
        key = entry["Key"]
        if not key.endswith(suffix):
            skipped += 1
            logger.info("skipped %s: not a %s object", key, suffix)
            continue
        item_id = PurePosixPath(key).name[: -len(suffix)]
        if not item_id or len(item_id) > MAX_ID_LENGTH:
            raise CatalogError(
                f"s3://{location.bucket}/{key}: item id must be 1-{MAX_ID_LENGTH} characters"
            )
        if item_id in rows:
            raise CatalogError(
                f"item id {item_id!r} comes from both s3://{location.bucket}/{rows[item_id][0]}"
                f" and s3://{location.bucket}/{key}"
            )
        if presign_seconds is not None:
            url = s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": location.bucket, "Key": key},
                ExpiresIn=presign_seconds,
            )
        else:
            url = public_url(location.bucket, region, key, base_url)
        rows[item_id] = (key, url)
    _write_rows(out, [(item_id, "", url) for item_id, (_key, url) in rows.items()])
    return CatalogSummary(items=len(rows), skipped=skipped, path=out)


def _write_rows(out: Path, rows: list[tuple[str, str, str]]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            writer = csv.writer(stream, lineterminator="\n")
            writer.writerow(CATALOG_COLUMNS)
            writer.writerows(rows)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
