"""Real-time events folded into the local model (`backends.local.live.LiveState`).

The vector is implicit's closed-form ALS user solve over the training confidences plus the
new events; checked here against implicit's own `recalculate_user`, then for what each new
event does: its weight lands on its item and the vector moves toward it, a new subject is
folded in from its events alone, the filter window gains the new pairs (at most 100 events per
type), items known nowhere are ignored, and recency decays older confidences.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from recs.backends.base import Event
from recs.backends.local.artifacts import LocalModel
from recs.backends.local.event_store import StoredEvent
from recs.backends.local.live import LiveState
from recs.backends.local.params import TrainParams
from recs.backends.local.recent import INTERACTIONS_PER_EVENT_TYPE
from recs.backends.local.train import fit_model, new_als
from recs.pipeline.dataset import read_items
from tests.backends.contract import CO_WATCHED, TINY_DATASET

# Enough iterations that the stored user factors are (nearly) the closed form for the final
# item factors, so that re-solving a user without new events barely moves them.
PARAMS = TrainParams(factors=8, iterations=50, random_state=0)
NEW_TIME = 1_800_000_000.0  # after every training event
_seq = itertools.count(1)


@pytest.fixture(scope="module")
def model(tiny_interactions: pa.Table) -> LocalModel:
    return fit_model(tiny_interactions, PARAMS, read_items(TINY_DATASET))


@pytest.fixture(scope="module")
def recency_model(tiny_interactions: pa.Table) -> LocalModel:
    params = PARAMS.model_copy(update={"recency_half_life": 1.0})
    return fit_model(tiny_interactions, params, read_items(TINY_DATASET))


def user_index(model: LocalModel) -> dict[str, int]:
    return {user: i for i, user in enumerate(model.user_ids.tolist())}


def item_index(model: LocalModel, catalog_only: int = 0) -> dict[str, int]:
    """Model items first, then `catalog_only` items the model cannot score (c0, c1, ...)."""
    index = {item: i for i, item in enumerate(model.item_ids.tolist())}
    index.update({f"c{k}": model.num_items + k for k in range(catalog_only)})
    return index


def live_state(model: LocalModel) -> LiveState:
    return LiveState(model, user_index(model))


def stored(
    subject: str,
    item: str,
    event_type: str = "watched",
    value: float | None = 1.0,
    at: float = NEW_TIME,
    anonymous: bool = False,
) -> StoredEvent:
    return StoredEvent(
        seq=next(_seq),
        user_id=None if anonymous else subject,
        session_id=subject if anonymous else f"session-of-{subject}",
        event=Event(event_type, item, at, event_value=value),
    )


def dot(model: LocalModel, vector: np.ndarray, item: str) -> float:
    return float(np.asarray(model.item_factors)[item_index(model)[item]] @ vector)


def pairs(model: LocalModel, live: LiveState, subject: str) -> set[tuple[str, str]]:
    """The subject's window as (item id, event type name) pairs (catalog-only items as cK)."""
    found = live.get(subject)
    assert found is not None
    names = {i: item for item, i in item_index(model, 1000).items()}
    window = found.window
    return {
        (names[item], str(window.names[code]))
        for item, code in zip(window.items.tolist(), window.types.tolist(), strict=True)
    }


# --- the solve is implicit's ---------------------------------------------------------------------


@pytest.mark.parametrize("user", ["u01", "u04", "u07", "u09"])
def test_the_solve_of_a_known_user_reproduces_implicit(model: LocalModel, user: str) -> None:
    live = live_state(model)
    trained = live._from_model(user)
    confidences = trained.confidences
    assert confidences  # the model stores its training matrix

    items = sorted(item for item, c in confidences.items() if c > 0)  # as fit eliminates zeros
    row = sp.csr_matrix(
        (
            np.array([confidences[i] for i in items], dtype=np.float32),
            (np.zeros(len(items), dtype=np.int64), np.array(items)),
        ),
        shape=(1, model.num_items),
    )
    als = new_als(live.params)
    als.item_factors = np.array(model.item_factors, dtype=np.float32)
    expected = als.recalculate_user(0, row)

    solved = live._solve(confidences)
    assert solved.dtype == np.float32
    np.testing.assert_allclose(solved, expected, rtol=1e-4, atol=1e-5)
    # And, the model having converged, the vector training stored for the user.
    np.testing.assert_allclose(solved, model.user_factors[user_index(model)[user]], atol=1e-4)


