"""GetModelInfo's details from the local backend: what a caller needs, nothing of the host."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from recs.backends.local.answers import META_FILE, compute_answers, save_answers
from recs.backends.local.artifacts import LocalModel, save_model
from recs.backends.local.backend import LocalBackend, LocalBackendConfig

# Every key without a group prefix; then the groups (counts.users, params.factors, ...).
KEYS = {
    "model_version",
    "trained_at",
    "precomputed_answers",
    "trend_interval",
    "exploration_weight",
    "exploration_item_age_cutoff",
}
GROUPS = {"counts", "params"}


@pytest.fixture(scope="module")
def model(tiny_model: LocalModel) -> LocalModel:
    """The tiny model with the data hashes `recs train` records in meta.json."""
    data = {"interactions_sha256": "3f" * 32, "items_sha256": "a7" * 32}
    return dataclasses.replace(tiny_model, meta={**tiny_model.meta, "data": data})


@pytest.fixture(scope="module")
def model_dir(model: LocalModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("info") / "model"
    save_model(model, path)
    save_answers(compute_answers(model, top=3, threads=1), model, path)
    return path


def started(model_dir: Path, **config: object) -> LocalBackend:
    backend = LocalBackend(LocalBackendConfig(model_dir=model_dir, **config))
    backend.start()
    return backend


def test_details_say_what_the_model_is(model_dir: Path, model: LocalModel) -> None:
    info = started(model_dir).info()
    details = info.details
    assert info.backend == "local"
    assert {key for key in details if "." not in key} == KEYS
    assert {key.split(".")[0] for key in details if "." in key} == GROUPS
    meta = model.meta
    assert details["trained_at"] == meta["trained_at"]
    assert details["precomputed_answers"] == "top 3"
    for what in ("users", "items", "interactions"):
        assert details[f"counts.{what}"] == str(meta["counts"][what])
    assert details["params.factors"] == str(meta["params"]["factors"])
    assert json.loads(details["params.event_weights"]) == meta["params"]["event_weights"]


def test_details_hold_no_paths_hashes_or_library_versions(
    model_dir: Path, model: LocalModel
) -> None:
    details = started(model_dir).info().details
    values = " ".join(details.values())
    assert str(model_dir.parent) not in values and "/" not in values
    assert not [key for key in details if key.startswith(("data.", "versions.", "model_dir"))]
    assert model.meta["data"] and model.meta["versions"]  # what is left out
    for digest in model.meta["data"].values():  # the sha256 of each data file
        assert digest[:8] not in values


def test_precomputed_answers_off(model_dir: Path) -> None:
    details = started(model_dir, precomputed_answers=False).info().details
    assert details["precomputed_answers"] == "off"


def test_model_version_is_a_stable_id_of_the_model_directory(
    model_dir: Path, tmp_path: Path
) -> None:
    """Same directory, or a copy of it (another worker, another host): same version; the
    answers computed from it carry the same fingerprint."""
    version = started(model_dir).info().details["model_version"]
    assert len(version) == 12 and int(version, 16) >= 0
    assert started(model_dir, mmap=False).info().details["model_version"] == version
    shutil.copytree(model_dir, tmp_path / "copy")
    assert started(tmp_path / "copy").info().details["model_version"] == version
    answers = json.loads((model_dir / META_FILE).read_text())
    assert answers["model_fingerprint"].startswith(version)


def test_a_retrained_model_has_another_version(
    model_dir: Path, model: LocalModel, tmp_path: Path
) -> None:
    version = started(model_dir).info().details["model_version"]
    retrained = dataclasses.replace(
        model, meta={**model.meta, "trained_at": "2030-01-01T00:00:00+00:00"}
    )
    save_model(retrained, tmp_path / "model")
    assert started(tmp_path / "model").info().details["model_version"] != version


def test_an_in_memory_model_reports_its_counts() -> None:
    """from_model (evaluation, tuning): no meta.json counts, the arrays' own."""
    from tests.backends.local.test_warm_start import random_model

    model = random_model(users=7, items=30)
    details = LocalBackend.from_model(model).info().details
    assert (details["counts.users"], details["counts.items"]) == ("7", "30")
    assert details["precomputed_answers"] == "off"
    assert details["model_version"]
