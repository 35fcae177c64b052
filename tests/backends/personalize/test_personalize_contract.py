"""The backend contract on PersonalizeBackend -> HTTP -> AWS-protocol endpoint -> LocalBackend.

The product's own AWS-protocol endpoint (server/aws_endpoint.py, run in a background thread
by tests/aws_endpoint.py) answers Personalize's REST-JSON API from the local engine trained
on the tiny dataset, so every contract test goes through boto3's real serialization,
signing and parsing and the endpoint's reading of it. SIMS and popularity answers carry no
scores, as on Personalize. The filters are the engine's: the LocalBackend serves the
contract's FilterSet and the endpoint applies the one a request's `filterArn` names (from
`[personalize.filter_arns]`) with its `filterValues`, so the filtered answers checked here
against the reference evaluator are the engine's, after a trip over the wire.
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
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model
from recs.backends.personalize.backend import PersonalizeBackend
from recs.backends.personalize.config import PersonalizeBackendConfig
from recs.pipeline.dataset import read_interactions, read_items
from tests.aws_endpoint import EndpointThread
from tests.backends.contract import BackendContract, resolve
from tests.backends.personalize.wire import Wire, wired_backend


class TestPersonalizeBackendContract(BackendContract):
    _resources: ClassVar[ExitStack]
    endpoint: ClassVar[EndpointThread]
    wire: ClassVar[Wire]

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def endpoint_resources(cls) -> Iterator[None]:
        """Keeps the endpoint and the local engine alive for the class's tests."""
        with ExitStack() as stack:
            cls._resources = stack
            yield

    def make_backend(self, dataset_dir: Path) -> Backend:
        model = fit_model(read_interactions(dataset_dir), TrainParams(), read_items(dataset_dir))
        filters = FilterSet.from_expressions(self.FILTERS)
        # The catalog serves the Items conditions (cold1 is in items.csv, not in the model).
        config = LocalBackendConfig(model_dir=Path("<in memory>"), mmap=False, catalog=dataset_dir)
        local = LocalBackend.from_model(model, config=config, filters=filters)
        self._resources.callback(local.close)
        endpoint = self._resources.enter_context(EndpointThread(local))
        wire = Wire()
        backend = wired_backend(
            PersonalizeBackendConfig(
                **endpoint.personalize_config(), region="us-east-1", max_attempts=1
            ),
            wire,
            filters,
        )
        type(self).endpoint = endpoint
        type(self).wire = wire
        return backend

    # what only Personalize does: filters by ARN on the wire, its own checks ------------

    def sent(self, work: Callable[[], object]) -> list[dict[str, Any]]:
        """The request bodies sent to the endpoint while `work` ran."""
        before = len(self.wire.requests)
        work()
        return [request.body for request in self.wire.requests[before:]]

    def filter_arn(self, name: str) -> str:
        return self.endpoint.personalize_config()["filter_arns"][name]

    def test_a_filter_is_sent_by_arn_with_its_values_as_written(self, backend: Backend) -> None:
        music = resolve(backend, ("category", {"CATEGORIES": '"music"'}))
        for work in (
            lambda: backend.recommend("u01", 5, music),
            lambda: backend.similar_items("a1", 5, music),
            lambda: backend.popular_items(5, "u01", music),
            lambda: backend.rerank("u01", ["a1", "a3"], music),
        ):
            (body,) = self.sent(work)
            assert body["filterArn"] == self.filter_arn("category")
            assert body["filterValues"] == {"CATEGORIES": '"music"'}

    def test_recommend_without_a_filter_sends_the_default_filter(self, backend: Backend) -> None:
        (body,) = self.sent(lambda: backend.recommend("u01", 5))
        assert body["filterArn"] == self.filter_arn(DEFAULT_FILTER_NAME)
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
        gone = "arn:aws:personalize:us-east-1:000000000000:filter/deleted-long-ago"
        config = backend.config.model_copy(update={"filter_arns": {"short": gone}})
        other = PersonalizeBackend(config)
        other.use_filters(backend.filters)
        other.start()
        try:
            with pytest.raises(BackendMisconfiguredError, match=r"filter_arns\.short"):
                other.recommend("u01", 5, resolve(backend, ("short", {})))
        finally:
            other.close()