def test_the_training_confidences_are_the_users_summed_event_weights(model: LocalModel) -> None:
    """u07 watched b3 at 0.7, 1.4, 0.9 and clicked it at 0.2: 2*(0.7+1.4+0.9) + 1*0.2."""
    confidences = live_state(model)._from_model("u07").confidences
    b3 = item_index(model)["b3"]
    assert confidences[b3] == pytest.approx(2 * (0.7 + 1.4 + 0.9) + 0.2, rel=1e-6)


def test_a_subject_without_events_is_not_live(model: LocalModel) -> None:
    live = live_state(model)
    assert live.get("u01") is None
    live.apply([], item_index(model))
    assert live.get("u01") is None and live.applied_seq == 0


# --- a new event ---------------------------------------------------------------------------------


def test_a_new_event_adds_its_weight_and_moves_the_vector_toward_the_item(
    model: LocalModel,
) -> None:
    live = live_state(model)
    before = live._from_model("u04")
    a3 = item_index(model)["a3"]
    assert a3 not in before.confidences  # u04 has not seen a3

    event = stored("u04", "a3", "watched", value=0.8)
    live.apply([event], item_index(model))
    after = live.get("u04")

    assert after is not None and after.events == 1
    assert after.confidences[a3] == pytest.approx(live.params.weight_of("watched") * 0.8)
    for item, weight in before.confidences.items():  # the rest of the history as trained
        assert after.confidences[item] == pytest.approx(weight)
    assert dot(model, after.vector, "a3") > dot(model, before.vector, "a3") + 0.1
    np.testing.assert_allclose(after.vector, live._solve(after.confidences))
    assert live.applied_seq == event.seq


def test_events_on_a_known_item_add_up(model: LocalModel) -> None:
    live = live_state(model)
    b3 = item_index(model)["b3"]
    trained = live._from_model("u07").confidences[b3]
    live.apply([stored("u07", "b3", "clicked", 0.5)], item_index(model))
    live.apply(
        [stored("u07", "b3", "watched", 1.0), stored("u07", "b3", "watched", None)],
        item_index(model),
    )
    found = live.get("u07")
    assert found is not None and found.events == 3
    # clicked 1 x 0.5, watched 2 x 1.0, watched 2 x (no value: 1)
    assert found.confidences[b3] == pytest.approx(trained + 0.5 + 2.0 + 2.0, rel=1e-6)


def test_event_values_are_ignored_when_the_model_was_trained_without_them(
    tiny_interactions: pa.Table,
) -> None:
    params = PARAMS.model_copy(update={"use_event_value": False, "iterations": 5})
    plain = fit_model(tiny_interactions, params, similar=False)
    live = live_state(plain)
    live.apply([stored("u04", "a3", "watched", value=0.1)], item_index(plain))
    found = live.get("u04")
    assert found is not None
    assert found.confidences[item_index(plain)["a3"]] == pytest.approx(2.0)


def test_an_event_type_without_a_weight_gets_the_default_weight(model: LocalModel) -> None:
    live = live_state(model)
    live.apply([stored("u04", "a3", "liked", value=1.0)], item_index(model))
    found = live.get("u04")
    assert found is not None
    assert found.confidences[item_index(model)["a3"]] == pytest.approx(PARAMS.default_event_weight)


