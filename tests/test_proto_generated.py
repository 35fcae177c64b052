"""The committed generated gRPC code is exactly what `make proto` produces."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATED_ROOT = ROOT / "client" / "src"  # the recs-client distribution ships the code
PROTO = "recs/v1/recommendation_service.proto"
GENERATED = [
    "recs/v1/recommendation_service_pb2.py",
    "recs/v1/recommendation_service_pb2.pyi",
    "recs/v1/recommendation_service_pb2_grpc.py",
]


def test_regenerating_the_grpc_code_gives_no_diff(tmp_path: Path) -> None:
    (tmp_path / "recs/v1").mkdir(parents=True)
    shutil.copy(ROOT / "protos" / PROTO, tmp_path / PROTO)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            ".",
            "--python_out=.",
            "--pyi_out=.",
            "--grpc_python_out=.",
            PROTO,
        ],
        cwd=tmp_path,
        check=True,
    )
    for name in GENERATED:
        fresh = (tmp_path / name).read_text()
        committed = (GENERATED_ROOT / name).read_text()
        assert fresh == committed, f"client/src/{name} is stale: run `make proto` and commit"


def test_api_package_is_versioned() -> None:
    from recs.v1 import recommendation_service_pb2 as pb

    assert pb.DESCRIPTOR.package == "recs.v1"
    service = pb.DESCRIPTOR.services_by_name["RecommendationService"]
    assert {m.name for m in service.methods} >= {
        "GetRecommendations",
        "GetSimilarItems",
        "GetPopularItems",
        "GetPersonalizedRanking",
    }
