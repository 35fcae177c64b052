"""The serve config file: what `recs serve` refuses, with a message naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from recs.config import ConfigError, build_config, load_config

RECS = [str(Path(sys.executable).parent / "recs")]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "serve.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_misspelled_section_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, 'backend = "local"\n[sever]\nport = 6000\n[local]\nmodel_dir = "m"\n')
    with pytest.raises(
        ConfigError, match=r"serve\.toml: unknown top-level key 'sever' \(did you mean 'server'\?\)"
    ):
        load_config(path)


def test_an_unknown_top_level_key_is_an_error_naming_every_one() -> None:
    with pytest.raises(ConfigError, match=r"'catalgo' \(did you mean 'catalog'\?\), 'colour'"):
        build_config({"catalgo": "items.csv", "colour": "blue"})


def test_every_backend_section_and_setting_is_accepted() -> None:
    config = build_config(
        {
            "backend": "local",
            "catalog": "items.csv",
            "server": {"port": 0},
            "local": {"model_dir": "m"},
            "personalize": {"region": "us-east-1"},
        }
    )
    assert config.backend_section() == {"model_dir": "m"}


def test_recs_serve_refuses_the_file_with_exit_2_and_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[sever]\nport = 6000\n")
    done = subprocess.run(
        [*RECS, "serve", "--config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"recs serve: {path}: unknown top-level key 'sever' (did you mean 'server'?); "
        "known: backend, catalog, server, filters, local, personalize"
    ]
