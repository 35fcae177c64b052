"""What a calling service gets from `pip install ./client`: the recs-client distribution alone.

The wheel holds only `recs/client/` and `recs/v1/` (the namespace package `recs` has no
`__init__.py`, so the server's subpackages can install beside it), its typing files, and
depends on grpcio and protobuf only. A fresh virtual environment with nothing but
`pip install ./client` imports both clients and the stubs, has none of the server's heavy
dependencies, and talks to a real server. Everything is built from a copy of client/, so no
build/ or egg-info is written into the checkout.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.server.fakes import FakeBackend

CLIENT_DIR = Path(__file__).resolve().parents[2] / "client"

# Import names of dependencies only the server has: none may come with the client.
SERVER_ONLY_MODULES = [
    "numpy", "implicit", "boto3", "scipy", "pyarrow", "pydantic", "rich", "matplotlib",
    "optuna", "faiss", "numba", "grpc_health", "grpc_reflection", "recs.server", "recs.backends",
]  # fmt: skip

# Bounds, in seconds, so a missing network fails with a message instead of hanging.
PIP_TIMEOUT = 240
SCRIPT_TIMEOUT = 60
NETWORK_HINT = (
    "pip install of recs-client needs grpcio, protobuf and the build backend (setuptools) from "
    "the package index or pip's cache: is the network or the configured index reachable?"
)


def run(command: list[str], timeout: float, what: str, **kwargs) -> subprocess.CompletedProcess:
    """Run `command`; a timeout is a test failure naming `what`, not a hang."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as expired:
        output = f"{expired.stdout or ''}\n{expired.stderr or ''}"[-3000:]
        pytest.fail(f"{what} took over {timeout}s. {NETWORK_HINT}\n{output}", pytrace=False)


def pip(*args: str, what: str) -> subprocess.CompletedProcess:
    """The test interpreter's pip (which supports --python, pip >= 22.3); fails with a hint."""
    command = [sys.executable, "-m", "pip", "--timeout", "30", "--retries", "1", *args]
    done = run(command, PIP_TIMEOUT, what)
    if done.returncode != 0:
        output = f"{done.stdout}\n{done.stderr}"[-3000:]
        pytest.fail(f"{what} failed. {NETWORK_HINT}\n{output}", pytrace=False)
    return done


def copy_client(to: Path) -> Path:
    """client/ without build products: builds happen in the copy, never in the checkout."""
    ignore = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__")
    return Path(shutil.copytree(CLIENT_DIR, to, ignore=ignore))


def fresh_venv_with(where: Path, *requirements: str) -> Path:
    """A new venv (no pip of its own) with `requirements` installed; returns its python."""
    venv.create(where, with_pip=False)
    python = where / "bin" / "python"
    what = "pip install " + " ".join(requirements)
    pip("--python", str(python), "install", *requirements, what=what)
    return python


