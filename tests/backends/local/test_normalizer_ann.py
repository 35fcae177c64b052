"""Stored softmax normalisers and the approximate top-n path for large catalogs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax

from recs.backends.errors import ModelLoadError
from recs.backends.local.ann import HNSW_FILE, HnswIndex
from recs.backends.local.artifacts import LocalModel, load_model, save_model
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.backends.local.scoring import log_normalizers
from recs.cli.main import main

USERS, ITEMS, FACTORS, SEEN = 40, 3_000, 8, 30


@pytest.fixture(scope="module")
def random_model() -> LocalModel:
    """Random factors (spread wide so a few items dominate) and random histories."""
    rng = np.random.default_rng(7)
    seen = np.sort(np.stack([rng.choice(ITEMS, SEEN, replace=False) for _ in range(USERS)]), axis=1)
    seen[0] = np.arange(ITEMS - SEEN, ITEMS)  # user 0 saw the catalog's tail
    model = LocalModel(
        user_ids=np.array([f"u{i:03d}" for i in range(USERS)]),
        item_ids=np.array([f"i{i:05d}" for i in range(ITEMS)]),
        user_factors=(rng.standard_normal((USERS, FACTORS)) * 2.0).astype(np.float32),
        item_factors=rng.standard_normal((ITEMS, FACTORS)).astype(np.float32),
        popularity=rng.integers(0, 50, ITEMS),
        history_indptr=np.arange(0, USERS * SEEN + 1, SEEN, dtype=np.int64),
        history_indices=seen.ravel().astype(np.int32),
        similar_indices=np.full((ITEMS, 0), -1, dtype=np.int32),
        similar_scores=np.zeros((ITEMS, 0), dtype=np.float32),
    )
    return dataclasses.replace(
        model,
        user_log_normalizer=log_normalizers(
            model.user_factors,
            model.item_factors,
            block_users=7,  # blocks that do not divide the users
        ),
    )


def history(model: LocalModel, user: int) -> np.ndarray:
    return model.history_indices[model.history_indptr[user] : model.history_indptr[user + 1]]


def exact_softmax(model: LocalModel, user: int) -> np.ndarray:
    """The definition: each unseen item's share of the softmax of float64 dot products over
    *every* item (seen ones included in the denominator), 0 for a seen item."""
    logits = model.item_factors.astype(np.float64) @ model.user_factors[user].astype(np.float64)
    shares = softmax(logits)
    shares[history(model, user)] = 0.0
    return shares


def test_normalizer_is_the_log_sum_exp_over_every_item(random_model: LocalModel) -> None:
    """Personalize's scores are shares of the softmax over the whole catalog."""
    for user in range(USERS):
        logits = random_model.item_factors.astype(np.float64) @ random_model.user_factors[
            user
        ].astype(np.float64)
        expected = np.logaddexp.reduce(logits)
        assert random_model.user_log_normalizer[user] == pytest.approx(expected, abs=1e-4)


def test_normalizer_without_items_is_minus_infinity() -> None:
    factors = np.ones((2, 3), dtype=np.float32)
    assert (log_normalizers(factors, np.empty((0, 3), dtype=np.float32)) == -np.inf).all()
    result = log_normalizers(factors, factors)
    assert result[0] == pytest.approx(np.log(2.0) + 3.0)


def test_scores_with_stored_normalizer_equal_the_exact_softmax(random_model: LocalModel) -> None:
    backend = LocalBackend.from_model(random_model)
    without = LocalBackend.from_model(dataclasses.replace(random_model, user_log_normalizer=None))
    for user in range(USERS):
        answer = backend.recommend(f"u{user:03d}", 25)
        items = [int(item.item_id[1:]) for item in answer.items]
        expected = exact_softmax(random_model, user)
        np.testing.assert_allclose(
            [item.score for item in answer.items], expected[items], rtol=1e-4, atol=1e-9
        )
        assert items == [int(i.item_id[1:]) for i in without.recommend(f"u{user:03d}", 25).items]


def test_approximate_path_excludes_seen_items_and_matches_exact(random_model: LocalModel) -> None:
    # One index cell scanned in full (nprobe = nlist) makes the index exact: same answers.
    forced = LocalBackendConfig(model_dir=Path("<mem>"), mmap=False, ann_min_items=0)
    approximate = LocalBackend.from_model(
        random_model, config=forced.model_copy(update={"ann_nlist": 16, "ann_nprobe": 16})
    )
    assert approximate._ann is not None
    exact = LocalBackend.from_model(random_model)
    assert exact._ann is None  # the index is off by default
    requests = [(f"u{user:03d}", 10 + user) for user in range(USERS)]
    for (user_id, _), got, want in zip(
        requests,
        approximate.recommend_many(requests),
        exact.recommend_many(requests),
        strict=True,
    ):
        items = {int(item.item_id[1:]) for item in got.items}
        assert not items & set(history(random_model, int(user_id[1:])).tolist())
        assert [i.item_id for i in got.items] == [i.item_id for i in want.items]
        np.testing.assert_allclose(
            [i.score for i in got.items], [i.score for i in want.items], rtol=1e-5
        )


