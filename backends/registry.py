"""Backend names in config mapped to their classes, imported lazily.

Lazy import keeps `recs serve --backend local` from importing boto3 and the Personalize
backend from importing implicit (the feast `repo_config` pattern).
"""

from __future__ import annotations

import importlib
from typing import Any

from backends.base import Backend
from backends.errors import BackendMisconfiguredError

BACKENDS: dict[str, str] = {
    "local": "backends.local.backend:LocalBackend",
    "personalize": "backends.personalize.backend:PersonalizeBackend",
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
    return cls(cls.config_model.model_validate(section))
