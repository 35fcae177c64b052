"""The page's decisions without Streamlit: URL parameters, overlap, tables (with reasons),
errors in words."""

from __future__ import annotations

import grpc
import pytest

from recs.client import Item, RecsError
from recs.ui import logic
from recs.ui.history import HistoryEntry
from recs.ui.logic import PageRequest


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, PageRequest()),
        ({"user": "u42"}, PageRequest("user", "u42")),
        ({"item": "v7"}, PageRequest("similar", item_id="v7")),
        ({"user": "u42", "item": "v7"}, PageRequest("user", "u42", "v7")),
        ({"item": "v7", "view": "popular"}, PageRequest("popular", item_id="v7")),
        ({"view": "trending", "n": "5"}, PageRequest("trending", num_results=5)),
        ({"user": " u42 ", "n": "25"}, PageRequest("user", "u42", num_results=25)),
        ({"user": ["u1", "u2"]}, PageRequest("user", "u2")),  # the last one wins
    ],
)
def test_query_params_choose_the_view_and_inputs(params, expected):
    assert logic.parse_query_params(params) == (expected, [])


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"n": "lots"}, "n='lots'"),
        ({"n": "0"}, "n='0'"),
        ({"n": "501"}, "n='501'"),
        ({"view": "charts"}, "view='charts'"),
    ],
)
def test_unusable_query_params_are_named_and_take_defaults(params, named):
    request, problems = logic.parse_query_params(params)

    assert request == PageRequest()
    assert len(problems) == 1 and named in problems[0]


def test_query_params_round_trip_and_leave_defaults_out():
    request = PageRequest("compare", "u42", "", 25)
    assert logic.to_query_params(request) == {"view": "compare", "user": "u42", "n": "25"}
    assert logic.parse_query_params(logic.to_query_params(request)) == (request, [])
    assert logic.to_query_params(PageRequest()) == {"view": "user"}


def test_overlap_counts_shared_videos_once():
    shared = logic.overlap(["a", "b", "c", "c"], ["c", "d", "a"])

    assert shared.shared == {"a", "c"}
    assert shared.jaccard == pytest.approx(2 / 4)
    assert shared.summary() == "2 of 3 videos in both answers (Jaccard 0.50)"
    assert logic.overlap([], []).jaccard == 0.0


def test_pasted_ids_split_on_commas_spaces_and_lines_keeping_order_and_repeats():
    assert logic.parse_item_ids(" v1, v2\nv3\t v1,,\n") == ["v1", "v2", "v3", "v1"]
    assert logic.parse_item_ids("  \n") == []


def test_titles_show_literally_in_markdown():
    assert logic.escape_markdown("*Big* [news] | 1.5 :tada: $5") == (
        r"\*Big\* \[news\] \| 1\.5 \:tada\: \$5"
    )


def test_only_web_addresses_are_linked():
    assert logic.video_link("Cats", "https://b.s3.amazonaws.com/v1.mp4") == (
        "[Cats](https://b.s3.amazonaws.com/v1.mp4)"
    )
    assert logic.video_link("Cats", "javascript:alert(1)") == "Cats"
    assert logic.video_link("", "") == "*(no title)*"
    assert logic.video_link("A", "https://h/a b(1).mp4") == "[A](https://h/a%20b%281%29.mp4)"


def test_results_table_has_a_row_per_video_and_marks_shared_ones():
    items = [Item("v1", 0.5, "One", "https://h/v1.mp4"), Item("v2", 0.25)]

    table = logic.results_markdown(items, frozenset({"v2"}))

    lines = table.splitlines()
    assert lines[0] == "| # | Title | Id | Score | In both |"
    assert lines[2] == "| 1 | [One](https://h/v1.mp4) | v1 | 0.5 |  |"
    assert lines[3] == f"| 2 | *(no title)* | v2 | 0.25 | {logic.BOTH_MARK} |"
    assert "In both" not in logic.results_markdown(items)
    assert logic.results_markdown([]) == "*The service answered with no videos.*"