@pytest.mark.parametrize("anonymous", [True, False])
@pytest.mark.parametrize("watched", sorted(CO_WATCHED))
def test_a_new_subject_is_folded_in_from_one_event(
    model: LocalModel, watched: str, anonymous: bool
) -> None:
    live = live_state(model)
    subject = f"new-{watched}"
    assert subject not in user_index(model)
    live.apply([stored(subject, watched, anonymous=anonymous)], item_index(model))
    found = live.get(subject)

    assert found is not None and found.events == 1
    assert np.linalg.norm(found.vector) > 0.1
    assert found.confidences == {item_index(model)[watched]: pytest.approx(2.0)}
    scores = np.asarray(model.item_factors) @ found.vector
    ranked = [model.item_ids[i] for i in np.argsort(-scores) if model.item_ids[i] != watched]
    assert ranked[0] in CO_WATCHED[watched], ranked
    assert found.history.tolist() == [item_index(model)[watched]]


def test_a_session_is_kept_under_its_session_id(model: LocalModel) -> None:
    live = live_state(model)
    event = StoredEvent(next(_seq), None, "anon-1", Event("watched", "a1", NEW_TIME))
    live.apply([event], item_index(model))
    assert live.get("anon-1") is not None
    assert live.get("session-of-anon-1") is None


def test_one_batch_updates_several_subjects(model: LocalModel) -> None:
    live = live_state(model)
    rows = [stored("u01", "b1"), stored("anon", "a1", anonymous=True), stored("u01", "b2")]
    live.apply(rows, item_index(model))
    assert live.get("u01").events == 2  # type: ignore[union-attr]
    assert live.get("anon").events == 1  # type: ignore[union-attr]
    assert live.applied_seq == rows[-1].seq


# --- the window filters see ----------------------------------------------------------------------


def test_the_window_gains_the_new_pairs_with_lower_cased_types(model: LocalModel) -> None:
    live = live_state(model)
    live.apply(
        [
            stored("u04", "a3", "Watched"),
            stored("u04", "b1", "CLICKED"),
            stored("u04", "p", "Liked"),  # a type training never saw
        ],
        item_index(model),
    )
    assert pairs(model, live, "u04") == {
        ("a1", "watched"),  # trained
        ("a2", "shared"),  # trained
        ("a3", "watched"),
        ("b1", "clicked"),
        ("p", "liked"),
    }
    found = live.get("u04")
    assert found is not None
    assert sorted(model.item_ids[found.history].tolist()) == ["a1", "a2", "a3", "b1", "p"]


def test_a_new_session_window_holds_only_its_events(model: LocalModel) -> None:
    live = live_state(model)
    live.apply(
        [stored("anon", "a2", "clicked", anonymous=True), stored("anon", "c0", anonymous=True)],
        item_index(model, catalog_only=1),
    )
    assert pairs(model, live, "anon") == {("a2", "clicked"), ("c0", "watched")}
    found = live.get("anon")
    assert found is not None
    # The default filter excludes only the items the model can score.
    assert found.history.tolist() == [item_index(model)["a2"]]


def test_the_window_keeps_the_100_most_recent_events_of_a_type(model: LocalModel) -> None:
    """150 new `watched` events on 150 catalog-only items: the 100 newest stay, the trained
    `watched` pairs of u01 fall out, its `clicked` one (another type) stays."""
    live = live_state(model)
    count = 150
    events = [stored("u01", f"c{k}", "watched", at=NEW_TIME + k) for k in range(count)]
    live.apply(events[:70], item_index(model, count))  # in two batches, as polling reads them
    live.apply(events[70:], item_index(model, count))

    window = pairs(model, live, "u01")
    watched = {item for item, kind in window if kind == "watched"}
    assert len(watched) == INTERACTIONS_PER_EVENT_TYPE
    assert watched == {f"c{k}" for k in range(count - INTERACTIONS_PER_EVENT_TYPE, count)}
    assert {pair for pair in window if pair[1] != "watched"} == {("a3", "clicked")}
    found = live.get("u01")
    assert found is not None
    assert model.item_ids[found.history].tolist() == ["a3"]


