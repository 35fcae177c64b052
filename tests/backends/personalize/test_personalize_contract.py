"""The backend contract on PersonalizeBackend -> HTTP -> emulator -> LocalBackend.

The local engine trained on the tiny dataset plays Personalize's campaigns behind the
loopback emulator, so every contract test goes through boto3's real serialization,
signing and parsing. SIMS and popularity answers carry no scores, as on Personalize.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import ClassVar

import pytest

from recs.backends.base import Backend
from recs.backends.local.backend import LocalBackend
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model
from recs.backends.personalize.backend import PersonalizeBackend
from recs.backends.personalize.config import PersonalizeBackendConfig
from recs.pipeline.dataset import read_interactions, read_items
from tests.backends.contract import BackendContract
from tests.backends.personalize.emulator import PersonalizeRuntimeEmulator


class TestPersonalizeBackendContract(BackendContract):
    _resources: ClassVar[ExitStack]

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def emulator_resources(cls) -> Iterator[None]:
        """Keeps the emulator and the local engine alive for the class's tests."""
        with ExitStack() as stack:
            cls._resources = stack
            yield

    def make_backend(self, dataset_dir: Path) -> Backend:
        model = fit_model(read_interactions(dataset_dir), TrainParams(), read_items(dataset_dir))
        local = LocalBackend.from_model(model)
        self._resources.callback(local.close)
        emulator = self._resources.enter_context(PersonalizeRuntimeEmulator(local))
        config = PersonalizeBackendConfig(
            region="us-east-1",
            endpoint_url=emulator.endpoint_url,
            max_attempts=1,
            **emulator.campaign_config(),
        )
        backend = PersonalizeBackend(config)
        backend.start()
        return backend