def test_reranked_table_shows_where_each_video_was():
    items = [Item("v3", 0.7), Item("v1", 0.3), Item("zz", 0.0)]

    lines = logic.reranked_markdown(items, ["v1", "v3", "v1"]).splitlines()

    assert [line.split("|")[2].strip() for line in lines[2:]] == ["2", "1", "–"]


def test_a_reason_column_shows_only_when_some_video_has_a_reason():
    items = [Item("v1", 0.5), Item("new", 0.25, reason=("Exploration",)), Item("v2", 0.1)]

    lines = logic.results_markdown(items, frozenset({"v2"})).splitlines()

    assert lines[0] == "| # | Title | Id | Score | Reason | In both |"
    assert lines[1] == "|--:|:--|:--|--:|:--|:-:|"
    assert lines[2] == "| 1 | *(no title)* | v1 | 0.5 |  |  |"
    assert lines[3] == "| 2 | *(no title)* | new | 0.25 | 🆕 Exploration |  |"
    assert lines[4] == f"| 3 | *(no title)* | v2 | 0.1 |  | {logic.BOTH_MARK} |"
    plain = [Item("v1", 0.5), Item("v2", 0.1)]
    assert "Reason" not in logic.results_markdown(plain)
    assert "Reason" not in logic.results_markdown(plain, frozenset({"v2"}))


def test_reasons_the_page_does_not_know_show_literally():
    assert logic.reason_cell(("Exploration",)) == "🆕 Exploration"
    assert logic.reason_cell(("Promoted item", "a|b")) == "Promoted item, a\\|b"
    assert logic.reason_cell(()) == ""


def test_reranked_table_shows_reasons_when_some_video_has_one():
    items = [Item("new", 0.7, reason=("Exploration",)), Item("v1", 0.3)]

    lines = logic.reranked_markdown(items, ["v1", "new"]).splitlines()

    assert lines[0] == "| # | Was | Title | Id | Score | Reason |"
    assert lines[2] == "| 1 | 2 | *(no title)* | new | 0.7 | 🆕 Exploration |"
    assert lines[3] == "| 2 | 1 | *(no title)* | v1 | 0.3 |  |"
    assert "Reason" not in logic.reranked_markdown([Item("v1", 0.3)], ["v1"])


def test_the_note_under_a_table_explains_its_reasons():
    assert logic.reasons_note([Item("v1", 0.5)]) == ""
    explored = logic.reasons_note([Item("v1", 0.5), Item("n", 0.2, reason=("Exploration",))])
    assert explored.startswith("*Reason* says why the service put a video there")
    assert "🆕 Exploration is a new video" in explored
    promoted = logic.reasons_note([Item("v1", 0.5, reason=("Promoted item",))])
    assert "*Reason*" in promoted and "Exploration" not in promoted


def test_model_details_are_grouped_in_sections():
    details = {
        "params.factors": "64",
        "trained_at": "2026-01-01T00:00:00Z",
        "counts.users": "2000",
        "data.fingerprint": "abc",
        "campaign_arns.user": "arn:1",
    }

    sections = logic.group_details(details)

    assert list(sections) == ["Model", "Campaign arns", "Data", "Parameters"]
    assert sections["Model"] == [("trained_at", "2026-01-01T00:00:00Z")]
    assert sections["Data"] == [("users", "2000"), ("fingerprint", "abc")]


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (grpc.StatusCode.UNAVAILABLE, "cannot be reached or is not ready to answer"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "did not answer in time"),
        (grpc.StatusCode.INVALID_ARGUMENT, "rejected what the page asked"),
        (grpc.StatusCode.INTERNAL, "failed while answering"),
        (grpc.StatusCode.PERMISSION_DENIED, "answered with an error"),
    ],
)
def test_errors_are_said_in_words_with_code_and_message(code, words):
    text = logic.describe_error(RecsError(code, "user_id: too long."), "h:1")

    assert text.startswith(f"The service at h:1 {words}. Status {code.name}: user_id: too long.")
    assert ".." not in text


