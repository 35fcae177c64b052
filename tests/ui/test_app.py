"""The page, run by Streamlit's own testing API against real services."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from recs.client import RecsClient
from recs.ui import logic
from recs.ui.settings import ENV_COMPARE_TARGET, ENV_DATA_DIR, ENV_EVAL_JSON, ENV_TARGET
from tests.ui.conftest import (
    EXPLORED,
    TINY_DATASET,
    ServiceThread,
    UntrendingBackend,
    free_port,
)

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"


@pytest.fixture
def open_page(monkeypatch: pytest.MonkeyPatch):
    """Run the page once for the given settings and URL parameters."""

    def run(target: str, data: Path | None = TINY_DATASET, **params: str) -> AppTest:
        monkeypatch.setenv(ENV_TARGET, target)
        if data is not None:
            monkeypatch.setenv(ENV_DATA_DIR, str(data))
        else:
            monkeypatch.delenv(ENV_DATA_DIR, raising=False)
        page = AppTest.from_file(str(APP), default_timeout=30)
        page.query_params.update(params)
        page.run()
        assert not page.exception, [e.value for e in page.exception]
        return page

    return run


def markdown_in(page: AppTest, key: str) -> str:
    """The Markdown shown inside the container keyed `key`."""
    return "\n".join(node.value for node in page.get_by_key(key).markdown)


def test_user_link_shows_history_beside_the_clients_recommendations(open_page, service):
    page = open_page(service.target, user="u01")

    with RecsClient(service.target) as client:
        expected = client.recommend("u01", logic.DEFAULT_NUM_RESULTS)
    assert expected.items
    assert markdown_in(page, "recommendations") == logic.results_markdown(expected.items)
    history = markdown_in(page, "history")
    # u01's newest interaction first: "Everyone watches this" (p) at 1700000400.
    rows = [line for line in history.splitlines() if line.startswith("| 2023")]
    assert "Everyone watches this" in rows[0] and "watched" in rows[0]
    assert "Parrot sings" in history and "clicked" in history
    assert len(rows) == 5
    assert page.query_params["user"] == "u01" and page.query_params["view"] == "user"


def test_item_link_opens_similar_videos(open_page, service):
    page = open_page(service.target, item="a1")

    assert page.radio(key="view").value == "similar"
    assert "Cats at play" in page.header[0].value
    with RecsClient(service.target) as client:
        expected = client.similar("a1", logic.DEFAULT_NUM_RESULTS)
    assert markdown_in(page, "similar") == logic.results_markdown(expected.items)


def test_popular_view_shows_the_clients_popular_videos(open_page, service):
    page = open_page(service.target, view="popular", n="3")

    with RecsClient(service.target) as client:
        expected = client.popular(3)
    assert markdown_in(page, "popular") == logic.results_markdown(expected.items)


def test_trending_view_shows_the_clients_trending_videos(open_page, fixed_service):
    page = open_page(fixed_service.target, view="trending", n="3")

    assert page.radio(key="view").value == "trending"
    assert page.header[0].value == "Trending now"
    with RecsClient(fixed_service.target) as client:
        expected = client.trending(3)
        popular = client.popular(3)
    assert expected.item_ids == ["zz", "cold1", "a1"]  # FixedBackend's trending order
    assert expected.item_ids != popular.item_ids  # so the view asked for trending, not popular
    assert markdown_in(page, "trending") == logic.results_markdown(expected.items)
    assert page.query_params == {"view": "trending", "n": "3"}


def test_trending_view_shows_the_local_engines_trending_videos(open_page, service):
    page = open_page(service.target, view="trending", n="3")

    with RecsClient(service.target) as client:
        expected = client.trending(3)
    assert expected.items
    assert markdown_in(page, "trending") == logic.results_markdown(expected.items)


def test_trending_is_listed_beside_popular_and_chosen_in_the_sidebar(open_page, fixed_service):
    page = open_page(fixed_service.target, view="popular", n="2")
    views = page.radio(key="view").options
    assert views.index("Trending now") == views.index("Popular now") + 1

    page.radio(key="view").set_value("trending").run()

    assert page.query_params["view"] == "trending"
    with RecsClient(fixed_service.target) as client:
        expected = client.trending(2)
    assert markdown_in(page, "trending") == logic.results_markdown(expected.items)


def test_a_service_without_trending_is_said_in_words(open_page, tiny_catalog):
    service = ServiceThread(UntrendingBackend(["b1", "a1"]), tiny_catalog).start()
    try:
        page = open_page(service.target, view="trending")
    finally:
        service.stop()

    assert len(page.error) == 1
    message = page.error[0].value
    assert f"The service at {service.target} is misconfigured" in message
    assert "Status FAILED_PRECONDITION: the untrending backend has no trending recipe" in message
    assert page.button(key="retry-trending").label == "Try again"


def test_service_down_is_said_in_words(open_page):
    target = f"127.0.0.1:{free_port()}"
    page = open_page(target, user="u01")

    assert len(page.error) == 1
    message = page.error[0].value
    assert f"The service at {target} cannot be reached" in message
    assert "Status UNAVAILABLE:" in message
    assert "Traceback" not in message
    assert page.button(key="retry-user").label == "Try again"
    # History comes from the dataset, so it still shows.
    assert "Everyone watches this" in markdown_in(page, "history")


def test_page_recovers_when_the_service_comes_back(open_page, tiny_backend, tiny_catalog):
    port = free_port()
    page = open_page(f"127.0.0.1:{port}", user="u01")
    assert page.error

    service = ServiceThread(tiny_backend, tiny_catalog, port=port).start()
    try:
        page.button(key="retry-user").click().run()
        assert not page.error
        assert "Buzzer beater" in markdown_in(page, "recommendations")
    finally:
        service.stop()


def test_typing_or_picking_a_user_updates_the_shareable_link(open_page, service):
    page = open_page(service.target)
    assert page.info[0].value.startswith("Type a user id")

    page.text_input(key="user").input("u05").run()
    assert page.query_params["user"] == "u05"
    assert "Cats at play" in markdown_in(page, "recommendations")  # u05 watched sports only

    page.selectbox(key="user_pick").select("u07").run()
    assert page.text_input(key="user").value == "u07"
    assert page.query_params["user"] == "u07"


def test_bad_url_parameters_are_named_and_replaced(open_page, service):
    page = open_page(service.target, user="u01", n="lots", view="charts")

    warnings = " ".join(w.value for w in page.warning)
    assert "n='lots'" in warnings and "view='charts'" in warnings
    assert page.number_input(key="n").value == logic.DEFAULT_NUM_RESULTS
    assert page.query_params == {"view": "user", "user": "u01"}


def test_without_a_dataset_the_page_says_where_history_comes_from(open_page, service):
    page = open_page(service.target, data=None, user="u01")

    assert any("--data DIR" in info.value for info in page.info)
    assert markdown_in(page, "recommendations")


def test_rerank_orders_the_pasted_ids(open_page, service):
    page = open_page(service.target, view="rerank", user="u05")
    page.text_area(key="rerank_ids").input("a1, cold1\nb1 a1").run()

    with RecsClient(service.target) as client:
        expected = client.rerank("u05", ["a1", "cold1", "b1", "a1"])
    asked = ["a1", "cold1", "b1", "a1"]
    assert markdown_in(page, "reranked") == logic.reranked_markdown(expected.items, asked)
    assert expected.item_ids[-1] == "cold1"  # unknown to the model: last, in input order


def test_compare_marks_the_videos_both_services_recommend(
    open_page, service, fixed_service, monkeypatch
):
    monkeypatch.setenv(ENV_COMPARE_TARGET, fixed_service.target)
    page = open_page(service.target, view="compare", user="u01")

    with RecsClient(service.target) as left, RecsClient(fixed_service.target) as right:
        a = left.recommend("u01", logic.DEFAULT_NUM_RESULTS)
        b = right.recommend("u01", logic.DEFAULT_NUM_RESULTS)
    shared = logic.overlap(a.item_ids, b.item_ids).shared
    assert shared and shared != set(a.item_ids)  # the test needs a partial overlap
    assert markdown_in(page, "compare-a") == logic.results_markdown(a.items, shared)
    assert markdown_in(page, "compare-b") == logic.results_markdown(b.items, shared)
    assert page.metric[0].value.split()[0] == str(len(shared))
    assert "backend **local**" in [c.value for c in page.caption]
    assert "backend **fixed**" in [c.value for c in page.caption]


def test_about_shows_model_facts_and_the_evaluation_chart(
    open_page, service, tmp_path, monkeypatch
):
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(
        json.dumps(
            {
                "test_users": 61,
                "results": {
                    "local": {"metrics": {"precision_at_5": 0.2, "coverage": 0.5}},
                    "popularity": {"metrics": {"precision_at_5": 0.1, "coverage": 0.05}},
                },
            }
        )
    )
    monkeypatch.setenv(ENV_EVAL_JSON, str(evaluation))
    page = open_page(service.target, view="about")

    tabs = {tab.label: tab for tab in page.get_by_key("facts-0").tabs}
    assert list(tabs)[:2] == ["Model", "Data"] and "Parameters" in tabs
    assert "exclude\\_interacted" in tabs["Filters"].markdown[0].value  # the names to filter by
    assert "| factors | 8 |" in tabs["Parameters"].markdown[0].value
    assert "| interactions | 33 |" in tabs["Data"].markdown[0].value
    assert [m.label for m in page.metric] == ["Trained at", "Interactions", "Users", "Videos"]
    chart = page.get_by_key("evaluation-chart").get("vega_lite_chart")
    assert len(chart) == 1
    figures = page.expander[0].markdown[0].value
    assert "results\\.local\\.metrics\\.precision\\_at\\_5 | 0\\.2" in figures
    assert "| test\\_users | 61 |" in figures


def test_unreadable_evaluation_file_is_named_on_the_page(open_page, service, tmp_path, monkeypatch):
    evaluation = tmp_path / "eval.json"
    evaluation.write_text("{not json")
    monkeypatch.setenv(ENV_EVAL_JSON, str(evaluation))
    page = open_page(service.target, view="about")

    assert f"{evaluation}: not JSON (line 1, column 2" in page.warning[0].value
    assert page.get_by_key("facts-0")  # the model facts still show


# Reasons ------------------------------------------------------------------------------------


def table_rows(markdown: str) -> dict[str, str]:
    """A results table's rows by the video id in them (`| rank | title | id | ...`)."""
    rows = [line for line in markdown.splitlines()[2:] if line.startswith("|")]
    return {row.split("|")[3].strip(): row for row in rows}


