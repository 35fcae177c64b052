"""Backend names in config mapped to their classes, imported lazily.

Lazy import keeps `recs serve --backend local` from importing boto3 and the Personalize
backend from importing implicit (the feast `repo_config` pattern).
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import ValidationError

from recs.backends.base import Backend
from recs.backends.errors import BackendMisconfiguredError

BACKENDS: dict[str, str] = {
    "local": "recs.backends.local.backend:LocalBackend",
    "personalize": "recs.backends.personalize.backend:PersonalizeBackend",
}


def backend_class(name: str) -> type[Backend]:
    """The Backend subclass registered under `name`."""
    try:
        dotted = BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise BackendMisconfiguredError(f"unknown backend {name!r}; known: {known}") from None
    module_name, _, class_name = dotted.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def create_backend(name: str, section: dict[str, Any]) -> Backend:
    """Build backend `name` from its config section (validated by its own pydantic model)."""
    cls = backend_class(name)
    try:
        config = cls.config_model.model_validate(section)
    except ValidationError as exc:
        raise BackendMisconfiguredError(f"[{name}] {format_validation_error(exc)}") from None
    return cls(config)


def format_validation_error(exc: ValidationError) -> str:
    """pydantic errors as `key.path: message; ...`, without input values (may be secrets)."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
