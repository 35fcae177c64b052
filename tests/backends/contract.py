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

Filters (`FILTERS`, which `make_backend` must serve, the default `exclude_interacted`
included) are checked against an oracle written apart from any engine
(tests/backends/filter_reference.py, Personalize's semantics): for every filter, user and
item tried, the filtered answer is the unfiltered answer without the items the oracle
drops, cut to num_results, every score unchanged. "Unfiltered" is asked through
`keep_all`, an EXCLUDE whose parameter is left out, which Personalize ignores
(../shared/reference/personalize.md section 1.2), and is itself checked to hold every
candidate.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from recs.backends.base import Backend, ModelInfo, Recommendations
from recs.backends.errors import BackendError, InvalidRequestError
from recs.backends.filtering import DEFAULT_FILTER_NAME, FilterCall, FilterSet
from tests.backends.filter_reference import ReferenceFilters

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

# The filters every backend under contract serves (with the default exclude_interacted).
FILTERS: dict[str, str] = {
    # Items: a category parameter (INCLUDE: required), numbers fixed and as a parameter
    "category": "INCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES)",
    "short": "INCLUDE ItemID WHERE Items.DURATION < 30",
    "max_duration": "INCLUDE ItemID WHERE Items.DURATION <= $MAX_DURATION",
    "not_animals_or_sports": 'INCLUDE ItemID WHERE Items.CATEGORIES NOT IN ("animals", "sports")',
    "durations": "INCLUDE ItemID WHERE Items.DURATION IN (31, 45.5, 15)",  # as numbers
    # AND binds tighter than OR; a number in an IN list
    "and_or": (
        'INCLUDE ItemID WHERE Items.CATEGORIES IN ("animals") AND Items.DURATION > 25'
        ' OR Items.CATEGORIES IN ("sports") AND Items.DURATION < 20'
        " OR Items.CREATION_TIMESTAMP IN (1690000600)"
    ),
    # Interactions: one event type (case-insensitive), every type (== the default), NOT IN
    "unwatched": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("WATCHED")',
    "unseen": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")',
    "not_only_watched": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE NOT IN ("watched")',
    "event_types": "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ($EVENT_TYPES)",
    # Items and Interactions parts, INCLUDE and EXCLUDE, joined by |
    "music_comedy_or_clicked_unwatched": (
        'INCLUDE ItemID WHERE Items.CATEGORIES IN ("music", "comedy")'
        ' | INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("clicked")'
        ' | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")'
    ),
    # EXCLUDE with an optional parameter: without it the part is ignored
    "keep_all": "EXCLUDE ItemID WHERE Items.CATEGORIES IN ($SKIP)",
    "skip_unseen": (
        "EXCLUDE ItemID WHERE Items.CATEGORIES IN ($SKIP)"
        ' | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")'
    ),
    # CurrentItem: similar items only
    "same_category": "INCLUDE ItemID WHERE Items.CATEGORIES IN CurrentItem.CATEGORIES",
    "shorter": "INCLUDE ItemID WHERE Items.DURATION < CurrentItem.DURATION",
    "other_category": "INCLUDE ItemID WHERE Items.CATEGORIES NOT IN CurrentItem.CATEGORIES",
}
KEEP_ALL = ("keep_all", {})  # no filter at all, asked through a filter
# (filter name, filter_values) of calls without a current item.
FILTER_CASES: list[tuple[str, dict[str, str]]] = [
    ("category", {"CATEGORIES": '"music"'}),
    ("category", {"CATEGORIES": '"animals","comedy"'}),
    ("category", {"CATEGORIES": "news"}),  # only cold1, which the model does not know
    ("short", {}),
    ("max_duration", {"MAX_DURATION": "27.5"}),
    ("not_animals_or_sports", {}),
    ("durations", {}),
    ("and_or", {}),
    ("unwatched", {}),
    ("unseen", {}),
    (DEFAULT_FILTER_NAME, {}),
    ("not_only_watched", {}),
    ("event_types", {"EVENT_TYPES": '"clicked","shared"'}),
    ("event_types", {}),
    ("music_comedy_or_clicked_unwatched", {}),
    ("keep_all", {"SKIP": '"sports"'}),
    ("skip_unseen", {}),
    ("skip_unseen", {"SKIP": '"animals","comedy"'}),
]
CURRENT_ITEM_CASES: list[tuple[str, dict[str, str]]] = [
    ("same_category", {}),
    ("shorter", {}),
    ("other_category", {}),
]
USERS = [*sorted(HISTORY), UNKNOWN_USER]
RERANK_INPUTS = ["b1", "a3", UNKNOWN_ITEM, "a3", "p", COLD_ITEM, "b2", "orphan1", "a1", "b1"]


def case_id(case: tuple[str, dict[str, str]]) -> str:
    name, values = case
    return name + "".join(f"-{v}" for v in values.values()).replace('"', "")


class BackendContract:
    """Mixin of contract tests; subclasses implement `make_backend` (and may set tolerance).

    `make_backend` is called once per test class; it may use `self.tmp_path_factory`
    for files it needs. The backend is closed after the class's tests.
    """

    # How far a sum of scores may be from 1 (a wire format may round scores).
    score_tolerance: ClassVar[float] = 1e-6
    # The filters `make_backend` must serve (`backend.filters`), the default one added.
    FILTERS: ClassVar[dict[str, str]] = FILTERS

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
        # Shares of the softmax over every item: 1 in all, less what the filter leaves out.
        scores = item_scores(backend.recommend(user, ALL))
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert scores == sorted(scores, reverse=True)
        assert sum(scores) < 1.0
        every = item_scores(backend.recommend(user, ALL, resolve(backend, KEEP_ALL)))
        assert every == sorted(every, reverse=True)
        assert sum(every) == pytest.approx(1.0, abs=self.score_tolerance)

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

    # filters --------------------------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def reference(cls) -> ReferenceFilters:
        return ReferenceFilters(TINY_DATASET)

    def test_the_backend_serves_the_contract_filters(self, backend: Backend) -> None:
        assert set(backend.filters.filters) == {*self.FILTERS, DEFAULT_FILTER_NAME}
        assert backend.filters.default is not None
        assert backend.filters.default.name == DEFAULT_FILTER_NAME

    @pytest.mark.parametrize("user", USERS)
    def test_keep_all_is_no_filter(self, backend: Backend, user: str) -> None:
        # An EXCLUDE part whose parameter is left out is ignored: every candidate comes back.
        assert set(item_ids(backend.recommend(user, ALL, resolve(backend, KEEP_ALL)))) == (
            MODEL_ITEMS
        )
        assert item_ids(backend.popular_items(ALL, user, resolve(backend, KEEP_ALL))) == (
            POPULAR_ORDER
        )

    @pytest.mark.parametrize("user", USERS)
    def test_the_default_filter_drops_exactly_the_users_items(
        self, backend: Backend, user: str, reference: ReferenceFilters
    ) -> None:
        # Tiny users have fewer than 100 interactions per event type: the window is all.
        history = HISTORY.get(user, set())
        assert reference.user_items(user) == history
        unfiltered = backend.recommend(user, ALL, resolve(backend, KEEP_ALL))
        expected = [(i, s) for i, s in pairs(unfiltered) if i not in history]
        for answer in (
            backend.recommend(user, ALL),
            backend.recommend(user, ALL, resolve(backend, (DEFAULT_FILTER_NAME, {}))),
            backend.recommend(user, ALL, resolve(backend, ("unseen", {}))),
            backend.recommend(user, ALL, resolve(backend, ("skip_unseen", {}))),
        ):
            assert_same_answer(answer, expected)

    @pytest.mark.parametrize("case", FILTER_CASES, ids=case_id)
    def test_recommend_through_a_filter_is_the_unfiltered_answer_without_dropped_items(
        self, backend: Backend, case: tuple[str, dict[str, str]], reference: ReferenceFilters
    ) -> None:
        call = resolve(backend, case)
        for user in USERS:
            unfiltered = backend.recommend(user, ALL, resolve(backend, KEEP_ALL))
            assert set(item_ids(unfiltered)) == MODEL_ITEMS
            expected = [(i, s) for i, s in pairs(unfiltered) if reference.keeps(call, i, user)]
            for n in (ALL, 3, 1):
                assert_same_answer(backend.recommend(user, n, call), expected[:n], user)

    @pytest.mark.parametrize("case", FILTER_CASES, ids=case_id)
    def test_recommend_many_applies_each_requests_filter(
        self, backend: Backend, case: tuple[str, dict[str, str]]
    ) -> None:
        call = resolve(backend, case)
        requests = [(user, n) for user in USERS for n in (ALL, 2)]
        calls = [call if k % 3 else None for k in range(len(requests))]
        batched = backend.recommend_many(requests, calls)
        for (user, n), one, answer in zip(requests, calls, batched, strict=True):
            # A batch may be scored by one matrix product: float32 rounding differs.
            single = backend.recommend(user, n, one)
            assert item_ids(answer) == item_ids(single), user
            assert item_scores(answer) == pytest.approx(item_scores(single), rel=1e-5)

    def test_a_filter_leaving_few_items_gives_a_shorter_answer(self, backend: Backend) -> None:
        music = resolve(backend, ("category", {"CATEGORIES": '"music"'}))
        news = resolve(backend, ("category", {"CATEGORIES": "news"}))  # only cold1
        for user in ("u01", "u04", UNKNOWN_USER):
            assert item_ids(backend.recommend(user, 5, music)) == ["a3"]
            assert item_ids(backend.recommend(user, 5, news)) == []
        assert item_ids(backend.popular_items(5, None, music)) == ["a3"]
        assert item_ids(backend.similar_items("a1", 5, music)) == ["a3"]
        assert item_ids(backend.similar_items("a3", 5, music)) == []  # never the item itself

    @pytest.mark.parametrize("case", [*FILTER_CASES, *CURRENT_ITEM_CASES], ids=case_id)
    def test_similar_items_through_a_filter_are_the_unfiltered_ones_without_dropped_items(
        self, backend: Backend, case: tuple[str, dict[str, str]], reference: ReferenceFilters
    ) -> None:
        # Neighbours that pass, then popular items that pass; never the item itself. No
        # user: Interactions conditions match nothing.
        call = resolve(backend, case, current_item=True)
        for item in [*sorted(MODEL_ITEMS), COLD_ITEM, UNKNOWN_ITEM]:
            unfiltered = backend.similar_items(item, ALL)
            assert set(item_ids(unfiltered)) == MODEL_ITEMS - {item}
            expected = [
                (i, s) for i, s in pairs(unfiltered) if reference.keeps(call, i, None, item)
            ]
            for n in (ALL, 2):
                assert_same_answer(backend.similar_items(item, n, call), expected[:n], item)

    def test_similar_items_compare_with_the_current_items_fields(self, backend: Backend) -> None:
        same = resolve(backend, ("same_category", {}), current_item=True)
        shorter = resolve(backend, ("shorter", {}), current_item=True)
        assert set(item_ids(backend.similar_items("a3", ALL, same))) == {"a1", "a2"}
        assert set(item_ids(backend.similar_items("b1", ALL, same))) == {"b2", "b3"}
        assert item_ids(backend.similar_items("orphan1", ALL, same)) == []  # not in items.csv
        assert item_ids(backend.similar_items(COLD_ITEM, ALL, same)) == []  # news: none known
        # cold1 is in items.csv (60 s): its unknown-item answer is popular items shorter than it
        assert item_ids(backend.similar_items(COLD_ITEM, ALL, shorter)) == [
            i for i in POPULAR_ORDER if not i.startswith("orphan")
        ]
        assert set(item_ids(backend.similar_items("b3", ALL, shorter))) == {
            "a1",
            "a3",
            "b1",
            "b2",
            "p",
        }

    @pytest.mark.parametrize("case", FILTER_CASES, ids=case_id)
    def test_popular_items_through_a_filter_drop_what_it_drops_for_the_user(
        self, backend: Backend, case: tuple[str, dict[str, str]], reference: ReferenceFilters
    ) -> None:
        call = resolve(backend, case)
        unfiltered = backend.popular_items(ALL)
        assert item_ids(unfiltered) == POPULAR_ORDER
        for user in [None, *USERS]:
            expected = [(i, s) for i, s in pairs(unfiltered) if reference.keeps(call, i, user)]
            for n in (ALL, 2):
                assert_same_answer(backend.popular_items(n, user, call), expected[:n], user)

    @pytest.mark.parametrize("user", sorted(HISTORY))
    def test_popular_items_without_what_the_user_saw(self, backend: Backend, user: str) -> None:
        unseen = resolve(backend, ("unseen", {}))
        expected = [i for i in POPULAR_ORDER if i not in HISTORY[user]]
        assert item_ids(backend.popular_items(ALL, user, unseen)) == expected
        assert item_ids(backend.popular_items(ALL, None, unseen)) == POPULAR_ORDER

    @pytest.mark.parametrize("case", FILTER_CASES, ids=case_id)
    def test_rerank_through_a_filter_drops_filtered_ids_and_keeps_the_others_scores(
        self, backend: Backend, case: tuple[str, dict[str, str]], reference: ReferenceFilters
    ) -> None:
        call = resolve(backend, case)
        for user in USERS:
            unfiltered = backend.rerank(user, RERANK_INPUTS)
            assert sorted(item_ids(unfiltered)) == sorted(set(RERANK_INPUTS))
            expected = [(i, s) for i, s in pairs(unfiltered) if reference.keeps(call, i, user)]
            assert_same_answer(backend.rerank(user, RERANK_INPUTS, call), expected, user)

    def test_rerank_keeps_ids_outside_the_model_a_filter_lets_through(
        self, backend: Backend
    ) -> None:
        news = resolve(backend, ("category", {"CATEGORIES": "news"}))
        answer = backend.rerank("u01", RERANK_INPUTS, news)
        assert pairs(answer) == [(COLD_ITEM, 0.0)]  # in items.csv, unknown to the model
        not_in = resolve(backend, ("not_animals_or_sports", {}))
        ids = item_ids(backend.rerank("u01", RERANK_INPUTS, not_in))
        assert ids[:1] == ["p"] and set(ids[1:]) == {UNKNOWN_ITEM, COLD_ITEM, "orphan1"}

    def test_an_unknown_filter_name_is_refused(self, backend: Backend) -> None:
        with pytest.raises(InvalidRequestError) as refused:
            backend.filters.resolve("no-such-filter", {})
        assert refused.value.field == "filter_name"

    def test_a_current_item_filter_is_refused_without_a_current_item(
        self, backend: Backend
    ) -> None:
        with pytest.raises(InvalidRequestError) as refused:
            backend.filters.resolve("same_category", {})
        assert refused.value.field == "filter_name"

    @pytest.mark.parametrize("values", [{}, {"CATEGORIES": ""}])
    def test_an_include_parameter_is_required(
        self, backend: Backend, values: dict[str, str]
    ) -> None:
        with pytest.raises(InvalidRequestError) as refused:
            backend.filters.resolve("category", values)
        assert refused.value.field == "filter_values.CATEGORIES"

    @pytest.mark.parametrize("value", ["long", '"10","30"'])
    @pytest.mark.parametrize("call", ["recommend", "similar_items", "popular_items", "rerank"])
    def test_a_compared_parameter_must_be_one_number(
        self, backend: Backend, value: str, call: str
    ) -> None:
        bad = resolve(backend, ("max_duration", {"MAX_DURATION": value}))
        with pytest.raises(InvalidRequestError):
            if call == "recommend":
                backend.recommend("u01", 5, bad)
            elif call == "similar_items":
                backend.similar_items("a1", 5, bad)
            elif call == "popular_items":
                backend.popular_items(5, "u01", bad)
            else:
                backend.rerank("u01", ["a1", "b1"], bad)

    def test_an_exclude_parameter_left_out_ignores_its_part(self, backend: Backend) -> None:
        for user in ("u01", "u09", UNKNOWN_USER):
            keep_all = resolve(backend, KEEP_ALL)
            assert set(item_ids(backend.recommend(user, ALL, keep_all))) == MODEL_ITEMS
            skip = resolve(backend, ("skip_unseen", {}))
            assert set(item_ids(backend.recommend(user, ALL, skip))) == (
                MODEL_ITEMS - HISTORY.get(user, set())
            )
            given = resolve(backend, ("skip_unseen", {"SKIP": '"comedy"'}))
            assert set(item_ids(backend.recommend(user, ALL, given))) == (
                MODEL_ITEMS - HISTORY.get(user, set()) - {"p"}
            )


def resolve(
    backend: Backend, case: tuple[str, dict[str, str]], current_item: bool = False
) -> FilterCall:
    """The backend's FilterCall for (filter name, filter_values), checked as the server does."""
    name, values = case
    filters: FilterSet = backend.filters
    call = filters.resolve(name, values, current_item=current_item)
    assert call is not None
    return call


def pairs(answer: Recommendations) -> list[tuple[str, float]]:
    return list(zip(answer.item_ids, answer.scores, strict=True))


def assert_same_answer(
    answer: Recommendations, expected: list[tuple[str, float]], context: object = None
) -> None:
    """The same ids in the same order, with the same scores."""
    assert item_ids(answer) == [i for i, _ in expected], context
    assert item_scores(answer) == pytest.approx([s for _, s in expected], rel=1e-9, abs=1e-12)


def item_ids(answer: Recommendations) -> list[str]:
    return [item.item_id for item in answer.items]


def item_scores(answer: Recommendations) -> list[float]:
    return [item.score for item in answer.items]
