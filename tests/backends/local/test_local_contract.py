"""The backend contract on the local engine: trained by `train`, loaded from disk."""

from __future__ import annotations

from pathlib import Path

from recs.backends.base import Backend
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.backends.local.params import TrainParams
from recs.backends.local.train import train
from tests.backends.contract import BackendContract


class TestLocalBackendContract(BackendContract):
    def make_backend(self, dataset_dir: Path) -> Backend:
        model_dir = self.tmp_path_factory.mktemp("local") / "model"
        train(dataset_dir, model_dir, TrainParams())
        backend = LocalBackend(LocalBackendConfig(model_dir=model_dir))
        backend.start()
        return backend
