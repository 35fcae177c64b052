"""Filters through the client: Personalize's value format, and the fields both clients send."""

from __future__ import annotations

import pytest

from recs.backends.filtering import parse_filter_value
from recs.client import AsyncRecsClient, RecsClient, filter_value
from recs.client.filters import collect_filter_entries, parse_filter_entry, typed_filter_value
from tests.client.recording import RecordingServicer

CATEGORIES = {"CATEGORIES": filter_value("comedy", "gaming")}

# Each client method with arguments, and the request's fields other than the filter.
CALLS = {
    "recommend": (("u1", 5), {"user_id": "u1", "num_results": 5}),
    "similar": (("v7", 3), {"item_id": "v7", "num_results": 3}),
    "popular": ((4, "u2"), {"num_results": 4, "user_id": "u2"}),
    "trending": ((6, "u3"), {"num_results": 6, "user_id": "u3"}),
    "rerank": (("u1", ["v1", "v2"]), {"user_id": "u1", "item_ids": ["v1", "v2"]}),
}


def test_filter_value_quotes_and_joins_with_commas():
    assert filter_value("comedy", "gaming") == '"comedy","gaming"'
    assert filter_value("comedy") == '"comedy"'
    assert filter_value("a,b", " spaced ") == '"a,b"," spaced "'
    assert filter_value() == ""


def test_filter_value_escapes_quotes_and_backslashes():
    assert filter_value('5" screen') == r'"5\" screen"'
    assert filter_value("C:\\dir") == r'"C:\\dir"'
    assert filter_value('\\"') == r'"\\\""'


@pytest.mark.parametrize(
    "values", [("comedy", "gaming"), ('say "hi"',), ("back\\slash", 'both\\"'), ("a,b", "")]
)
def test_the_server_reads_back_what_filter_value_writes(values):
    assert parse_filter_value("K", filter_value(*values)) == values


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("comedy,gaming", '"comedy","gaming"'),
        (" comedy , gaming ,", '"comedy","gaming"'),
        ("comedy", '"comedy"'),
        ('"comedy","gaming"', '"comedy","gaming"'),  # already Personalize's: as is
        (' "a,b" ', '"a,b"'),
        ('5" screen', r'"5\" screen"'),  # a quote inside a plain value is escaped
    ],
)
def test_typed_values_become_personalize_format(typed, sent):
    assert typed_filter_value(typed) == sent


def test_filter_entries_split_at_the_first_equals_sign():
    assert parse_filter_entry("CATEGORIES=comedy,gaming") == ("CATEGORIES", '"comedy","gaming"')
    assert parse_filter_entry(" K = a=b ") == ("K", '"a=b"')


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("CATEGORIES", "is not KEY=VALUE"),
        ("=comedy", "has no KEY"),
        ("CATEGORIES=", "has no value"),
        ("CATEGORIES= , ", "has no value"),
    ],
)
def test_malformed_filter_entries_say_what_is_wrong(text, says):
    with pytest.raises(ValueError, match=says):
        parse_filter_entry(text)


def test_a_key_given_twice_is_refused():
    assert collect_filter_entries([("A", '"1"'), ("B", '"2"')]) == {"A": '"1"', "B": '"2"'}
    with pytest.raises(ValueError, match="A is given twice"):
        collect_filter_entries([("A", '"1"'), ("A", '"2"')])


@pytest.mark.parametrize("method", list(CALLS))
def test_sync_client_sends_the_filter(recording: RecordingServicer, method: str) -> None:
    args, fields = CALLS[method]
    with RecsClient(recording.target) as client:
        result = getattr(client, method)(*args, filter_name="by_category", filter_values=CATEGORIES)

    assert result.item_ids == ["v1"]
    (request,) = recording.requests
    assert request.filter_name == "by_category"
    assert dict(request.filter_values) == {"CATEGORIES": '"comedy","gaming"'}
    assert {name: _plain(getattr(request, name)) for name in fields} == fields


@pytest.mark.parametrize("method", list(CALLS))
async def test_async_client_sends_the_filter(recording: RecordingServicer, method: str) -> None:
    args, fields = CALLS[method]
    async with AsyncRecsClient(recording.target) as client:
        await getattr(client, method)(*args, filter_name="recent", filter_values={"N": '"3"'})

    (request,) = recording.requests
    assert request.filter_name == "recent"
    assert dict(request.filter_values) == {"N": '"3"'}
    assert {name: _plain(getattr(request, name)) for name in fields} == fields


@pytest.mark.parametrize("method", list(CALLS))
def test_without_a_filter_no_filter_fields_are_sent(
    recording: RecordingServicer, method: str
) -> None:
    with RecsClient(recording.target) as client:
        getattr(client, method)(*CALLS[method][0])

    (request,) = recording.requests
    assert request.filter_name == ""
    assert dict(request.filter_values) == {}


def test_filter_arguments_are_keyword_only(recording: RecordingServicer) -> None:
    with RecsClient(recording.target) as client, pytest.raises(TypeError):
        client.recommend("u1", 5, "by_category")  # type: ignore[misc]


def _plain(value):
    """A repeated field as a list, so it compares with the expected list."""
    return value if isinstance(value, str | int) else list(value)
