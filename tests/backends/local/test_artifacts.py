"""The model directory: round trip, atomic replacement, and clear errors on bad models."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from recs.backends.errors import ModelLoadError
from recs.backends.local.artifacts import (
    ARRAY_SPECS,
    FORMAT_VERSION,
    META_FILE,
    OPTIONAL_ARRAY_SPECS,
    LocalModel,
    load_model,
    padded_row_head,
    save_model,
)


@pytest.fixture
def model_dir(tiny_model: LocalModel, tmp_path: Path) -> Path:
    save_model(tiny_model, tmp_path / "model")
    return tmp_path / "model"


@pytest.mark.parametrize("mmap", [True, False])
def test_round_trip(tiny_model: LocalModel, model_dir: Path, mmap: bool) -> None:
    loaded = load_model(model_dir, mmap=mmap)
    for name, array in tiny_model.arrays().items():
        np.testing.assert_array_equal(getattr(loaded, name), array)
        assert isinstance(getattr(loaded, name), np.memmap) == mmap
    assert loaded.meta["counts"] == tiny_model.meta["counts"]


def test_layout_is_one_npy_per_array_and_meta(model_dir: Path) -> None:
    names = {p.name for p in model_dir.iterdir()}
    required = {META_FILE, *(f"{name}.npy" for name in ARRAY_SPECS)}
    optional = {f"{name}.npy" for name in OPTIONAL_ARRAY_SPECS}
    assert required <= names
    assert names - required <= optional


def test_save_replaces_an_existing_model_and_leaves_no_temporaries(
    tiny_model: LocalModel, model_dir: Path
) -> None:
    (model_dir / "stale.txt").write_text("from the previous model")
    smaller = replace(tiny_model, meta={**tiny_model.meta, "marker": "new"})
    save_model(smaller, model_dir)
    assert not (model_dir / "stale.txt").exists()
    assert load_model(model_dir).meta["marker"] == "new"
    assert [p.name for p in model_dir.parent.iterdir()] == ["model"]


def test_save_refuses_an_inconsistent_model(tiny_model: LocalModel, tmp_path: Path) -> None:
    broken = replace(tiny_model, popularity=tiny_model.popularity[:-1])
    with pytest.raises(ModelLoadError, match="popularity"):
        save_model(broken, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(tmp_path / "nowhere")


@pytest.mark.parametrize("name", ["item_factors.npy", META_FILE, "history_indptr.npy"])
def test_missing_file_is_named(model_dir: Path, name: str) -> None:
    (model_dir / name).unlink()
    with pytest.raises(ModelLoadError, match=rf"{name}: missing"):
        load_model(model_dir)


def test_corrupt_array_is_named(model_dir: Path) -> None:
    path = model_dir / "user_factors.npy"
    path.write_bytes(path.read_bytes()[:70])  # truncated
    with pytest.raises(ModelLoadError, match=r"user_factors\.npy"):
        load_model(model_dir)


def test_pickled_array_is_refused(model_dir: Path) -> None:
    np.save(model_dir / "item_ids.npy", np.array(["a", None], dtype=object), allow_pickle=True)
    with pytest.raises(ModelLoadError, match=r"item_ids\.npy"):
        load_model(model_dir)


@pytest.mark.parametrize(
    ("name", "array", "problem"),
    [
        ("item_factors", np.zeros((2, 8), np.float32), "rows"),
        ("user_factors", np.full((9, 8), np.nan, np.float32), "NaN"),
        ("history_indices", np.full(29, 99, np.int32), "outside"),
        ("similar_indices", np.zeros((9, 2), np.int32), "similar_scores"),
        ("user_ids", np.zeros(9), "dtype"),
        ("recent_items", np.full(30, 99, np.int32), "outside item_ids"),
        ("recent_types", np.full(30, 3, np.int16), "outside event_types"),
        ("recent_indptr", np.arange(10, dtype=np.int64), "does not span"),
    ],
)
def test_inconsistent_arrays_are_named(
    model_dir: Path, name: str, array: np.ndarray, problem: str
) -> None:
    np.save(model_dir / f"{name}.npy", array)
    with pytest.raises(ModelLoadError, match=problem) as caught:
        load_model(model_dir)
    assert name in str(caught.value)


@pytest.mark.parametrize("text", ["{", "[]", '{"format_version": 99}'])
def test_bad_meta(model_dir: Path, text: str) -> None:
    (model_dir / META_FILE).write_text(text)
    with pytest.raises(ModelLoadError, match=META_FILE):
        load_model(model_dir)


def test_meta_is_plain_json(model_dir: Path) -> None:
    meta = json.loads((model_dir / META_FILE).read_text())
    # 2: scores over every item, the history as the recent window (event_types, recent_*).
    assert meta["format_version"] == FORMAT_VERSION == 2
    assert meta["counts"]["users"] == 9


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, []), (1, [4]), (2, [4, 7]), (3, [4, 7]), (10, [4, 7]), (-1, [])],
)
def test_padded_row_head_leaves_out_the_padding(count: int, expected: list[int]) -> None:
    indices = np.array([4, 7, -1, -1], dtype=np.int32)
    scores = np.array([0.5, 0.25, 0.0, 0.0], dtype=np.float32)
    items, head_scores = padded_row_head(indices, scores, count)
    assert items == expected
    assert head_scores == [0.5, 0.25][: len(expected)]
    assert all(type(i) is int for i in items) and all(type(s) is float for s in head_scores)
