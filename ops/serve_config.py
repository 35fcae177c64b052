"""Writes the `recs serve --config` file that points the server at the campaigns and filters.

An existing file is updated, not replaced: its `[server]` table, `[filters]`, other backends'
sections and extra `[personalize]` keys (timeouts, filter ARNs of other filters) are kept.
The same file says which filters to provision (`filters_to_provision`), so the filters the
server accepts and the ones Personalize holds come from one place.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from recs.backends.filtering import FilterSet
from recs.backends.personalize.config import FILTER_ARNS_KEY, PersonalizeBackendConfig
from recs.config import ConfigError, load_config


def filters_to_provision(path: Path) -> dict[str, str]:
    """Filter name -> expression of every filter the serve config at `path` serves.

    That is its `[filters]` and its default filter: the built-in `exclude_interacted` unless
    `[server] default_filter` names another filter of `[filters]` or is "" (none). Without
    the file, only the built-in default filter. Raises ValueError (recs.config.ConfigError)
    naming the key or the filter and the position of a bad expression.
    """
    if not path.exists():
        filters = FilterSet.from_expressions({})
    else:
        config = load_config(path)
        try:
            filters = config.filter_set()
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return {name: found.expression for name, found in filters.filters.items()}


def write_serve_config(
    path: Path,
    personalize: Mapping[str, Any],
    *,
    catalog: Path | None = None,
) -> dict[str, Any]:
    """Merge `personalize` into the file's `[personalize]` table, select that backend.

    `filter_arns` is merged key by key, so ARNs of filters provisioned elsewhere stay. The
    merged section is validated like the server will, before anything is written; the file
    is replaced atomically. Returns the document written.
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
    for key, value in personalize.items():
        if key == FILTER_ARNS_KEY and isinstance(section.get(key), dict):
            section[key] = {**section[key], **value}
        else:
            section[key] = value
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