@pytest.mark.parametrize(
    ("view", "params", "key", "call"),
    [
        ("user", {"user": "u01"}, "recommendations", lambda c: c.recommend("u01", 10)),
        ("similar", {"item": "a1"}, "similar", lambda c: c.similar("a1", 10)),
        ("popular", {}, "popular", lambda c: c.popular(10)),
    ],
)
def test_an_exploration_pick_is_marked_in_its_row_only(
    open_page, exploring_service, view, params, key, call
):
    page = open_page(exploring_service.target, view=view, **params)

    with RecsClient(exploring_service.target) as client:
        expected = call(client)
    assert [item.reason for item in expected.items] == [(), ("Exploration",), (), ()]
    table = markdown_in(page, key)
    assert table == logic.results_markdown(expected.items)
    assert table.splitlines()[0] == "| # | Title | Id | Score | Reason |"
    rows = table_rows(table)
    assert rows[EXPLORED].endswith("| 🆕 Exploration |")
    assert [i for i, row in rows.items() if "Exploration" in row] == [EXPLORED]
    notes = [c.value for c in page.caption if c.value.startswith("*Reason*")]
    assert notes == [logic.reasons_note(expected.items)]
    assert "🆕 Exploration is a new video" in notes[0]


def test_an_answer_without_reasons_has_no_reason_column(open_page, fixed_service):
    page = open_page(fixed_service.target, user="u01")

    with RecsClient(fixed_service.target) as client:
        expected = client.recommend("u01", logic.DEFAULT_NUM_RESULTS)
    assert expected.items and not any(item.reason for item in expected.items)
    table = markdown_in(page, "recommendations")
    assert table == logic.results_markdown(expected.items)
    assert table.splitlines()[0] == "| # | Title | Id | Score |"
    assert "Reason" not in table and "Exploration" not in table
    assert not [c.value for c in page.caption if "Reason" in c.value]


