"""Precomputed answers (`recs precompute`): the table, its files, and serving from it."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from recs.backends.errors import BackendUnavailableError
from recs.backends.local.answers import (
    ITEMS_FILE,
    META_FILE,
    NORMALIZERS_FILE,
    SCORES_FILE,
    AnswerTable,
    compute_answers,
    load_answers,
    save_answers,
)
from recs.backends.local.artifacts import LocalModel, load_model, save_model
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.backends.local.scoring import log_normalizers
from recs.cli.main import main

# More users than one scoring batch (64 at this catalog size), so threads share the work.
USERS, ITEMS, FACTORS, TOP = 150, 200, 8, 10
ALL_BUT_TWO, SAW_EVERYTHING, NO_HISTORY = 0, 1, 2  # users with special histories
UNSEEN_BY_ALL_BUT_TWO = [17, 123]
UNKNOWN_USER = "user-never-seen"
ANSWERS_LOGGER = "recs.backends.local.answers"


def build_model(seed: int = 3, normalizers: bool = False) -> LocalModel:
    """Random factors and histories; user 0 saw all but 2 items, user 1 every item."""
    rng = np.random.default_rng(seed)
    histories = [
        np.sort(rng.choice(ITEMS, int(rng.integers(1, 40)), replace=False)) for _ in range(USERS)
    ]
    histories[ALL_BUT_TWO] = np.setdiff1d(np.arange(ITEMS), UNSEEN_BY_ALL_BUT_TWO)
    histories[SAW_EVERYTHING] = np.arange(ITEMS)
    histories[NO_HISTORY] = np.empty(0, dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum([len(h) for h in histories])]).astype(np.int64)
    model = LocalModel(
        user_ids=np.array([f"u{i:03d}" for i in range(USERS)]),
        item_ids=np.array([f"i{i:03d}" for i in range(ITEMS)]),
        user_factors=(rng.standard_normal((USERS, FACTORS)) * 1.5).astype(np.float32),
        item_factors=rng.standard_normal((ITEMS, FACTORS)).astype(np.float32),
        popularity=rng.integers(0, 50, ITEMS),
        history_indptr=indptr,
        history_indices=np.concatenate(histories).astype(np.int32),
        similar_indices=np.full((ITEMS, 0), -1, dtype=np.int32),
        similar_scores=np.zeros((ITEMS, 0), dtype=np.float32),
        meta={"trained_at": "2025-01-01T00:00:00+00:00", "params": {"factors": FACTORS}},
    )
    if not normalizers:
        return model
    return dataclasses.replace(
        model,
        user_log_normalizer=log_normalizers(model.user_factors, model.item_factors),
    )


def user_id(user: int) -> str:
    return f"u{user:03d}"


def item_index(item_id: str) -> int:
    return int(item_id[1:])


@pytest.fixture(scope="module")
def random_model() -> LocalModel:
    return build_model()


@pytest.fixture(scope="module")
def table(random_model: LocalModel) -> AnswerTable:
    return compute_answers(random_model, top=TOP, threads=2)


@pytest.fixture
def model_dir(random_model: LocalModel, tmp_path: Path) -> Path:
    """A saved model directory without answers (each test may write its own)."""
    save_model(random_model, tmp_path / "model")
    return tmp_path / "model"


@pytest.fixture
def loaded(model_dir: Path) -> LocalModel:
    """The model as the server sees it: loaded, its meta carrying format_version."""
    return load_model(model_dir)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == ANSWERS_LOGGER and r.levelno >= logging.WARNING
    ]


# The table --------------------------------------------------------------------------------


# Scores of one user scored in batches of different sizes differ by float32 rounding in the
# matrix product (measured up to 3e-6 relative here; bitwise equal for equal batches).
SCORE_RTOL = 1e-5


def assert_table_is_exact_scoring(model: LocalModel, table: AnswerTable) -> None:
    """Every row holds what per-request scoring answers for num_results = top."""
    exact = LocalBackend.from_model(model)  # in memory: no precomputed answers
    users = model.user_ids.tolist()
    index = {item: i for i, item in enumerate(model.item_ids.tolist())}
    answers = exact.recommend_many([(user, table.top) for user in users])
    for user, answer in enumerate(answers):
        found = [index[i] for i in answer.item_ids]
        k = len(found)
        assert table.items[user, :k].tolist() == found, users[user]
        np.testing.assert_allclose(table.scores[user, :k], answer.scores, rtol=SCORE_RTOL)
        assert (table.items[user, k:] == -1).all()
        assert (table.scores[user, k:] == 0).all()


def test_table_shape_and_dtypes(random_model: LocalModel, table: AnswerTable) -> None:
    assert table.top == TOP
    assert table.items.shape == table.scores.shape == (USERS, TOP)
    assert (table.items.dtype, table.scores.dtype) == (np.int32, np.float64)


def test_table_equals_exact_scoring(random_model: LocalModel, table: AnswerTable) -> None:
    assert_table_is_exact_scoring(random_model, table)


def test_table_equals_exact_scoring_with_stored_normalizers() -> None:
    model = build_model(seed=5, normalizers=True)
    assert_table_is_exact_scoring(model, compute_answers(model, top=TOP, threads=2))


def test_table_excludes_each_users_history(random_model: LocalModel, table: AnswerTable) -> None:
    indptr, indices = random_model.history_indptr, random_model.history_indices
    for user in range(USERS):
        found = table.items[user][table.items[user] >= 0]
        assert not set(found.tolist()) & set(indices[indptr[user] : indptr[user + 1]].tolist())
        assert len(set(found.tolist())) == len(found)


def test_rows_with_fewer_candidates_than_top_are_padded(
    random_model: LocalModel, table: AnswerTable
) -> None:
    # All but two items seen: those two, with their shares of the softmax over every item
    # (the seen ones included, so they sum to less than 1), then -1 with score 0.
    row_items, row_scores = table.items[ALL_BUT_TWO], table.scores[ALL_BUT_TWO]
    assert sorted(row_items[:2].tolist()) == UNSEEN_BY_ALL_BUT_TWO
    assert row_scores[0] >= row_scores[1] > 0
    logits = random_model.item_factors.astype(np.float64) @ random_model.user_factors[
        ALL_BUT_TWO
    ].astype(np.float64)
    shares = np.exp(logits - np.logaddexp.reduce(logits))
    np.testing.assert_allclose(row_scores[:2], shares[row_items[:2]], rtol=SCORE_RTOL)
    assert row_scores[:2].sum() < 1.0
    assert row_items[2:].tolist() == [-1] * (TOP - 2)
    assert row_scores[2:].tolist() == [0.0] * (TOP - 2)
    # Everything seen: no candidate at all.
    assert table.items[SAW_EVERYTHING].tolist() == [-1] * TOP
    assert table.scores[SAW_EVERYTHING].tolist() == [0.0] * TOP
    # No history: a full row of probabilities, best first.
    assert (table.items[NO_HISTORY] >= 0).all()
    assert (np.diff(table.scores[NO_HISTORY]) <= 0).all()


def test_top_larger_than_the_catalog_pads_every_row(random_model: LocalModel) -> None:
    wide = compute_answers(random_model, top=ITEMS + 5, threads=1)
    assert wide.top == ITEMS + 5
    # User 2 saw nothing: every item, then the padding.
    assert sorted(wide.items[NO_HISTORY, :ITEMS].tolist()) == list(range(ITEMS))
    assert wide.items[NO_HISTORY, ITEMS:].tolist() == [-1] * 5
    assert wide.scores[NO_HISTORY].sum() == pytest.approx(1.0)


def test_table_does_not_depend_on_the_thread_count(random_model: LocalModel) -> None:
    one = compute_answers(random_model, top=TOP, threads=1)
    two = compute_answers(random_model, top=TOP, threads=2)
    np.testing.assert_array_equal(one.items, two.items)
    np.testing.assert_array_equal(one.scores, two.scores)


@pytest.mark.parametrize("threads", [1, 3])
def test_progress_rises_to_one(random_model: LocalModel, threads: int) -> None:
    fractions: list[float] = []
    compute_answers(random_model, top=TOP, threads=threads, on_progress=fractions.append)
    assert len(fractions) > 1  # several batches, each reported
    assert all(a < b for a, b in itertools.pairwise(fractions))
    assert fractions[0] > 0 and fractions[-1] == 1.0


@pytest.mark.parametrize("top", [0, -3])
def test_top_below_one_is_refused(random_model: LocalModel, top: int) -> None:
    with pytest.raises(ValueError, match="top"):
        compute_answers(random_model, top=top)


# The files --------------------------------------------------------------------------------


def test_save_then_load_round_trips(
    loaded: LocalModel, model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    table = compute_answers(loaded, top=TOP, threads=1)
    size = save_answers(table, loaded, model_dir)
    names = (ITEMS_FILE, SCORES_FILE, NORMALIZERS_FILE, META_FILE)
    assert size == sum((model_dir / name).stat().st_size for name in names)
    assert not [p.name for p in model_dir.iterdir() if p.name.endswith(".partial")]
    assert json.loads((model_dir / META_FILE).read_text())["top"] == TOP
    back = load_answers(model_dir, load_model(model_dir))  # as a server restarting would
    assert back is not None
    assert back.normalizers is not None and table.normalizers is not None
    np.testing.assert_array_equal(back.normalizers, table.normalizers)
    # The normalisers precompute finds are the ones training would store.
    np.testing.assert_allclose(
        table.normalizers, log_normalizers(loaded.user_factors, loaded.item_factors), rtol=1e-6
    )
    assert back.top == TOP
    np.testing.assert_array_equal(back.items, table.items)
    np.testing.assert_array_equal(back.scores, table.scores)
    assert warnings_of(caplog) == []


def test_saving_again_replaces_the_table(
    loaded: LocalModel, model_dir: Path, table: AnswerTable
) -> None:
    save_answers(table, loaded, model_dir)
    save_answers(
        AnswerTable(table.items[:, :3].copy(), table.scores[:, :3].copy()), loaded, model_dir
    )
    back = load_answers(model_dir, loaded)
    assert back is not None and back.top == 3
    np.testing.assert_array_equal(back.items, table.items[:, :3])


def test_answers_of_another_model_are_refused(
    loaded: LocalModel, model_dir: Path, table: AnswerTable, caplog: pytest.LogCaptureFixture
) -> None:
    save_answers(table, loaded, model_dir)
    retrained = dataclasses.replace(loaded, meta={**loaded.meta, "trained_at": "later"})
    assert load_answers(model_dir, retrained) is None
    [warning] = warnings_of(caplog)
    assert "another model" in warning
    assert f"recs precompute --model {model_dir}" in warning


def test_answers_saved_for_the_in_memory_model_fit_the_loaded_one(
    random_model: LocalModel, model_dir: Path, table: AnswerTable
) -> None:
    # Saving adds format_version to the meta; the fingerprint leaves it out, so answers
    # computed before the model was saved fit the model as the server loads it.
    save_answers(table, random_model, model_dir)
    assert load_answers(model_dir, random_model) is not None
    assert load_answers(model_dir, load_model(model_dir)) is not None


def test_absent_answers_are_none_without_a_warning(
    loaded: LocalModel, model_dir: Path, table: AnswerTable, caplog: pytest.LogCaptureFixture
) -> None:
    assert load_answers(model_dir, loaded) is None
    # Arrays without the metadata (a save interrupted before its last step): absent too.
    save_answers(table, loaded, model_dir)
    (model_dir / META_FILE).unlink()
    assert load_answers(model_dir, loaded) is None
    assert warnings_of(caplog) == []


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def short_header(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:20])


def garbage(path: Path) -> None:
    path.write_bytes(b"definitely not a NumPy file")


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        (ITEMS_FILE, truncate),
        (ITEMS_FILE, short_header),
        (ITEMS_FILE, garbage),
        (SCORES_FILE, truncate),
        (ITEMS_FILE, Path.unlink),
        (META_FILE, garbage),
        (META_FILE, lambda path: path.write_bytes(b"\xff\xfe{")),
    ],
    ids=[
        "items-truncated",
        "items-short-header",
        "items-garbage",
        "scores-truncated",
        "items-missing",
        "meta-not-json",
        "meta-not-utf8",
    ],
)
def test_unreadable_answers_are_refused_with_a_warning(
    loaded: LocalModel,
    model_dir: Path,
    table: AnswerTable,
    caplog: pytest.LogCaptureFixture,
    name: str,
    damage,
) -> None:
    save_answers(table, loaded, model_dir)
    damage(model_dir / name)
    assert load_answers(model_dir, loaded) is None
    [warning] = warnings_of(caplog)
    assert "unreadable" in warning and "recs precompute" in warning


def test_an_empty_items_file_is_refused_with_a_warning(
    loaded: LocalModel, model_dir: Path, table: AnswerTable, caplog: pytest.LogCaptureFixture
) -> None:
    save_answers(table, loaded, model_dir)
    (model_dir / ITEMS_FILE).write_bytes(b"")  # np.load raises EOFError on it
    assert load_answers(model_dir, loaded) is None
    [warning] = warnings_of(caplog)
    assert "unreadable" in warning


def test_a_table_of_another_user_count_is_refused(
    loaded: LocalModel, model_dir: Path, table: AnswerTable, caplog: pytest.LogCaptureFixture
) -> None:
    # A table for a model with one user fewer, stored under this model's fingerprint.
    fewer = AnswerTable(table.items[:-1].copy(), table.scores[:-1].copy())
    save_answers(fewer, loaded, model_dir)
    assert load_answers(model_dir, loaded) is None
    [warning] = warnings_of(caplog)
    assert "shapes" in warning and "recs precompute" in warning


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: AnswerTable(t.items.astype(np.int64), t.scores),
        lambda t: AnswerTable(t.items, t.scores.astype(np.float32)),
        lambda t: AnswerTable(t.items, t.scores[:, :-1].copy()),
    ],
    ids=["items-int64", "scores-float32", "scores-narrower"],
)
def test_tables_of_the_wrong_dtype_or_shape_are_refused(
    loaded: LocalModel,
    model_dir: Path,
    table: AnswerTable,
    caplog: pytest.LogCaptureFixture,
    tamper,
) -> None:
    save_answers(tamper(table), loaded, model_dir)
    assert load_answers(model_dir, loaded) is None
    assert len(warnings_of(caplog)) == 1


def test_a_top_in_the_metadata_that_disagrees_with_the_arrays_is_refused(
    loaded: LocalModel, model_dir: Path, table: AnswerTable
) -> None:
    save_answers(table, loaded, model_dir)
    meta_path = model_dir / META_FILE
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "top": TOP + 1}))
    assert load_answers(model_dir, loaded) is None


@pytest.mark.parametrize("bad_item", [ITEMS, -2])
def test_item_indices_outside_the_model_are_refused(
    loaded: LocalModel,
    model_dir: Path,
    table: AnswerTable,
    caplog: pytest.LogCaptureFixture,
    bad_item: int,
) -> None:
    items = table.items.copy()
    items[NO_HISTORY, 0] = bad_item
    save_answers(AnswerTable(items, table.scores), loaded, model_dir)
    assert load_answers(model_dir, loaded) is None
    [warning] = warnings_of(caplog)
    assert "outside the model" in warning


# Serving from the table -------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_dir(random_model: LocalModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory with answers computed from the loaded model (as `recs precompute`)."""
    model_dir = tmp_path_factory.mktemp("served") / "model"
    save_model(random_model, model_dir)
    loaded = load_model(model_dir)
    save_answers(compute_answers(loaded, top=TOP, threads=2), loaded, model_dir)
    return model_dir


