"""Evaluation runs: what is asked of a recommender, and the same figures in-process or over gRPC."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pyarrow as pa
import pytest

from recs.backends.local.backend import LocalBackend
from recs.backends.local.params import TrainParams
from recs.backends.local.train import fit_model
from recs.config import build_config
from recs.evaluation.run import (
    BackendRecommender,
    EvaluationData,
    ServiceRecommender,
    evaluate,
    evaluation_data,
)
from recs.evaluation.split import Split, split_interactions
from recs.server.app import build_server

SMALL_PARAMS = TrainParams(factors=8, iterations=3, similar_neighbours=10)


@pytest.fixture
def split(interactions: pa.Table) -> Split:
    return split_interactions(interactions, seed=5)


@pytest.fixture
def data(split: Split) -> EvaluationData:
    return evaluation_data(split.train, split.holdout, negatives=10, seed=1)


class Oracle:
    """Knows the holdout: recommends and ranks the relevant items first."""

    name = "oracle"

    def __init__(self, data: EvaluationData) -> None:
        self.data = data
        self.calls: list[tuple[str, int]] = []

    def recommend(self, user_id: str, num_results: int) -> list[str]:
        self.calls.append((user_id, num_results))
        return sorted(self.data.relevant[user_id])[:num_results]

    def rerank(self, user_id: str, item_ids: Sequence[str]) -> list[str]:
        relevant = self.data.relevant[user_id]
        return sorted(item_ids, key=lambda item: item not in relevant)


def test_every_test_user_is_asked_once_for_the_deepest_cut_off(data: EvaluationData) -> None:
    oracle = Oracle(data)
    result = evaluate(oracle, data, ks=[5, 40])
    assert sorted(oracle.calls) == [(user, 40) for user in sorted(data.relevant)]
    assert result.metrics["normalized_discounted_cumulative_gain_at_5"] == pytest.approx(1.0)
    assert result.metrics["mean_reciprocal_rank_at_25"] == pytest.approx(1.0)
    assert result.metrics["ranking_auc"] == pytest.approx(1.0)
    assert result.metrics["ranking_ndcg"] == pytest.approx(1.0)


def test_ranking_candidates_are_held_out_items_plus_unseen_negatives(
    split: Split, data: EvaluationData
) -> None:
    input_items: dict[str, set[str]] = {}
    for row in split.train.select(["USER_ID", "ITEM_ID"]).to_pylist():
        input_items.setdefault(row["USER_ID"], set()).add(row["ITEM_ID"])
    for user, candidates in data.ranking_candidates.items():
        relevant = data.relevant[user]
        assert relevant <= set(candidates)
        negatives = set(candidates) - relevant
        assert len(negatives) == 10 == len(candidates) - len(relevant)
        assert not negatives & input_items.get(user, set())
    again = evaluation_data(split.train, split.holdout, negatives=10, seed=1)
    assert again.ranking_candidates == data.ranking_candidates


def test_test_users_input_reaches_the_model_through_the_training_data(
    split: Split, data: EvaluationData
) -> None:
    backend = LocalBackend.from_model(fit_model(split.train, SMALL_PARAMS))
    model_users = set(backend.model.user_ids.tolist())
    with_input = {u for u in data.relevant if u in set(split.train.column("USER_ID").to_pylist())}
    assert with_input and with_input <= model_users
    for user in with_input:  # known users get personal lists without their own input items
        seen = set(
            split.train.filter(pa.compute.equal(split.train.column("USER_ID"), user))
            .column("ITEM_ID")
            .to_pylist()
        )
        assert not seen & set(BackendRecommender(backend, "local").recommend(user, 25))


async def test_same_figures_through_the_backend_interface_and_over_grpc(
    split: Split, data: EvaluationData
) -> None:
    backend = LocalBackend.from_model(fit_model(split.train, SMALL_PARAMS))
    direct = evaluate(BackendRecommender(backend, "local"), data)
    server = await build_server(build_config({"server": {"host": "127.0.0.1", "port": 0}}))
    await server.mark_ready(backend)
    service = ServiceRecommender(f"127.0.0.1:{server.port}", name="grpc")
    try:
        remote = await asyncio.to_thread(evaluate, service, data)
    finally:
        service.close()
        await server.stop(0)
    assert remote.metrics == pytest.approx(direct.metrics)
    assert remote.name == "grpc"


def test_empty_holdout_is_an_error(split: Split) -> None:
    with pytest.raises(ValueError, match="holdout"):
        evaluation_data(split.train, split.holdout.slice(0, 0))