def run_in(python: Path, script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`script` under `python` in isolated mode: no cwd, no PYTHONPATH, no user site."""
    return run([str(python), "-I", "-c", script, *args], SCRIPT_TIMEOUT, "the script", cwd=cwd)


# --- the wheel ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = copy_client(work / "client")
    out = work / "dist"
    pip("wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(out), what="wheel")
    (built,) = out.glob("recs_client-*.whl")
    return built


def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_wheel_holds_only_the_client_and_the_stubs(wheel: Path) -> None:
    names = wheel_names(wheel)
    dist_info = [n for n in names if n.split("/")[0].endswith(".dist-info")]
    assert {n.split("/")[0] for n in dist_info} == {"recs_client-0.1.0.dist-info"}
    files = [n for n in names if n not in dist_info]
    assert files, names
    assert all(n.startswith(("recs/client/", "recs/v1/")) for n in files), files
    assert "recs/__init__.py" not in names  # a namespace package: the server installs beside it
    assert {"recs/client/__init__.py", "recs/v1/__init__.py"} <= set(files)
    assert "recs/v1/recommendation_service_pb2_grpc.py" in files


def test_wheel_carries_the_typing_files(wheel: Path) -> None:
    names = set(wheel_names(wheel))
    assert {"recs/client/py.typed", "recs/v1/py.typed"} <= names
    stubs = {n for n in names if n.endswith(".pyi")}
    expected = {p.relative_to(CLIENT_DIR / "src").as_posix() for p in CLIENT_DIR.rglob("*.pyi")}
    assert "recs/v1/recommendation_service_pb2.pyi" in stubs
    assert stubs == expected


def wheel_metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        (metadata_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(metadata_name).decode())


def wheel_requirements(wheel: Path) -> list[Requirement]:
    return [Requirement(line) for line in wheel_metadata(wheel).get_all("Requires-Dist") or []]


def test_wheel_requires_only_grpcio_and_protobuf(wheel: Path) -> None:
    assert wheel_metadata(wheel)["Name"] == "recs-client"
    requires = wheel_requirements(wheel)
    assert sorted(r.name for r in requires) == ["grpcio", "protobuf"], [str(r) for r in requires]
    assert all(r.marker is None and not r.extras for r in requires), [str(r) for r in requires]


# --- a fresh virtual environment with only `pip install ./client` -------------------------------


@pytest.fixture(scope="module")
def client_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a new venv where only `pip install ./client` was run (built once)."""
    work = tmp_path_factory.mktemp("client-venv")
    source = copy_client(work / "client")
    return fresh_venv_with(work / "venv", str(source))


IMPORTS = """
import importlib.util, json, sys
from recs.client import AsyncRecsClient, RecsClient, RecsError
from recs.v1 import recommendation_service_pb2_grpc
import recs, recs.client
print(json.dumps({
    "prefix": sys.prefix,
    "recs_file": getattr(recs, "__file__", None),
    "recs_path": list(recs.__path__),
    "client_file": recs.client.__file__,
    "stub": hasattr(recommendation_service_pb2_grpc, "RecommendationServiceStub"),
    "found": [m for m in sys.argv[1:] if importlib.util.find_spec(m) is not None],
}))
"""


def test_fresh_venv_imports_the_clients_without_server_dependencies(
    client_python: Path, tmp_path: Path
) -> None:
    done = run_in(client_python, IMPORTS, *SERVER_ONLY_MODULES, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    venv_dir = client_python.parents[1]
    assert Path(seen["prefix"]) == venv_dir
    assert seen["recs_file"] is None, "recs must stay a namespace package"
    assert len(seen["recs_path"]) == 1, seen["recs_path"]
    assert Path(seen["recs_path"][0]).is_relative_to(venv_dir), seen["recs_path"]
    assert Path(seen["client_file"]).is_relative_to(venv_dir), seen  # not the checkout's copy
    assert seen["stub"]
    assert seen["found"] == [], f"server-only modules came with the client: {seen['found']}"


CALLS = """
import asyncio, json, sys
from recs.client import AsyncRecsClient, RecsClient, RecsError

target = sys.argv[1]
with RecsClient(target, timeout=5) as client:
    popular = client.popular(3)
    similar = client.similar("v1", 2)
    trending = client.trending(2)
    info = client.model_info()
    try:
        client.recommend("", 5)
        failure = None
    except RecsError as error:
        failure = [error.code.name, error.message]


async def rerank():
    async with AsyncRecsClient(target, timeout=5) as client:
        return await client.rerank("u", ["v3", "v4"])


ranked = asyncio.run(rerank())
print(json.dumps({
    "popular": popular.item_ids,
    "first": [popular.items[0].title, popular.items[0].url],
    "similar": similar.item_ids,
    "trending": trending.item_ids,
    "info": [info.backend, info.details],
    "failure": failure,
    "ranked": ranked.item_ids,
    "recommendation_id": ranked.recommendation_id,
}))
"""


async def test_fresh_venv_calls_a_running_server(
    client_python: Path, target: str, fake_backend: FakeBackend, tmp_path: Path
) -> None:
    # In a thread: the server answers on this test's event loop while the script runs.
    done = await asyncio.to_thread(run_in, client_python, CALLS, target, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["popular"] == ["v1", "v2", "v3"]
    assert answer["first"] == ["First video", "https://b.s3.amazonaws.com/shortVideos/v1.mp4"]
    assert answer["similar"] == ["v2", "v3"]
    assert answer["trending"] == ["v4", "v3"]
    backend, details = answer["info"]
    assert backend == "fake" and details["trained_at"] == "never"
    assert details["default_filter"] == "exclude_interacted"
    assert answer["failure"][0] == "INVALID_ARGUMENT" and "user_id" in answer["failure"][1]
    assert answer["ranked"] == ["v4", "v3"]
    assert answer["recommendation_id"] == "rid-1"
    # The answers came from this server's backend, not from anywhere else.
    assert [call[0] for call in fake_backend.calls] == ["popular", "similar", "trending", "rerank"]


def lowest_allowed(requirement: Requirement) -> str:
    """The oldest release `requirement` accepts, e.g. 1.85 for `==1.85.*`, 6.31 for `>=6.31`."""
    floors = [
        Version(spec.version.removesuffix(".*"))
        for spec in requirement.specifier
        if spec.operator in (">=", "~=", "==")
    ]
    if not floors:
        pytest.fail(f"{requirement} has no lower bound", pytrace=False)
    return str(max(floors))


def test_oldest_allowed_grpcio_and_protobuf_can_import_the_client(
    wheel: Path, tmp_path: Path
) -> None:
    # A calling service whose other dependencies hold grpcio or protobuf at the oldest release
    # the metadata allows gets exactly these versions from pip.
    pins = [f"{r.name}=={lowest_allowed(r)}" for r in wheel_requirements(wheel)]
    python = fresh_venv_with(tmp_path / "venv", str(wheel), *pins)
    done = run_in(python, "import recs.client", cwd=tmp_path)
    assert done.returncode == 0, f"with {pins}: {done.stderr[-1500:]}"
