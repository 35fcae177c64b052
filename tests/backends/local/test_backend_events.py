"""PutEvents on the local engine: stored, then reflected in the answers within a second.

A LocalBackend started from a model directory trained on the tiny dataset (with its
precomputed answers), its event store in a temporary state dir. After `put_events` the
user's answers exclude what they just watched and follow the updated vector (the precomputed
table bypassed); anonymous sessions answer from their events; a restarted backend replays
the store; a second backend on the same state dir (another worker) sees the events by
polling; Interactions filters and re-ranking see them too.
"""

from __future__ import annotations

import functools
import gc
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

from recs.backends.base import Event, Recommendations
from recs.backends.errors import BackendUnavailableError
from recs.backends.filtering import FilterSet
from recs.backends.local.answers import compute_answers, save_answers
from recs.backends.local.artifacts import load_model
from recs.backends.local.backend import LocalBackend, LocalBackendConfig
from recs.backends.local.event_store import DB_FILE, EventStore
from recs.backends.local.params import TrainParams
from recs.backends.local.train import train
from tests.backends.contract import BEST_NEXT, HISTORY, POPULAR_ORDER, TINY_DATASET

T = TypeVar("T")
ITEMS_CSV = TINY_DATASET / "items.csv"
ALL = 25  # more than the model's 9 items
REFLECTED_WITHIN = 1.0  # seconds: "folded into the user's vector within a second"
FILTERS = {"unwatched": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")'}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained model with its precomputed top-25 table, as `recs precompute` leaves it."""
    out = tmp_path_factory.mktemp("events") / "model"
    train(TINY_DATASET, out, TrainParams(factors=8, iterations=15, random_state=0))
    model = load_model(out, mmap=False)
    save_answers(compute_answers(model, threads=1), model, out)
    return out


def make_backend(
    model_dir: Path, state_dir: Path, filters: FilterSet | None = None
) -> LocalBackend:
    backend = LocalBackend(
        LocalBackendConfig(model_dir=model_dir, state_dir=state_dir, catalog=ITEMS_CSV)
    )
    if filters is not None:
        backend.use_filters(filters)
    return backend


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def opened() -> Iterator[list[LocalBackend]]:
    """Backends a test starts, closed at its end."""
    backends: list[LocalBackend] = []
    yield backends
    for backend in backends:
        backend.close()


@pytest.fixture
def start(
    model_dir: Path, state_dir: Path, opened: list[LocalBackend]
) -> Callable[..., LocalBackend]:
    def started(filters: FilterSet | None = None, state: Path | None = None) -> LocalBackend:
        backend = make_backend(model_dir, state or state_dir, filters)
        backend.start()
        opened.append(backend)
        return backend

    return started


@pytest.fixture
def backend(start: Callable[..., LocalBackend]) -> LocalBackend:
    return start(FilterSet.from_expressions(FILTERS))


def watched(item: str, value: float | None = 1.0, event_type: str = "watched") -> Event:
    return Event(event_type, item, time.time(), event_value=value)


def eventually(check: Callable[[], T], within: float = REFLECTED_WITHIN) -> T:
    """`check()`'s first truthy result, polled until `within` seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, f"not reflected within {within}s"
            return result
        time.sleep(0.01)


def is_live(backend: LocalBackend, subject: str, events: int = 1) -> bool:
    found = backend._live_subject(subject)
    return found is not None and found.events >= events


def ids(answer: Recommendations) -> list[str]:
    return answer.item_ids


# --- a known user ---------------------------------------------------------------------------------


def test_the_model_dir_has_a_precomputed_table_serving_known_users(
    backend: LocalBackend,
) -> None:
    assert backend._answers is not None
    answer = backend.recommend_without_scoring("u04", 5)
    assert answer is not None and ids(answer)[0] == BEST_NEXT["u04"]


def test_a_watched_item_is_excluded_and_the_ranking_changes(backend: LocalBackend) -> None:
    before = backend.recommend("u01", ALL)
    assert set(ids(before)) == {"b1", "b2", "b3", "orphan1", "orphan2"}

    backend.put_events("u01", "s-u01", [watched("b1"), watched("b2", 0.9)])

    after = eventually(lambda: "b1" not in ids(r := backend.recommend("u01", ALL)) and r)
    assert "b2" not in ids(after)
    assert ids(after)[0] == "b3"  # the rest of the "b" group now leads
    score = dict(zip(ids(before), before.scores, strict=True))
    now = dict(zip(ids(after), after.scores, strict=True))
    assert now["b3"] > score["b3"]  # the vector moved toward the "b" group
    assert ids(after) != [i for i in ids(before) if i not in ("b1", "b2")]
    assert backend.recommend_many([("u01", ALL)])[0].item_ids == ids(after)


def test_the_precomputed_table_is_bypassed_for_a_user_with_events(backend: LocalBackend) -> None:
    table = backend.recommend_without_scoring("u04", 5)
    assert table is not None and ids(table)[0] == "a3"

    backend.put_events("u04", "s-u04", [watched("a3")])
    eventually(lambda: is_live(backend, "u04"))

    assert backend.recommend_without_scoring("u04", 5) is None  # scored, not looked up
    answer = backend.recommend("u04", 5)
    assert "a3" not in ids(answer)
    assert set(ids(answer)).isdisjoint({"a1", "a2", "a3"})
    live = backend._live_subject("u04")
    assert live is not None
    # Scored with the live vector: the best remaining item by its dot product.
    model = backend.model
    dots = np.asarray(model.item_factors) @ live.vector
    allowed = [
        i for i, item in enumerate(model.item_ids.tolist()) if item not in {"a1", "a2", "a3"}
    ]
    best = model.item_ids[allowed[int(np.argmax(dots[allowed]))]]
    assert ids(answer)[0] == best
    # Other users keep the table.
    assert backend.recommend_without_scoring("u08", 5) is not None


def test_scores_stay_softmax_shares_over_every_item(backend: LocalBackend) -> None:
    backend.put_events("u05", "s", [watched("a1")])
    eventually(lambda: is_live(backend, "u05"))
    live = backend._live_subject("u05")
    assert live is not None
    dots = np.asarray(backend.model.item_factors, dtype=np.float64) @ live.vector.astype(np.float64)
    shares = np.exp(dots - dots.max()) / np.exp(dots - dots.max()).sum()
    by_id = dict(zip(backend.model.item_ids.tolist(), shares.tolist(), strict=True))
    answer = backend.recommend("u05", ALL)
    assert answer.scores == pytest.approx([by_id[i] for i in ids(answer)], rel=1e-5)


# --- anonymous sessions and new users ------------------------------------------------------------


def test_an_anonymous_session_answers_from_its_events(backend: LocalBackend) -> None:
    session = "anon-session-1"
    assert ids(backend.recommend(session, ALL)) == POPULAR_ORDER  # cold: popular items

    backend.put_events(None, session, [watched("a1")])

    answer = eventually(lambda: "a1" not in ids(r := backend.recommend(session, ALL)) and r)
    assert ids(answer)[0] in {"a2", "a3"}  # co-watched with a1
    assert backend.recommend_without_scoring(session, 5) is None
    # The events are the session's, not some user's.
    assert backend._live_subject(None) is None
    assert ids(backend.recommend("u05", 3))[0] not in {"a1"}


def test_a_new_user_id_answers_from_its_events(backend: LocalBackend) -> None:
    user = "user-never-seen-before"
    backend.put_events(user, "s", [watched("b2")])
    answer = eventually(lambda: "b2" not in ids(r := backend.recommend(user, ALL)) and r)
    assert ids(answer)[0] in {"b1", "b3"}
    assert backend._live_subject("s") is None


@pytest.mark.parametrize("item", ["item-known-nowhere", "cold1"])
def test_a_session_whose_events_the_model_cannot_score_still_gets_popular_items(
    backend: LocalBackend, item: str
) -> None:
    """Events only on items without factors (unknown, or in the catalog only) give no
    vector: the session is still cold and should get popular items, not an arbitrary order
    of equal scores."""
    session = f"anon-{item}"
    backend.put_events(None, session, [watched(item)])
    eventually(lambda: is_live(backend, session))
    assert ids(backend.recommend(session, ALL)) == POPULAR_ORDER
    assert ids(backend.recommend_many([(session, 3)])[0]) == POPULAR_ORDER[:3]
    assert ids(backend.rerank(session, ["b3", "a3"])) == ["a3", "b3"]  # by popularity


def test_a_session_whose_only_event_weighs_nothing_still_gets_popular_items(
    backend: LocalBackend,
) -> None:
    """EVENT_VALUE 0 (nothing of the video watched) gives a known item zero confidence: no
    vector yet, so popular items as for a cold session, without the item (it is history)."""
    session = "anon-zero-value"
    backend.put_events(None, session, [watched("a1", value=0.0)])
    eventually(lambda: is_live(backend, session))
    expected = [i for i in POPULAR_ORDER if i != "a1"]
    assert ids(backend.recommend(session, ALL)) == expected
    assert ids(backend.rerank(session, ["b3", "a3"])) == ["a3", "b3"]  # by popularity


def test_an_event_on_an_unknown_item_is_accepted_and_changes_nothing_else(
    backend: LocalBackend,
) -> None:
    before = backend.recommend("u02", ALL)
    backend.put_events("u02", "s", [watched("item-known-nowhere")])
    eventually(lambda: is_live(backend, "u02"))
    after = backend.recommend("u02", ALL)
    assert ids(after) == ids(before)


# --- restart and other workers -------------------------------------------------------------------


def test_a_restarted_backend_replays_the_store(
    model_dir: Path, state_dir: Path, start: Callable[..., LocalBackend]
) -> None:
    first = start()
    first.put_events("u04", "s", [watched("a3")])
    first.put_events(None, "anon-restart", [watched("b1")])
    eventually(lambda: is_live(first, "u04") and is_live(first, "anon-restart"))
    expected_user = ids(first.recommend("u04", ALL))
    expected_session = ids(first.recommend("anon-restart", ALL))
    first.close()
    assert (state_dir / DB_FILE).is_file()

    again = start()
    assert is_live(again, "u04") and is_live(again, "anon-restart")  # replayed in start()
    assert ids(again.recommend("u04", ALL)) == expected_user
    assert ids(again.recommend("anon-restart", ALL)) == expected_session
    assert "a3" not in expected_user and "b1" not in expected_session


def test_the_default_state_dir_is_beside_the_model_dir(tmp_path: Path, model_dir: Path) -> None:
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    backend = LocalBackend(LocalBackendConfig(model_dir=copy))
    backend.start()
    try:
        backend.put_events("u01", "s", [watched("b1")])
    finally:
        backend.close()
    assert (tmp_path / "model-state" / DB_FILE).is_file()
    assert not (copy / DB_FILE).exists()


def test_a_second_backend_on_the_same_state_dir_sees_the_events(
    start: Callable[..., LocalBackend],
) -> None:
    """Two server workers share the store: what one stores the other applies by polling."""
    one, two = start(), start()
    assert ids(two.recommend("u08", 1)) == [BEST_NEXT["u08"]]

    one.put_events("u08", "s", [watched("b3")])

    answer = eventually(lambda: "b3" not in ids(r := two.recommend("u08", ALL)) and r)
    eventually(lambda: is_live(one, "u08"))  # each process applies on its own schedule
    assert ids(answer) == ids(one.recommend("u08", ALL))
    two.put_events(None, "anon-two", [watched("a2")])
    eventually(lambda: is_live(one, "anon-two") and is_live(two, "anon-two"))
    assert ids(one.recommend("anon-two", ALL)) == ids(two.recommend("anon-two", ALL))


def test_events_stored_by_another_process_are_applied(
    state_dir: Path, start: Callable[..., LocalBackend]
) -> None:
    backend = start()
    writer = EventStore(state_dir).open()
    try:
        writer.append_events("u04", "s", [watched("a3")])
    finally:
        writer.close()
    eventually(lambda: is_live(backend, "u04"))
    assert "a3" not in ids(backend.recommend("u04", ALL))


def test_a_backend_dropped_without_close_is_released_with_its_threads(
    model_dir: Path, state_dir: Path
) -> None:
    """The server's model swap drops the old backend without close() (a running call may
    still use it) and counts on it, its model and memory maps, being released when the last
    reference goes: the event threads must not keep it alive, and must end with it."""
    backend = make_backend(model_dir, state_dir)
    backend.start()
    backend.put_events("u01", "s", [watched("b1")])
    eventually(functools.partial(is_live, backend, "u01"))
    store = backend._store
    assert store is not None
    threads = [backend._poller, store._writer]
    released = weakref.ref(backend)
    del backend

    deadline = time.monotonic() + 2
    while released() is not None and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.02)
    assert released() is None, "the backend is still referenced after it was dropped"
    for thread in threads:
        assert thread is not None
        thread.join(timeout=2)
        assert not thread.is_alive(), f"thread {thread.name} outlived its backend"


# --- filters and re-ranking ----------------------------------------------------------------------


def test_an_interactions_filter_sees_the_new_events(backend: LocalBackend) -> None:
    unwatched = backend.filters.resolve("unwatched", {})
    before = ids(backend.recommend("u04", ALL, unwatched))
    assert "a3" in before and "a2" in before  # u04 only *shared* a2

    backend.put_events("u04", "s", [watched("a3"), watched("b1", event_type="clicked")])
    after = eventually(lambda: "a3" not in ids(r := backend.recommend("u04", ALL, unwatched)) and r)
    assert "b1" in ids(after)  # clicked, not watched: the filter keeps it
    assert "b1" not in ids(backend.recommend("u04", ALL))  # the default filter drops it
    popular = ids(backend.popular_items(ALL, "u04", unwatched))
    assert "a3" not in popular and "a1" not in popular and "b1" in popular
    assert popular == [i for i in POPULAR_ORDER if i not in {"a1", "a3"}]


def test_an_interactions_filter_on_an_anonymous_session(backend: LocalBackend) -> None:
    unwatched = backend.filters.resolve("unwatched", {})
    session = "anon-filter"
    backend.put_events(None, session, [watched("p"), watched("a1", event_type="clicked")])
    eventually(lambda: is_live(backend, session))
    answer = ids(backend.recommend(session, ALL, unwatched))
    assert "p" not in answer and "a1" in answer
    popular = ids(backend.popular_items(ALL, session, unwatched))
    assert popular == [i for i in POPULAR_ORDER if i != "p"]


def test_rerank_uses_the_live_vector(backend: LocalBackend) -> None:
    candidates = ["a3", "b1", "b2", "b3", "item-known-nowhere"]
    before = backend.rerank("u01", candidates)
    assert ids(before)[0] == "a3"  # u01's group

    backend.put_events(
        "u01", "s", [watched(i, 1.0) for i in ("b1", "b2", "b3", "b1", "b2", "b3", "b1")]
    )
    eventually(lambda: is_live(backend, "u01", events=7))
    after = backend.rerank("u01", candidates)

    live = backend._live_subject("u01")
    assert live is not None
    model = backend.model
    index = {item: i for i, item in enumerate(model.item_ids.tolist())}
    dots = {
        i: float(np.asarray(model.item_factors)[index[i]] @ live.vector) for i in candidates[:4]
    }
    assert ids(after)[:4] == sorted(candidates[:4], key=lambda i: -dots[i])
    assert ids(after)[-1] == "item-known-nowhere" and after.scores[-1] == 0.0
    assert ids(after)[0] != "a3"
    unwatched = backend.filters.resolve("unwatched", {})
    filtered = backend.rerank("u01", candidates, unwatched)
    assert {"b1", "b2", "b3"}.isdisjoint(ids(filtered))


def test_rerank_for_an_anonymous_session_uses_its_events(backend: LocalBackend) -> None:
    session = "anon-rerank"
    cold = ids(backend.rerank(session, ["b3", "a3"]))
    assert cold == ["a3", "b3"]  # by popularity, ties by id
    backend.put_events(None, session, [watched("b1"), watched("b2")])
    eventually(lambda: is_live(backend, session, events=2))
    assert ids(backend.rerank(session, ["a3", "b3"])) == ["b3", "a3"]


# --- lifecycle -----------------------------------------------------------------------------------


def test_put_events_before_start_is_unavailable(model_dir: Path, state_dir: Path) -> None:
    backend = make_backend(model_dir, state_dir)
    with pytest.raises(BackendUnavailableError):
        backend.put_events("u01", "s", [watched("a1")])
    assert not (state_dir / DB_FILE).exists()


def test_put_events_after_close_is_unavailable(start: Callable[..., LocalBackend]) -> None:
    backend = start()
    backend.close()
    with pytest.raises(BackendUnavailableError):
        backend.put_events("u01", "s", [watched("a1")])


def test_an_in_memory_backend_takes_no_events(model_dir: Path) -> None:
    backend = LocalBackend.from_model(load_model(model_dir, mmap=False))
    with pytest.raises(BackendUnavailableError):
        backend.put_events("u01", "s", [watched("a1")])


def test_users_without_events_keep_their_answers(backend: LocalBackend) -> None:
    expected = {user: ids(backend.recommend(user, ALL)) for user in HISTORY}
    backend.put_events("u01", "s", [watched("b1")])
    eventually(lambda: is_live(backend, "u01"))
    for user, answer in expected.items():
        if user != "u01":
            assert ids(backend.recommend(user, ALL)) == answer, user
