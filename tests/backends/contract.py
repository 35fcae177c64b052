"""The backend contract: the behaviour every Backend must show, as one reusable test suite.

In the spirit of implicit's `RecommenderBaseTestMixin`: a backend's tests subclass
`BackendContract`, implement `make_backend(dataset_dir)` and inherit every test below.
The suite only observes behaviour through the Backend interface, on the tiny dataset in
tests/fixtures/tiny_dataset whose right answers are known (see its README.md):

- users u01-u04 watch the "a" items (a1, a2, a3), users u05-u08 the "b" items; u04 has
  not seen a3 and u08 has not seen b3, so those are their best next items;
- `p` is watched across both groups; u09 watches p and two items missing from items.csv
  (orphan1, orphan2); `cold1` is in items.csv but no one interacted with it;
- distinct users per item: p 5; a1, a2, b1, b2 4; a3, b3 3; orphan1, orphan2 1. b3 has
  the most events (u07 re-watches it), so counting events instead of users is caught.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from recs.backends.base import Backend, ModelInfo, Recommendations
from recs.backends.errors import BackendError

TINY_DATASET = Path(__file__).resolve().parent.parent / "fixtures" / "tiny_dataset"

HISTORY: dict[str, set[str]] = {
    "u01": {"a1", "a2", "a3", "p"},
    "u02": {"a1", "a2", "a3", "p"},
    "u03": {"a1", "a2", "a3"},
    "u04": {"a1", "a2"},
    "u05": {"b1", "b2", "b3", "p"},
    "u06": {"b1", "b2", "b3", "p"},
    "u07": {"b1", "b2", "b3"},
    "u08": {"b1", "b2"},
    "u09": {"p", "orphan1", "orphan2"},
}
# Items with interactions: what the model knows, and so the candidates it can score.
MODEL_ITEMS: set[str] = set().union(*HISTORY.values())
# By distinct users, ties by item id ascending.
POPULAR_ORDER = ["p", "a1", "a2", "b1", "b2", "a3", "b3", "orphan1", "orphan2"]
# The next item each of these users should watch.
BEST_NEXT = {"u04": "a3", "u08": "b3"}
# The items always co-watched with a given item (its similar items come first).
CO_WATCHED = {"a1": {"a2", "a3"}, "a2": {"a1", "a3"}, "b1": {"b2", "b3"}}
COLD_ITEM = "cold1"  # in the catalog, no interactions
UNKNOWN_USER = "user-never-seen"
UNKNOWN_ITEM = "item-never-seen"
ALL = 500  # the largest num_results the service allows


class BackendContract:
    """Mixin of contract tests; subclasses implement `make_backend` (and may set tolerance).

    `make_backend` is called once per test class; it may use `self.tmp_path_factory`
    for files it needs. The backend is closed after the class's tests.
    """

    # How far a sum of scores may be from 1 (a wire format may round scores).
    score_tolerance: ClassVar[float] = 1e-6

    def make_backend(self, dataset_dir: Path) -> Backend:
        """A started backend trained (or pointed at a model trained) on `dataset_dir`."""
        raise NotImplementedError

    tmp_path_factory: ClassVar[pytest.TempPathFactory]

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
        cls.tmp_path_factory = tmp_path_factory
        backend = cls().make_backend(TINY_DATASET)
        yield backend
        backend.close()

    # recommend ------------------------------------------------------------------------

    @pytest.mark.parametrize("user", sorted(HISTORY))
    def test_recommend_excludes_history_and_returns_every_candidate(
        self, backend: Backend, user: str
    ) -> None:
        ids = item_ids(backend.recommend(user, ALL))
        assert len(ids) == len(set(ids))
        assert set(ids) == MODEL_ITEMS - HISTORY[user]

    @pytest.mark.parametrize("user", sorted(HISTORY))
    def test_recommend_scores_are_a_distribution_best_first(
        self, backend: Backend, user: str
    ) -> None:
        scores = item_scores(backend.recommend(user, ALL))
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert scores == sorted(scores, reverse=True)
        assert sum(scores) == pytest.approx(1.0, abs=self.score_tolerance)

    @pytest.mark.parametrize("user", sorted(BEST_NEXT))
    def test_recommend_puts_the_co_watched_item_first(self, backend: Backend, user: str) -> None:
        assert item_ids(backend.recommend(user, 1)) == [BEST_NEXT[user]]

    @pytest.mark.parametrize("num_results", [1, 2, 3])
    def test_recommend_top_n_is_the_head_of_the_full_list(
        self, backend: Backend, num_results: int
    ) -> None:
        full = backend.recommend("u04", ALL)
        head = backend.recommend("u04", num_results)
        assert item_ids(head) == item_ids(full)[:num_results]
        assert item_scores(head) == pytest.approx(item_scores(full)[:num_results])

    @pytest.mark.parametrize("num_results", [1, 3, ALL])
    def test_recommend_unknown_user_gets_popular_items(
        self, backend: Backend, num_results: int
    ) -> None:
        assert item_ids(backend.recommend(UNKNOWN_USER, num_results)) == item_ids(
            backend.popular_items(num_results)
        )

    # similar_items --------------------------------------------------------------------

    @pytest.mark.parametrize("item", sorted(MODEL_ITEMS))
    def test_similar_items_never_include_the_item(self, backend: Backend, item: str) -> None:
        answer = backend.similar_items(item, ALL)
        ids = item_ids(answer)
        assert ids, "a known item has similar items"
        assert item not in ids
        assert len(ids) == len(set(ids))
        scores = item_scores(answer)
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert scores == sorted(scores, reverse=True)

    @pytest.mark.parametrize("item", sorted(CO_WATCHED))
    def test_similar_items_start_with_co_watched_items(self, backend: Backend, item: str) -> None:
        expected = CO_WATCHED[item]
        assert set(item_ids(backend.similar_items(item, len(expected)))) == expected

    @pytest.mark.parametrize("item", [UNKNOWN_ITEM, COLD_ITEM])
    @pytest.mark.parametrize("num_results", [1, 4, ALL])
    def test_similar_items_of_unknown_item_are_popular_items(
        self, backend: Backend, item: str, num_results: int
    ) -> None:
        assert item_ids(backend.similar_items(item, num_results)) == item_ids(
            backend.popular_items(num_results)
        )

    # popular_items --------------------------------------------------------------------

    def test_popular_items_by_distinct_users_ties_by_id(self, backend: Backend) -> None:
        assert item_ids(backend.popular_items(ALL)) == POPULAR_ORDER

    @pytest.mark.parametrize("num_results", [1, 2, 5])
    def test_popular_items_top_n_is_a_prefix(self, backend: Backend, num_results: int) -> None:
        assert item_ids(backend.popular_items(num_results)) == POPULAR_ORDER[:num_results]

    def test_popular_items_scores_best_first_in_unit_interval(self, backend: Backend) -> None:
        scores = item_scores(backend.popular_items(ALL))
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert scores == sorted(scores, reverse=True)

    # rerank ---------------------------------------------------------------------------

    def test_rerank_returns_the_distinct_input_ids(self, backend: Backend) -> None:
        inputs = ["b1", "a3", UNKNOWN_ITEM, "a3", "p", COLD_ITEM, "b1"]
        ids = item_ids(backend.rerank("u04", inputs))
        assert sorted(ids) == sorted(set(inputs))

    @pytest.mark.parametrize("user", ["u04", "u08", UNKNOWN_USER])
    def test_rerank_puts_unknown_ids_last_in_input_order_with_score_zero(
        self, backend: Backend, user: str
    ) -> None:
        inputs = [COLD_ITEM, "b2", "zz-unknown", "a3", UNKNOWN_ITEM, "p", "zz-unknown"]
        answer = backend.rerank(user, inputs)
        assert item_ids(answer)[3:] == [COLD_ITEM, "zz-unknown", UNKNOWN_ITEM]
        assert item_scores(answer)[3:] == [0.0, 0.0, 0.0]
        known = answer.items[:3]
        assert {i.item_id for i in known} == {"b2", "a3", "p"}
        assert [i.score for i in known] == sorted((i.score for i in known), reverse=True)
        assert all(0.0 <= i.score <= 1.0 for i in known)
        assert sum(i.score for i in known) == pytest.approx(1.0, abs=self.score_tolerance)

    @pytest.mark.parametrize("user", sorted(BEST_NEXT))
    def test_rerank_puts_the_co_watched_item_first(self, backend: Backend, user: str) -> None:
        best = BEST_NEXT[user]
        others = sorted(MODEL_ITEMS - HISTORY[user] - {best})  # the best one is given last
        assert item_ids(backend.rerank(user, [*others, best]))[0] == best

    def test_rerank_unknown_user_orders_by_popularity(self, backend: Backend) -> None:
        inputs = ["orphan2", "b3", "a1", "p", "b2"]
        ids = item_ids(backend.rerank(UNKNOWN_USER, inputs))
        assert ids == [i for i in POPULAR_ORDER if i in inputs]

    def test_rerank_only_unknown_ids_keeps_input_order(self, backend: Backend) -> None:
        inputs = [UNKNOWN_ITEM, COLD_ITEM, "zz-unknown"]
        answer = backend.rerank("u01", inputs)
        assert item_ids(answer) == inputs
        assert item_scores(answer) == [0.0, 0.0, 0.0]

    def test_rerank_a_single_known_id_scores_one(self, backend: Backend) -> None:
        answer = backend.rerank("u01", ["b1"])
        assert item_ids(answer) == ["b1"]
        assert item_scores(answer) == [pytest.approx(1.0, abs=self.score_tolerance)]

    # every answer ---------------------------------------------------------------------

    def test_every_answer_has_a_fresh_uuid4_recommendation_id(self, backend: Backend) -> None:
        answers = [
            backend.recommend("u01", 3),
            backend.recommend("u01", 3),
            backend.recommend(UNKNOWN_USER, 3),
            backend.similar_items("a1", 3),
            backend.similar_items(UNKNOWN_ITEM, 3),
            backend.popular_items(3),
            backend.popular_items(3),
            backend.rerank("u01", ["a1", "b1"]),
        ]
        ids = [answer.recommendation_id for answer in answers]
        assert all(uuid.UUID(i).version == 4 for i in ids)
        assert len(set(ids)) == len(ids)

    @pytest.mark.parametrize("call", ["recommend", "similar_items", "popular_items", "rerank"])
    def test_odd_inputs_raise_nothing_but_backend_errors(self, backend: Backend, call: str) -> None:
        odd_ids = ["", " ", "é" * 256, "a1\x00", "u01"]
        for odd in odd_ids:
            try:
                if call == "recommend":
                    backend.recommend(odd, 5)
                elif call == "similar_items":
                    backend.similar_items(odd, 5)
                elif call == "popular_items":
                    backend.popular_items(5, user_id=odd)
                else:
                    backend.rerank(odd, [odd, "a1"])
            except BackendError:
                pass

    def test_info_names_the_backend(self, backend: Backend) -> None:
        info = backend.info()
        assert isinstance(info, ModelInfo)
        assert info.backend
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in info.details.items())


def item_ids(answer: Recommendations) -> list[str]:
    return [item.item_id for item in answer.items]


def item_scores(answer: Recommendations) -> list[float]:
    return [item.score for item in answer.items]