def test_the_window_cap_counts_events_of_one_type_only(model: LocalModel) -> None:
    live = live_state(model)
    count = 120
    rows = [
        stored("anon", f"c{k}", "clicked", at=NEW_TIME + k, anonymous=True) for k in range(count)
    ]
    rows.append(stored("anon", "a1", "watched", at=NEW_TIME + count, anonymous=True))
    live.apply(rows, item_index(model, count))
    window = pairs(model, live, "anon")
    assert sum(kind == "clicked" for _, kind in window) == INTERACTIONS_PER_EVENT_TYPE
    assert ("a1", "watched") in window
    assert ("c0", "clicked") not in window and (f"c{count - 1}", "clicked") in window


# --- items known nowhere, items known only to the catalog --------------------------------------


def test_events_for_items_known_nowhere_are_ignored(model: LocalModel) -> None:
    live = live_state(model)
    before = live._from_model("u02")
    live.apply([stored("u02", "no-such-item"), stored("u02", "nor-this")], item_index(model))
    found = live.get("u02")
    assert found is not None
    assert found.confidences == pytest.approx(before.confidences)
    np.testing.assert_allclose(found.vector, before.vector, atol=1e-4)
    assert pairs(model, live, "u02") == pairs_of_training(model, "u02")

    live.apply([stored("anon", "no-such-item", anonymous=True)], item_index(model))
    session = live.get("anon")
    assert session is not None
    assert not np.any(session.vector) and len(session.window.items) == 0


def test_a_catalog_only_item_joins_the_window_but_not_the_vector(model: LocalModel) -> None:
    live = live_state(model)
    before = live._from_model("u02")
    live.apply([stored("u02", "c0")], item_index(model, catalog_only=1))
    found = live.get("u02")
    assert found is not None
    assert found.confidences == pytest.approx(before.confidences)
    assert ("c0", "watched") in pairs(model, live, "u02")
    assert model.num_items not in found.history.tolist()


def pairs_of_training(model: LocalModel, user: str) -> set[tuple[str, str]]:
    u = user_index(model)[user]
    start, stop = model.recent_indptr[u], model.recent_indptr[u + 1]
    return {
        (str(model.item_ids[item]), str(model.event_types[code]))
        for item, code in zip(
            model.recent_items[start:stop].tolist(),
            model.recent_types[start:stop].tolist(),
            strict=True,
        )
    }


# --- recency -------------------------------------------------------------------------------------


def test_recency_halves_older_confidences_per_half_life_of_new_events(
    recency_model: LocalModel,
) -> None:
    live = live_state(recency_model)
    assert live.params.recency_half_life == 1.0
    trained = dict(live._from_model("u01").confidences)
    index = item_index(recency_model)
    live.apply([stored("u01", "b1", at=NEW_TIME), stored("u01", "b2", at=NEW_TIME + 1)], index)
    found = live.get("u01")
    assert found is not None
    for item, weight in trained.items():  # two newer events, half-life 1: a quarter
        assert found.confidences[item] == pytest.approx(weight * 0.25, rel=1e-6)
    assert found.confidences[index["b1"]] == pytest.approx(2.0 * 0.5)
    assert found.confidences[index["b2"]] == pytest.approx(2.0)


def test_recency_orders_by_sent_at_not_arrival(recency_model: LocalModel) -> None:
    live = live_state(recency_model)
    index = item_index(recency_model)
    live.apply(
        [
            stored("anon", "b2", at=NEW_TIME + 10, anonymous=True),
            stored("anon", "b1", at=NEW_TIME, anonymous=True),
        ],
        index,
    )
    found = live.get("anon")
    assert found is not None
    assert found.confidences[index["b1"]] == pytest.approx(1.0)  # older: halved once
    assert found.confidences[index["b2"]] == pytest.approx(2.0)


def test_without_recency_old_and_new_weigh_alike(model: LocalModel) -> None:
    live = live_state(model)
    trained = dict(live._from_model("u01").confidences)
    live.apply([stored("u01", "b1"), stored("u01", "b2")], item_index(model))
    found = live.get("u01")
    assert found is not None
    for item, weight in trained.items():
        assert found.confidences[item] == pytest.approx(weight)
