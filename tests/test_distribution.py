"""What `make install` puts into site-packages: one import root, `recs`, and nothing else.

The server distribution (the root pyproject.toml) maps each top-level folder to a subpackage
of the namespace package `recs`; the API stubs and the client come from the separate
`recs-client` distribution it depends on (tests/client/test_distribution.py). The wheel is
built from a copy of the sources, so nothing is written into the checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [
    "pyproject.toml", "README.md", "backends", "cli", "config", "evaluation", "ops",
    "pipeline", "server", "ui",
]  # fmt: skip
SUBPACKAGES = {"backends", "cli", "config", "evaluation", "ops", "pipeline", "server", "ui"}


@pytest.fixture(scope="module")
def server_wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    source = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps"]
    command += ["--no-build-isolation", "-q", "-w", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = out.glob("recs-*.whl")
    return zipfile.ZipFile(wheel)


def test_the_only_top_level_name_is_recs(server_wheel: zipfile.ZipFile) -> None:
    names = server_wheel.namelist()
    top_level = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert top_level == {"recs"}
    info = next(name for name in names if name.endswith(".dist-info/top_level.txt"))
    assert server_wheel.read(info).decode().split() == ["recs"]


def test_recs_is_a_namespace_shared_with_the_client(server_wheel: zipfile.ZipFile) -> None:
    names = server_wheel.namelist()
    assert "recs/__init__.py" not in names
    subpackages = {name.split("/")[1] for name in names if name.startswith("recs/")}
    assert subpackages == SUBPACKAGES  # recs.v1 and recs.client come from recs-client
    assert "recs/ui/app.py" in names  # the page `recs ui` hands to streamlit


def test_the_server_depends_on_the_client_distribution(server_wheel: zipfile.ZipFile) -> None:
    metadata = next(n for n in server_wheel.namelist() if n.endswith(".dist-info/METADATA"))
    requires = Parser().parsestr(server_wheel.read(metadata).decode()).get_all("Requires-Dist")
    assert "recs-client==0.1.0" in requires