def test_rerank_marks_the_exploration_pick(open_page, exploring_service):
    page = open_page(exploring_service.target, view="rerank", user="u01")
    page.text_area(key="rerank_ids").input(f"a1 {EXPLORED} b1").run()

    table = markdown_in(page, "reranked")
    assert table.splitlines()[0] == "| # | Was | Title | Id | Score | Reason |"
    rows = {row.split("|")[4].strip(): row for row in table.splitlines()[2:]}
    assert rows[EXPLORED].endswith("| 🆕 Exploration |")
    assert [i for i, row in rows.items() if "Exploration" in row] == [EXPLORED]


def test_compare_shows_reasons_on_the_side_that_has_them(
    open_page, fixed_service, exploring_service, monkeypatch
):
    monkeypatch.setenv(ENV_COMPARE_TARGET, exploring_service.target)
    page = open_page(fixed_service.target, view="compare", user="u01")

    with RecsClient(fixed_service.target) as left, RecsClient(exploring_service.target) as right:
        a = left.recommend("u01", logic.DEFAULT_NUM_RESULTS)
        b = right.recommend("u01", logic.DEFAULT_NUM_RESULTS)
    shared = logic.overlap(a.item_ids, b.item_ids).shared
    a_table, b_table = markdown_in(page, "compare-a"), markdown_in(page, "compare-b")
    assert a_table == logic.results_markdown(a.items, shared)
    assert b_table == logic.results_markdown(b.items, shared)
    assert a_table.splitlines()[0] == "| # | Title | Id | Score | In both |"
    assert b_table.splitlines()[0] == "| # | Title | Id | Score | Reason | In both |"
    rows = table_rows(b_table)
    assert rows[EXPLORED].endswith(f"| {EXPLORED} | 0.5 | 🆕 Exploration | {logic.BOTH_MARK} |")
    assert [i for i, row in rows.items() if "Exploration" in row] == [EXPLORED]