def started(model_dir: Path, precomputed_answers: bool = True) -> LocalBackend:
    backend = LocalBackend(
        LocalBackendConfig(model_dir=model_dir, precomputed_answers=precomputed_answers)
    )
    backend.start()
    return backend


@pytest.fixture(scope="module")
def with_table(served_dir: Path) -> LocalBackend:
    return started(served_dir)


@pytest.fixture(scope="module")
def scoring(served_dir: Path) -> LocalBackend:
    """The same model directory, the table switched off: every call scored."""
    return started(served_dir, precomputed_answers=False)


@pytest.mark.parametrize("n", [1, 4, TOP])
def test_table_answers_equal_scored_answers(
    with_table: LocalBackend, scoring: LocalBackend, n: int
) -> None:
    for user in range(USERS):
        ready = with_table.recommend_without_scoring(user_id(user), n)
        assert ready is not None
        scored = scoring.recommend(user_id(user), n)
        assert ready.item_ids == scored.item_ids, user
        assert ready.scores == pytest.approx(scored.scores, rel=SCORE_RTOL)


def test_table_off_scores_with_the_normalisers_it_stored(
    served_dir: Path, scoring: LocalBackend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With the table off, the normalisers `recs precompute` stored spare each call the
    pass over every item; the answers are those of a model directory without them."""
    with caplog.at_level(logging.INFO, logger="recs.backends.local.backend"):
        started(served_dir, precomputed_answers=False)
    assert "with the normalisers they stored" in caplog.text
    bare = tmp_path / "model"
    shutil.copytree(served_dir, bare)
    (bare / NORMALIZERS_FILE).unlink()
    from_scratch = started(bare, precomputed_answers=False)
    for user in range(USERS):
        stored, computed = (
            scoring.recommend(user_id(user), TOP),
            from_scratch.recommend(user_id(user), TOP),
        )
        assert stored.item_ids == computed.item_ids, user
        assert stored.scores == pytest.approx(computed.scores, rel=SCORE_RTOL)


def test_table_answers_of_users_with_few_candidates(with_table: LocalBackend) -> None:
    few = with_table.recommend_without_scoring(user_id(ALL_BUT_TWO), TOP)
    assert few is not None
    assert sorted(item_index(i) for i in few.item_ids) == UNSEEN_BY_ALL_BUT_TWO
    assert len(few.scores) == 2 and all(s > 0 for s in few.scores)
    none = with_table.recommend_without_scoring(user_id(SAW_EVERYTHING), TOP)
    assert none is not None and none.item_ids == [] and none.scores == []


def test_more_than_top_is_left_to_scoring(with_table: LocalBackend, scoring: LocalBackend) -> None:
    assert with_table.recommend_without_scoring(user_id(5), TOP + 1) is None
    answer = with_table.recommend(user_id(5), TOP + 5)
    expected = scoring.recommend(user_id(5), TOP + 5)
    assert len(answer.item_ids) == TOP + 5
    assert answer.item_ids == expected.item_ids
    assert answer.scores == pytest.approx(expected.scores, rel=SCORE_RTOL)


def test_table_switched_off_leaves_known_users_to_scoring(scoring: LocalBackend) -> None:
    assert scoring.recommend_without_scoring(user_id(5), 1) is None
    assert scoring.recommend_without_scoring(user_id(ALL_BUT_TWO), TOP) is None


@pytest.mark.parametrize("n", [3, TOP + 20])
def test_unknown_users_get_popular_items_without_scoring(
    with_table: LocalBackend, scoring: LocalBackend, n: int
) -> None:
    for backend in (with_table, scoring):
        ready = backend.recommend_without_scoring(UNKNOWN_USER, n)
        assert ready is not None
        popular = backend.popular_items(n)
        assert ready.item_ids == popular.item_ids
        assert ready.scores == popular.scores
        assert ready.item_ids == backend.recommend(UNKNOWN_USER, n).item_ids


def test_each_table_answer_has_its_own_recommendation_id(with_table: LocalBackend) -> None:
    answers = [with_table.recommend_without_scoring(user_id(7), 3) for _ in range(3)]
    answers.append(with_table.recommend_without_scoring(UNKNOWN_USER, 3))
    ids = [answer.recommendation_id for answer in answers if answer is not None]
    assert len(ids) == 4 and len(set(ids)) == 4
    assert all(ids)


def test_a_backend_refuses_the_table_of_another_model(
    random_model: LocalModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model_dir = tmp_path / "model"
    save_model(random_model, model_dir)
    other = load_model(model_dir)
    other = dataclasses.replace(other, meta={**other.meta, "trained_at": "another day"})
    save_answers(compute_answers(other, top=TOP, threads=1), other, model_dir)
    backend = started(model_dir)
    assert backend.recommend_without_scoring(user_id(5), 1) is None
    assert len(backend.recommend(user_id(5), 1).item_ids) == 1  # scored instead
    assert any("another model" in w for w in warnings_of(caplog))


def test_a_backend_without_answers_scores_every_known_user(
    model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = started(model_dir)
    assert backend.recommend_without_scoring(user_id(5), 1) is None
    assert warnings_of(caplog) == []


def test_recommend_without_scoring_before_start_is_unavailable(model_dir: Path) -> None:
    backend = LocalBackend(LocalBackendConfig(model_dir=model_dir))
    with pytest.raises(BackendUnavailableError):
        backend.recommend_without_scoring(user_id(5), 1)


# `recs precompute` ------------------------------------------------------------------------


def test_precompute_command_stores_answers_the_backend_serves(
    tiny_model: LocalModel, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    model_dir = tmp_path / "model"
    save_model(tiny_model, model_dir)
    status = main(["precompute", "--model", str(model_dir), "--top", "5", "--threads", "2"])
    assert status == 0
    assert "precomputed the top 5 for 9 users" in capsys.readouterr().out
    for name in (ITEMS_FILE, SCORES_FILE, META_FILE):
        assert (model_dir / name).is_file()
    model = load_model(model_dir)
    table = load_answers(model_dir, model)
    assert table is not None and table.top == 5
    assert_table_is_exact_scoring(model, table)
    backend = started(model_dir)
    assert backend.recommend_without_scoring("u04", 5) is not None


def test_precompute_without_a_model_exits_2(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    absent = tmp_path / "no-model-here"
    assert main(["precompute", "--model", str(absent)]) == 2
    assert str(absent) in caplog.text
    assert not absent.exists()


@pytest.mark.parametrize("option", [["--top", "0"], ["--top", "-1"], ["--threads", "0"]])
def test_precompute_bad_options_exit_2(
    tiny_model: LocalModel, tmp_path: Path, capsys: pytest.CaptureFixture, option: list[str]
) -> None:
    model_dir = tmp_path / "model"
    save_model(tiny_model, model_dir)
    with pytest.raises(SystemExit) as exited:  # refused by argparse, before any work
        main(["precompute", "--model", str(model_dir), *option])
    assert exited.value.code == 2
    assert f"argument {option[0]}: must be at least 1" in capsys.readouterr().err
    assert not (model_dir / META_FILE).exists()


def test_padding_before_a_rows_last_item_is_refused(
    loaded: LocalModel, model_dir: Path, table: AnswerTable, caplog: pytest.LogCaptureFixture
) -> None:
    # Serving reads a row's items up to its first -1: a hole would misalign the scores.
    items = table.items.copy()
    items[NO_HISTORY, 1] = -1
    save_answers(AnswerTable(items, table.scores), loaded, model_dir)
    assert load_answers(model_dir, loaded) is None
    [warning] = warnings_of(caplog)
    assert "pad rows in the middle" in warning
