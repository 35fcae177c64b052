"""Writes the `recs serve --config` file that points the server at the campaigns.

An existing file is updated, not replaced: its `[server]` table, other backends'
sections and extra `[personalize]` keys (filters, timeouts) are kept.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from recs.backends.personalize.config import PersonalizeBackendConfig


def write_serve_config(
    path: Path,
    personalize: Mapping[str, str],
    *,
    catalog: Path | None = None,
) -> dict[str, Any]:
    """Merge `personalize` into the file's `[personalize]` table, select that backend.

    The merged section is validated like the server will, before anything is written;
    the file is replaced atomically. Returns the document written.
    """
    document: dict[str, Any] = {}
    if path.exists():
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML ({exc}); fix or remove it") from exc
    document["backend"] = "personalize"
    if catalog is not None:
        document["catalog"] = str(catalog)
    section = dict(document.get("personalize", {}))
    section.update(personalize)
    PersonalizeBackendConfig.model_validate(section)
    document["personalize"] = section
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            tomli_w.dump(document, stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return document
