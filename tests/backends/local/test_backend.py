"""LocalBackend specifics beyond the contract: scores, padding, life cycle, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from recs.backends.errors import BackendError, BackendUnavailableError, ModelLoadError
from recs.backends.local.artifacts import LocalModel, save_model
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.backends.registry import create_backend
from tests.backends.contract import POPULAR_ORDER, UNKNOWN_USER

# Distinct users per item in the tiny dataset, and their total.
DISTINCT_USERS = {
    "p": 5, "a1": 4, "a2": 4, "b1": 4, "b2": 4, "a3": 3, "b3": 3, "orphan1": 1, "orphan2": 1,
}  # fmt: skip
TOTAL_USERS = sum(DISTINCT_USERS.values())


@pytest.fixture(scope="module")
def backend(tiny_model: LocalModel) -> LocalBackend:
    return LocalBackend.from_model(tiny_model)


def test_popular_scores_are_shares_of_distinct_users(backend: LocalBackend) -> None:
    answer = backend.popular_items(len(POPULAR_ORDER))
    for item in answer.items:
        expected = DISTINCT_USERS[item.item_id] / TOTAL_USERS
        assert item.score == pytest.approx(expected)
    assert sum(i.score for i in answer.items) == pytest.approx(1.0)


def test_popular_items_ignores_the_user(backend: LocalBackend) -> None:
    ids = [i.item_id for i in backend.popular_items(5, user_id="u01").items]
    assert ids == POPULAR_ORDER[:5]


def test_similar_items_fill_with_popular_items_at_score_zero(backend: LocalBackend) -> None:
    # a1 co-occurs with a2, a3 and p only; the rest of the list is popular items.
    answer = backend.similar_items("a1", 8)
    ids = [i.item_id for i in answer.items]
    assert set(ids[:3]) == {"a2", "a3", "p"}
    assert ids[3:] == [i for i in POPULAR_ORDER if i not in {"a1", "a2", "a3", "p"}]
    assert all(i.score > 0 for i in answer.items[:3])
    assert all(i.score == 0 for i in answer.items[3:])


def test_rerank_unknown_user_scores_are_popularity_shares(backend: LocalBackend) -> None:
    answer = backend.rerank(UNKNOWN_USER, ["a3", "p", "unknown"])
    assert [(i.item_id, i.score) for i in answer.items] == [
        ("p", pytest.approx(5 / 8)),
        ("a3", pytest.approx(3 / 8)),
        ("unknown", 0.0),
    ]


@pytest.mark.parametrize("num_results", [0, -1])
def test_non_positive_num_results_give_empty_answers(
    backend: LocalBackend, num_results: int
) -> None:
    assert backend.recommend("u01", num_results).items == []
    assert backend.similar_items("a1", num_results).items == []
    assert backend.popular_items(num_results).items == []


def test_rerank_of_nothing(backend: LocalBackend) -> None:
    assert backend.rerank("u01", []).items == []


def test_start_loads_the_model_directory(tiny_model: LocalModel, tmp_path: Path) -> None:
    save_model(tiny_model, tmp_path / "model")
    backend = create_backend("local", {"model_dir": str(tmp_path / "model")})
    assert isinstance(backend, LocalBackend)
    backend.start()
    assert [i.item_id for i in backend.popular_items(2).items] == POPULAR_ORDER[:2]
    details = backend.info().details
    assert details["counts.users"] == "9"
    assert details["params.factors"] == str(tiny_model.meta["params"]["factors"])
    assert details["trained_at"] == tiny_model.meta["trained_at"]


def test_start_without_a_model_fails_clearly(tmp_path: Path) -> None:
    backend = LocalBackend(LocalBackendConfig(model_dir=tmp_path / "absent"))
    with pytest.raises(ModelLoadError, match="absent"):
        backend.start()


def test_calls_before_start_are_unavailable(tmp_path: Path) -> None:
    backend = LocalBackend(LocalBackendConfig(model_dir=tmp_path))
    with pytest.raises(BackendUnavailableError):
        backend.recommend("u01", 5)
    with pytest.raises(BackendUnavailableError):
        backend.info()


def test_close_stops_serving(tiny_model: LocalModel) -> None:
    backend = LocalBackend.from_model(tiny_model)
    backend.close()
    backend.close()  # idempotent
    with pytest.raises(BackendUnavailableError):
        backend.popular_items(3)


def test_unexpected_failures_surface_as_backend_errors(
    tiny_model: LocalModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = LocalBackend.from_model(tiny_model)

    def broken(*_args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("recs.backends.local.backend.recommend_rows", broken)
    with pytest.raises(BackendError) as caught:
        backend.recommend("u01", 3)
    assert "boom" not in str(caught.value)