def test_an_error_without_message_says_so():
    text = logic.describe_error(RecsError(grpc.StatusCode.UNKNOWN, ""), "h:1")
    assert "Status UNKNOWN: no message." in text


def test_headline_facts_are_readable():
    details = {
        "counts.users": "1999",
        "trained_at": "2026-11-28T07:13:05+01:00",
        "counts.interactions": "100000",
        "params.factors": "64",
    }

    assert logic.headline_details(details) == [
        ("Trained at", "2026-11-28 06:13 UTC"),
        ("Interactions", "100,000"),
        ("Users", "1,999"),
    ]
    assert logic.headline_details({"trained_at": "never"}) == [("Trained at", "never")]


def test_history_table_shows_when_what_and_how():
    entries = [
        HistoryEntry("v1", "Cats *live*", "watched", 1700000000),
        HistoryEntry("v2", "", "clicked", 0),
    ]

    lines = logic.history_markdown(entries).splitlines()

    assert lines[0] == "| When (UTC) | Title | Id | Event |"
    assert lines[2] == r"| 2023-11-14 22:13 | Cats \*live\* | v1 | watched |"
    assert lines[3] == "| 1970-01-01 00:00 | *(no title)* | v2 | clicked |"


# Filters ------------------------------------------------------------------------------------


def test_filter_params_round_trip_through_the_url():
    request = PageRequest(
        "popular", filter_name="by_category", filter_values="CATEGORIES=comedy,gaming; N=3"
    )

    params = logic.to_query_params(request)

    assert params == {
        "view": "popular",
        "filter": "by_category",
        "filter_values": "CATEGORIES=comedy,gaming; N=3",
    }
    assert logic.parse_query_params(params) == (request, [])


def test_unusable_filter_values_in_the_url_are_named_and_dropped():
    request, problems = logic.parse_query_params(
        {"user": "u1", "filter": "by_category", "filter_values": "CATEGORIES"}
    )

    assert request == PageRequest("user", "u1", filter_name="by_category")
    assert len(problems) == 1
    assert "filter_values='CATEGORIES'" in problems[0] and "is not KEY=VALUE" in problems[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        (" ; \n ", {}),
        ("CATEGORIES=comedy,gaming", {"CATEGORIES": '"comedy","gaming"'}),
        ("A=x; B=y , z\nC=w", {"A": '"x"', "B": '"y","z"', "C": '"w"'}),
        ('A="x;y","z"; B=w', {"A": '"x;y","z"', "B": '"w"'}),  # `;` inside quotes stays
        ('A="say \\";"; B=w', {"A": '"say \\";"', "B": '"w"'}),  # so does an escaped quote
    ],
)
def test_filter_values_are_entries_separated_by_semicolons_or_lines(text, expected):
    assert logic.parse_filter_values(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("CATEGORIES", "'CATEGORIES' is not KEY=VALUE"),
        ("A=x; =y", "'=y' has no KEY"),
        ("A=", "A= has no value"),
        ("A=x; A=y", "A is given twice"),
    ],
)
def test_unusable_filter_values_say_which_entry_and_how_to_write_them(text, says):
    with pytest.raises(logic.FilterInputError) as caught:
        logic.filter_arguments(PageRequest(filter_name="f", filter_values=text))

    message = str(caught.value)
    assert message.startswith("Filter values: ") and says in message
    assert logic.FILTER_VALUES_HINT in message


def test_filter_arguments_are_the_clients_keywords():
    assert logic.filter_arguments(PageRequest()) == {"filter_name": "", "filter_values": {}}
    request = PageRequest(filter_name="by_category", filter_values="CATEGORIES=comedy")
    assert logic.filter_arguments(request) == {
        "filter_name": "by_category",
        "filter_values": {"CATEGORIES": '"comedy"'},
    }


def test_filter_values_without_a_filter_name_cannot_be_sent():
    with pytest.raises(logic.FilterInputError, match="need a filter"):
        logic.filter_arguments(PageRequest(filter_values="CATEGORIES=comedy"))
