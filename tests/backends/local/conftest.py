"""Fixtures of the local engine's tests: the tiny dataset and a model trained on it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from recs.backends.local.artifacts import LocalModel
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model
from recs.pipeline.dataset import read_interactions, read_items
from tests.backends.contract import TINY_DATASET

# Small and fast, still enough to learn the tiny dataset's two groups.
FAST_PARAMS = TrainParams(factors=8, iterations=10, random_state=0)


@pytest.fixture(scope="session")
def tiny_dataset() -> Path:
    return TINY_DATASET


@pytest.fixture(scope="session")
def tiny_interactions() -> pa.Table:
    return read_interactions(TINY_DATASET)


@pytest.fixture(scope="session")
def tiny_model(tiny_interactions: pa.Table) -> LocalModel:
    return fit_model(tiny_interactions, FAST_PARAMS, read_items(TINY_DATASET))