def test_approximate_path_falls_back_to_exact_when_the_index_finds_too_few(
    random_model: LocalModel,
) -> None:
    # Scanning 1 cell of 64 finds ~47 items, fewer than the 200 asked: exact fills in.
    config = LocalBackendConfig(
        model_dir=Path("<mem>"), mmap=False, ann_min_items=0, ann_nlist=64, ann_nprobe=1
    )
    approximate = LocalBackend.from_model(random_model, config=config)
    exact = LocalBackend.from_model(random_model)
    got, want = approximate.recommend("u005", 200), exact.recommend("u005", 200)
    assert [i.item_id for i in got.items] == [i.item_id for i in want.items]


def test_model_without_normalizer_loads_and_stays_exact_above_the_threshold(
    random_model: LocalModel, tmp_path: Path
) -> None:
    save_model(dataclasses.replace(random_model, user_log_normalizer=None), tmp_path / "m")
    assert not (tmp_path / "m" / "user_log_normalizer.npy").exists()
    assert load_model(tmp_path / "m").user_log_normalizer is None
    config = LocalBackendConfig(model_dir=tmp_path / "m", ann_min_items=0)
    backend = LocalBackend(config)
    backend.start()
    assert backend._ann is None
    answer = backend.recommend("u003", 5)
    expected = exact_softmax(random_model, 3)
    items = [int(item.item_id[1:]) for item in answer.items]
    assert items == list(np.argsort(-expected, kind="stable")[:5])


def test_normalizer_of_the_wrong_shape_is_refused(random_model: LocalModel, tmp_path: Path) -> None:
    save_model(random_model, tmp_path / "m")
    np.save(tmp_path / "m" / "user_log_normalizer.npy", np.zeros(USERS + 1))
    with pytest.raises(ModelLoadError, match="user_log_normalizer"):
        load_model(tmp_path / "m")


def test_training_stores_normalizers_only_when_asked(tiny_interactions) -> None:
    from recs.backends.local.params import TrainParams
    from recs.backends.local.train import fit_model

    params = TrainParams(factors=4, iterations=2, random_state=0)
    assert fit_model(tiny_interactions, params, similar=False).user_log_normalizer is None
    with_normalizers = fit_model(
        tiny_interactions, params.model_copy(update={"log_normalizers": True}), similar=False
    )
    assert with_normalizers.user_log_normalizer is not None
    assert with_normalizers.user_log_normalizer.shape == (with_normalizers.num_users,)


def test_hnsw_index_built_by_recs_index_serves_the_exact_answers(
    random_model: LocalModel, tmp_path: Path
) -> None:
    save_model(random_model, tmp_path / "m")
    assert main(["index", "--model", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / HNSW_FILE).is_file()
    # ef_search above the catalog size: the graph walk sees every item, so it is exact.
    config = LocalBackendConfig(
        model_dir=tmp_path / "m", ann_min_items=0, ann_index="hnsw", ann_ef_search=ITEMS
    )
    approximate = LocalBackend(config)
    approximate.start()
    assert isinstance(approximate._ann, HnswIndex)
    exact = LocalBackend.from_model(random_model)
    requests = [(f"u{user:03d}", 10 + user) for user in range(USERS)]
    for got, want in zip(
        approximate.recommend_many(requests), exact.recommend_many(requests), strict=True
    ):
        assert got.item_ids == want.item_ids
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5)


def test_without_a_fitting_hnsw_index_the_server_scores_exactly(
    random_model: LocalModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    save_model(random_model, tmp_path / "m")
    config = LocalBackendConfig(model_dir=tmp_path / "m", ann_min_items=0, ann_index="hnsw")
    missing = LocalBackend(config)
    missing.start()
    assert missing._ann is None
    assert "recs index --model" in caplog.text
    # An index of another catalog (fewer items) is not used either.
    HnswIndex.build(random_model.item_factors[:-1]).save(tmp_path / "m" / HNSW_FILE)
    stale = LocalBackend(config)
    stale.start()
    assert stale._ann is None
    assert "rebuild it with `recs index`" in caplog.text
    got, want = (
        stale.recommend("u003", 5),
        LocalBackend.from_model(random_model).recommend("u003", 5),
    )
    assert (got.item_ids, got.scores) == (want.item_ids, want.scores)


def test_recs_index_refuses_a_missing_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert main(["index", "--model", str(tmp_path / "nowhere")]) == 2
    assert str(tmp_path / "nowhere") in caplog.text
