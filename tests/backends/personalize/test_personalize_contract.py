"""The backend contract on PersonalizeBackend -> HTTP -> emulator -> LocalBackend.

The local engine trained on the tiny dataset plays Personalize's campaigns behind the
loopback emulator, so every contract test goes through boto3's real serialization,
signing and parsing. SIMS and popularity answers carry no scores, as on Personalize.
The engine behind the emulator serves no filter at all: the emulator applies the
contract's filters itself, by ARN, as Personalize does (with the reference evaluator,
tests/backends/filter_reference.py), so what is checked here is the filters' trip over
the wire (`filterArn` from `[personalize.filter_arns]`, `filterValues` as written).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, ClassVar

import pytest

from recs.backends.base import Backend
from recs.backends.errors import BackendMisconfiguredError, InvalidRequestError
from recs.backends.filtering import DEFAULT_FILTER_NAME, FilterCall, FilterSet
from recs.backends.local.backend import LocalBackend
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model
from recs.backends.personalize.backend import PersonalizeBackend
from recs.backends.personalize.config import PersonalizeBackendConfig
from recs.pipeline.dataset import read_interactions, read_items
from tests.backends.contract import BackendContract, resolve
from tests.backends.personalize.emulator import (
    DEFAULT_ACCOUNT_ARN,
    PersonalizeRuntimeEmulator,
    filter_arn,
    filters_by_arn,
)


class TestPersonalizeBackendContract(BackendContract):
    _resources: ClassVar[ExitStack]
    emulator: ClassVar[PersonalizeRuntimeEmulator]

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def emulator_resources(cls) -> Iterator[None]:
        """Keeps the emulator and the local engine alive for the class's tests."""
        with ExitStack() as stack:
            cls._resources = stack
            yield

    def make_backend(self, dataset_dir: Path) -> Backend:
        model = fit_model(read_interactions(dataset_dir), TrainParams(), read_items(dataset_dir))
        unfiltered = FilterSet.from_expressions({}, default=None)
        local = LocalBackend.from_model(model, filters=unfiltered)
        self._resources.callback(local.close)
        filters = FilterSet.from_expressions(self.FILTERS)
        emulator = self._resources.enter_context(
            PersonalizeRuntimeEmulator(
                local, filters=filters_by_arn(filters), dataset_dir=dataset_dir
            )
        )
        config = PersonalizeBackendConfig(
            region="us-east-1",
            endpoint_url=emulator.endpoint_url,
            max_attempts=1,
            **emulator.personalize_config(),
        )
        backend = PersonalizeBackend(config)
        backend.use_filters(filters)
        backend.start()
        type(self).emulator = emulator
        return backend

    # what only Personalize does: filters by ARN on the wire, its own checks ------------

    def sent(self, work: Callable[[], object]) -> list[dict[str, Any]]:
        """The request bodies the emulator received while `work` ran."""
        before = len(self.emulator.requests)
        work()
        return [request.body for request in self.emulator.requests[before:]]

    def test_a_filter_is_sent_by_arn_with_its_values_as_written(self, backend: Backend) -> None:
        music = resolve(backend, ("category", {"CATEGORIES": '"music"'}))
        for work in (
            lambda: backend.recommend("u01", 5, music),
            lambda: backend.similar_items("a1", 5, music),
            lambda: backend.popular_items(5, "u01", music),
            lambda: backend.rerank("u01", ["a1", "a3"], music),
        ):
            (body,) = self.sent(work)
            assert body["filterArn"] == filter_arn("category")
            assert body["filterValues"] == {"CATEGORIES": '"music"'}

    def test_recommend_without_a_filter_sends_the_default_filter(self, backend: Backend) -> None:
        (body,) = self.sent(lambda: backend.recommend("u01", 5))
        assert body["filterArn"] == filter_arn(DEFAULT_FILTER_NAME)
        assert "filterValues" not in body
        for work in (
            lambda: backend.similar_items("a1", 5),
            lambda: backend.popular_items(5, "u01"),
            lambda: backend.rerank("u01", ["a1", "a3"]),
        ):
            (body,) = self.sent(work)
            assert "filterArn" not in body

    @pytest.mark.parametrize("call", ["recommend", "similar_items", "popular_items", "rerank"])
    def test_personalize_refuses_an_include_parameter_left_out(
        self, backend: Backend, call: str
    ) -> None:
        # FilterSet.resolve refuses it first; a call built by hand reaches Personalize,
        # which answers InvalidInputException (reference section 1.2).
        bare = FilterCall(backend.filters.filters["category"])
        with pytest.raises(InvalidRequestError, match="CATEGORIES"):
            if call == "recommend":
                backend.recommend("u01", 5, bare)
            elif call == "similar_items":
                backend.similar_items("a1", 5, bare)
            elif call == "popular_items":
                backend.popular_items(5, "u01", bare)
            else:
                backend.rerank("u01", ["a1", "b1"], bare)

    def test_an_unknown_filter_arn_is_our_misconfiguration(self, backend: Backend) -> None:
        gone = f"{DEFAULT_ACCOUNT_ARN}:filter/deleted-long-ago"
        config = backend.config.model_copy(update={"filter_arns": {"short": gone}})
        other = PersonalizeBackend(config)
        other.use_filters(backend.filters)
        other.start()
        try:
            with pytest.raises(BackendMisconfiguredError, match=r"filter_arns\.short"):
                other.recommend("u01", 5, resolve(backend, ("short", {})))
        finally:
            other.close()
