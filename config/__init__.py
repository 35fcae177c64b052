"""Serve configuration: one TOML file (or CLI flags) validated by pydantic.

```toml
backend = "local"                 # which engine answers: "local" or "personalize"
catalog = "build/serve/dataset/items.csv"   # optional, for title/url enrichment

[server]
host = "127.0.0.1"
port = 50051
default_filter = "exclude_interacted"   # GetRecommendations without a filter; "" for none

[filters]                         # Personalize filter expressions, by name
unwatched = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")'

[local]                           # one section per backend, validated by that backend
model_dir = "build/serve/model"

[personalize]
region = "us-east-1"
...
```
Only the selected backend's section is validated, so a file may hold both.
`recs serve` (and each of its workers) and `recs evaluate run --config` read the same file;
`create_configured_backend` turns it into the backend it names.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recs.backends.base import Backend
from recs.backends.filtering import DEFAULT_FILTER_NAME, FilterSet
from recs.backends.registry import BACKENDS, create_backend, format_validation_error
from recs.pipeline.filters import FilterError

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class ConfigError(ValueError):
    """The serve configuration is unreadable or invalid; the message names the key."""


class TlsSettings(BaseModel):
    """`[server.tls]`: serve over TLS; with `client_ca_file`, mutual TLS."""

    model_config = ConfigDict(extra="forbid")

    cert_file: Path = Field(description="the server's certificate chain (PEM)")
    key_file: Path = Field(description="its private key (PEM)")
    client_ca_file: Path | None = Field(
        None, description="CA whose certificates clients must present (mutual TLS)"
    )


class AuthSettings(BaseModel):
    """`[server.auth]`: every call but health needs a bearer token from `tokens_file`."""

    model_config = ConfigDict(extra="forbid")

    tokens_file: Path = Field(description="one token per line; re-read when it changes")


class ServerSettings(BaseModel):
    """Network and runtime settings of the gRPC server."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(50051, ge=0, le=65535, description="0 picks a free port")
    grace_seconds: float = Field(10.0, ge=0, description="drain time for in-flight calls")
    backend_threads: int = Field(
        8, ge=1, le=256, description="thread pool running backend calls off the event loop"
    )
    max_concurrent_rpcs: int | None = Field(
        1000,
        ge=1,
        description="calls being handled at once (health checks included); a call beyond "
        "this is refused RESOURCE_EXHAUSTED before any work, and the client retries it",
    )
    request_log: Literal["summary", "each"] = Field(
        "summary",
        description="summary: per-method counts and latencies every request_log_interval "
        "seconds, failed calls one by one; each: one line per call (server.request_log)",
    )
    request_log_interval: float = Field(10.0, gt=0, description="seconds between summaries")
    request_log_level: LogLevel = "INFO"
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="server processes sharing the port (SO_REUSEPORT), each with its own "
        "event loop and a memory-mapped view of the same model",
    )
    default_filter: str = Field(
        DEFAULT_FILTER_NAME,
        description="the filter GetRecommendations applies when a request names none: "
        "exclude_interacted (built in: nothing the user interacted with), another filter "
        'of [filters], or "" for none',
    )
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="serve Prometheus /metrics on host:metrics_port"
    )
    aws_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="also answer Amazon Personalize's own API (personalize-runtime and "
        "personalize-events, REST-JSON) on host:aws_port, for unchanged boto3 code "
        "(docs/aws-endpoint.md); 0 picks a free port",
    )
    tls: TlsSettings | None = None
    auth: AuthSettings | None = None


class ServeConfig(BaseModel):
    """The whole serve configuration."""

    model_config = ConfigDict(extra="allow")

    backend: str = "local"
    catalog: Path | None = None
    server: ServerSettings = ServerSettings()
    filters: dict[str, str] = Field(
        default_factory=dict,
        description="Personalize filter expressions by name (requests name them)",
    )

    def filter_set(self) -> FilterSet:
        """The configured filters, parsed; ConfigError naming the filter and the position."""
        try:
            return FilterSet.from_expressions(self.filters, self.server.default_filter or None)
        except FilterError as exc:
            raise ConfigError(f"[filters]: {exc}") from None

    def personalize_section(self) -> dict[str, Any]:
        """The `[personalize]` keys, validated whichever backend serves (the AWS-protocol
        endpoint answers the ARNs they name); {} without the section."""
        from recs.backends.personalize.config import PersonalizeBackendConfig

        section = (self.model_extra or {}).get("personalize") or {}
        if not isinstance(section, dict):
            raise ConfigError("[personalize] must be a table")
        try:
            PersonalizeBackendConfig.model_validate(section)
        except ValidationError as exc:
            raise ConfigError(f"[personalize]: {format_validation_error(exc)}") from None
        return section

    def backend_section(self) -> dict[str, Any]:
        """The raw config table of the selected backend (validated by the backend)."""
        section = (self.model_extra or {}).get(self.backend, {})
        if not isinstance(section, dict):
            raise ConfigError(f"[{self.backend}] must be a table")
        return section


def create_configured_backend(config: ServeConfig) -> Backend:
    """The backend `config` selects, built from its own section (not started yet).

    The one place a configuration becomes a backend: `recs serve`, each of its workers and
    `recs evaluate run --config` all come through here.
    """
    filters = config.filter_set()
    backend = create_backend(config.backend, _with_catalog(config, config.backend_section()))
    backend.use_filters(filters)
    if config.backend == "personalize" and config.backend_section().get("fallback") == "local":
        fallback_section = (config.model_extra or {}).get("local")
        if not isinstance(fallback_section, dict):
            raise ConfigError('[personalize] fallback = "local" needs a [local] section')
        fallback = create_backend("local", _with_catalog(config, fallback_section, "local"))
        fallback.use_filters(filters)
        backend.set_fallback(fallback)  # type: ignore[attr-defined]
    return backend


def _with_catalog(
    config: ServeConfig, section: dict[str, Any], backend: str | None = None
) -> dict[str, Any]:
    """The local engine's section, its `catalog` (for Items filters) defaulting to the
    top-level one."""
    if (backend or config.backend) != "local" or "catalog" in section or config.catalog is None:
        return section
    return {**section, "catalog": str(config.catalog)}


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ServeConfig:
    """Read a TOML config file; `overrides` (nested dicts) win over the file's values."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc.__class__.__name__})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    return build_config(_merge(data, overrides or {}), source=str(path))


def build_config(data: dict[str, Any], source: str = "command line") -> ServeConfig:
    """Validate a config mapping, turning pydantic's errors into one readable message.

    Every top-level key must be a setting or a backend's section: a misspelled one
    (`[sever]`) would otherwise be ignored and its settings silently not applied.
    """
    _check_top_level_keys(data, source)
    try:
        return ServeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {format_validation_error(exc)}") from None


def _check_top_level_keys(data: dict[str, Any], source: str) -> None:
    known = [*ServeConfig.model_fields, *BACKENDS]
    unknown = [key for key in data if key not in known]
    if not unknown:
        return
    problems = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=1)
        problems.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ConfigError(
        f"{source}: unknown top-level key {', '.join(problems)}; known: {', '.join(known)}"
    )


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