# Filters ------------------------------------------------------------------------------------

FILTER = {"filter": "by_category", "filter_values": "CATEGORIES=comedy,gaming; N=3"}
SENT_VALUES = {"CATEGORIES": '"comedy","gaming"', "N": '"3"'}


@pytest.mark.parametrize(
    ("view", "params", "asked"),
    [
        ("user", {"user": "u01"}, {"user_id": "u01"}),
        ("similar", {"item": "a1"}, {"item_id": "a1"}),
        ("popular", {"n": "3"}, {"num_results": 3}),
        ("trending", {"n": "3"}, {"num_results": 3}),
        ("compare", {"user": "u01"}, {"user_id": "u01"}),
    ],
)
def test_the_filter_in_the_link_goes_with_the_views_calls(
    open_page, recording, monkeypatch, view, params, asked
):
    monkeypatch.setenv(ENV_COMPARE_TARGET, recording.target)
    page = open_page(recording.target, view=view, **params, **FILTER)

    assert recording.requests, "the view asked nothing"
    assert len(recording.requests) == (2 if view == "compare" else 1)
    for request in recording.requests:
        assert request.filter_name == "by_category"
        assert dict(request.filter_values) == SENT_VALUES
        assert {field: getattr(request, field) for field in asked} == asked
    assert page.text_input(key="filter").value == "by_category"
    assert page.text_input(key="filter_values").value == FILTER["filter_values"]
    assert {key: page.query_params[key] for key in FILTER} == FILTER


def test_rerank_sends_the_filter_typed_in_the_sidebar(open_page, recording):
    page = open_page(recording.target, view="rerank", user="u05")
    page.text_input(key="filter").input("by_category")
    page.text_input(key="filter_values").input("CATEGORIES=comedy,gaming; N=3")
    page.text_area(key="rerank_ids").input("a1, b1").run()

    (request,) = recording.requests
    assert list(request.item_ids) == ["a1", "b1"]
    assert request.filter_name == "by_category"
    assert dict(request.filter_values) == SENT_VALUES
    assert page.query_params["filter"] == "by_category"


@pytest.mark.parametrize(
    ("name", "values", "says"),
    [
        ("by_category", "CATEGORIES", "'CATEGORIES' is not KEY=VALUE"),
        ("", "CATEGORIES=comedy", "need a filter"),
    ],
)
def test_a_filter_that_cannot_be_sent_is_said_and_nothing_is_asked(
    open_page, recording, name, values, says
):
    page = open_page(recording.target, user="u01")
    assert len(recording.requests) == 1  # the first run, without a filter
    page.text_input(key="filter").input(name)
    page.text_input(key="filter_values").input(values).run()

    assert any(says in warning.value for warning in page.warning)
    assert len(recording.requests) == 1  # rather than an unfiltered answer, none
    assert "Recommended next" not in [subheader.value for subheader in page.subheader]


def test_a_bad_filter_in_the_link_is_named_like_other_url_problems(open_page, recording):
    page = open_page(recording.target, user="u01", filter="f", filter_values="CATEGORIES")

    warnings = " ".join(w.value for w in page.warning)
    assert "filter_values='CATEGORIES'" in warnings
    assert page.text_input(key="filter_values").value == ""
    assert page.query_params == {"view": "user", "user": "u01", "filter": "f"}


def test_an_unknown_filter_is_the_services_answer_in_words(open_page, service):
    page = open_page(service.target, user="u01", filter="no_such_filter")

    assert len(page.error) == 1
    message = page.error[0].value
    assert "rejected what the page asked" in message
    assert "Status INVALID_ARGUMENT: filter_name" in message
