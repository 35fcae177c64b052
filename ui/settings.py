"""What `recs ui` hands the Streamlit page: environment variables, parsed in one place.

`streamlit run` owns the command line of the page's process, so the launcher passes the
page's settings as environment variables instead; `UiSettings` is both ends of that.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TARGET = os.environ.get("RECS_TARGET", "127.0.0.1:50051")
DEFAULT_TIMEOUT_SECONDS = 5.0

ENV_TARGET = "RECS_UI_TARGET"
ENV_COMPARE_TARGET = "RECS_UI_COMPARE_TARGET"
ENV_DATA_DIR = "RECS_UI_DATA"
ENV_EVAL_JSON = "RECS_UI_EVAL_JSON"
ENV_TIMEOUT = "RECS_UI_TIMEOUT"
ENV_TLS_CA = "RECS_TLS_CA"  # the same variables as the CLI's --tls-ca and --token
ENV_TOKEN = "RECS_TOKEN"


@dataclass(frozen=True, slots=True)
class UiSettings:
    """The services the page asks and the local files it reads."""

    target: str = DEFAULT_TARGET
    compare_target: str = ""
    data_dir: Path | None = None  # prepared dataset: users' recent history, titles
    eval_json: Path | None = None  # an evaluation result to chart
    timeout: float = DEFAULT_TIMEOUT_SECONDS  # deadline of each call to the service
    tls_ca: Path | None = None  # CA certificate to trust: TLS to the services
    token: str = ""  # bearer token sent with every call

    def to_env(self) -> dict[str, str]:
        """These settings as the environment variables `from_env` reads."""
        env = {ENV_TARGET: self.target, ENV_TIMEOUT: str(self.timeout)}
        if self.compare_target:
            env[ENV_COMPARE_TARGET] = self.compare_target
        if self.data_dir is not None:
            env[ENV_DATA_DIR] = str(self.data_dir)
        if self.eval_json is not None:
            env[ENV_EVAL_JSON] = str(self.eval_json)
        if self.tls_ca is not None:
            env[ENV_TLS_CA] = str(self.tls_ca)
        if self.token:
            env[ENV_TOKEN] = self.token
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> UiSettings:
        """Settings from environment variables; unset ones take their defaults."""
        data_dir = environ.get(ENV_DATA_DIR, "")
        eval_json = environ.get(ENV_EVAL_JSON, "")
        try:
            timeout = float(environ.get(ENV_TIMEOUT, DEFAULT_TIMEOUT_SECONDS))
        except ValueError:
            timeout = DEFAULT_TIMEOUT_SECONDS
        return cls(
            target=environ.get(ENV_TARGET, "") or DEFAULT_TARGET,
            compare_target=environ.get(ENV_COMPARE_TARGET, ""),
            data_dir=Path(data_dir) if data_dir else None,
            eval_json=Path(eval_json) if eval_json else None,
            timeout=timeout if timeout > 0 else DEFAULT_TIMEOUT_SECONDS,
            tls_ca=Path(environ[ENV_TLS_CA]) if environ.get(ENV_TLS_CA) else None,
            token=environ.get(ENV_TOKEN, ""),
        )
