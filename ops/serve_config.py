"""Writes the `recs serve --config` file that points the server at the campaigns and filters.

An existing file is updated, not replaced: its `[server]` table, `[filters]`, other backends'
sections and extra `[personalize]` keys (timeouts, filter ARNs of other filters) are kept.
The same file says which filters to provision (`filters_to_provision`), so the filters the
server accepts and the ones Personalize holds come from one place; likewise its `[local]
trend_interval` is the Trending-Now solution's trend discovery frequency
(`trend_interval_to_provision`), so both engines find trends over the same interval, and its
`[local] exploration_weight` and `exploration_item_age_cutoff` are the User-Personalization
campaign's item exploration (`exploration_to_provision`), so both engines explore new videos
alike.
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
from recs.ops.plan import (
    DEFAULT_EXPLORATION_AGE_CUTOFF,
    DEFAULT_EXPLORATION_WEIGHT,
    DEFAULT_TREND_INTERVAL,
    RECOMMENDER_ARNS_KEY,
    check_exploration_age_cutoff,
    check_exploration_weight,
    trend_discovery_frequency,
)

# Tables of [personalize] merged key by key rather than replaced.
MERGED_KEYS = frozenset({FILTER_ARNS_KEY, RECOMMENDER_ARNS_KEY})

# Keys of [local], the local engine's section, that provisioning reads.
TREND_INTERVAL_KEY = "trend_interval"
EXPLORATION_WEIGHT_KEY = "exploration_weight"
EXPLORATION_AGE_CUTOFF_KEY = "exploration_item_age_cutoff"


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


def _local_section(path: Path) -> dict[str, Any]:
    """The serve config's `[local]` table, read from the TOML itself (not through the
    `[local]` model, so that only the keys asked for matter); empty without the file or the
    table. Raises ValueError naming the file if it is not TOML."""
    if not path.exists():
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc}); fix or remove it") from exc
    local = document.get("local")
    return local if isinstance(local, dict) else {}


def trend_interval_to_provision(path: Path) -> str:
    """The serve config's `[local] trend_interval` ("30m", "1h", "3h" or "1d"), or the
    default "3h" without the file or the key.

    Raises ValueError naming the file and the key for a value Personalize has no trend
    discovery frequency for, or a file that is not TOML.
    """
    value = _local_section(path).get(TREND_INTERVAL_KEY)
    if value is None:
        return DEFAULT_TREND_INTERVAL
    if not isinstance(value, str):
        raise ValueError(f'{path}: [local] {TREND_INTERVAL_KEY} must be a string like "3h"')
    try:
        trend_discovery_frequency(value)
    except ValueError as exc:
        raise ValueError(f"{path}: [local] {TREND_INTERVAL_KEY}: {exc}") from None
    return value


def exploration_to_provision(path: Path) -> tuple[float, float]:
    """(weight, cutoff_days): the serve config's `[local] exploration_weight` (0 to 1,
    default 0.3) and `exploration_item_age_cutoff` (days, at least 1, default 30), each
    defaulted without the file or the key.

    Raises ValueError naming the file and the key for a value out of range or not a number
    (Personalize's minimum cutoff is 1 day, stricter than the local engine's), or a file that
    is not TOML.
    """
    local = _local_section(path)
    weight = local.get(EXPLORATION_WEIGHT_KEY, DEFAULT_EXPLORATION_WEIGHT)
    cutoff = local.get(EXPLORATION_AGE_CUTOFF_KEY, DEFAULT_EXPLORATION_AGE_CUTOFF)
    for key, value, check in (
        (EXPLORATION_WEIGHT_KEY, weight, check_exploration_weight),
        (EXPLORATION_AGE_CUTOFF_KEY, cutoff, check_exploration_age_cutoff),
    ):
        try:
            check(value)
        except ValueError as exc:
            raise ValueError(f"{path}: [local] {key}: {exc}") from None
    return float(weight), float(cutoff)


def write_serve_config(
    path: Path,
    personalize: Mapping[str, Any],
    *,
    catalog: Path | None = None,
) -> dict[str, Any]:
    """Merge `personalize` into the file's `[personalize]` table, select that backend.

    `filter_arns` and `recommender_arns` are merged key by key, so ARNs provisioned
    elsewhere (another filter, a recommender key copied by hand) stay. The
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
        if key in MERGED_KEYS and isinstance(section.get(key), dict):
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
