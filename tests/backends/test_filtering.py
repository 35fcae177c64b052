"""Filters by name (`backends.filtering`): the configured set, the default filter, and each
request's `filter_name` / `filter_values` checked against Personalize's limits.

Sources: ../shared/reference/personalize.md sections 1.2 (filterValues: at most 25 keys of
1 to 50 characters [A-Za-z0-9_], values of at most 1,000 characters, several values as a
comma-separated list of quoted strings) and 3 (INCLUDE parameters are required, an EXCLUDE
part whose parameter is missing is ignored).
"""

from __future__ import annotations

import pytest

from recs.backends.errors import InvalidRequestError
from recs.backends.filtering import (
    DEFAULT_FILTER_EXPRESSION,
    DEFAULT_FILTER_NAME,
    MAX_FILTER_VALUES,
    MAX_VALUE_KEY_LENGTH,
    MAX_VALUE_LENGTH,
    RESOLVED_CALLS,
    FilterCall,
    FilterSet,
    excludes_every_interaction,
    parse_filter_value,
)
from recs.pipeline.filters import FilterError, parse_filter

EXPRESSIONS = {
    "in_categories": "INCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES)",
    "not_categories": "EXCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES)",
    "short": "INCLUDE ItemID WHERE Items.DURATION <= 30",
    "unwatched": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")',
    "same_category": "INCLUDE ItemID WHERE Items.CATEGORIES IN CurrentItem.CATEGORIES",
    "category_unless": (
        "INCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES)"
        " | EXCLUDE ItemID WHERE Items.CATEGORIES IN ($SKIP)"
    ),
}


@pytest.fixture(scope="module")
def filters() -> FilterSet:
    return FilterSet.from_expressions(EXPRESSIONS)


def refused(filters: FilterSet, name: str, values: dict[str, str], **kwargs: bool):
    with pytest.raises(InvalidRequestError) as caught:
        filters.resolve(name, values, **kwargs)
    return caught.value


# --- resolve: the filter's name ---------------------------------------------------------------


def test_no_name_and_no_values_is_no_filter(filters: FilterSet) -> None:
    assert filters.resolve("", {}) is None


def test_an_unknown_name_is_refused_listing_the_known_ones(filters: FilterSet) -> None:
    error = refused(filters, "in_category", {})
    assert error.field == "filter_name"
    assert "'in_category'" in error.message
    known = ", ".join(sorted([*EXPRESSIONS, DEFAULT_FILTER_NAME]))
    assert f"(known: {known})" in error.message
    assert str(error).startswith("filter_name: ")


def test_an_unknown_name_with_no_filters_configured_says_so() -> None:
    error = refused(FilterSet(), "anything", {})
    assert error.field == "filter_name"
    assert "none are configured" in error.message


def test_names_are_case_sensitive(filters: FilterSet) -> None:
    assert refused(filters, "Short", {}).field == "filter_name"


def test_values_without_a_name_are_refused(filters: FilterSet) -> None:
    error = refused(filters, "", {"CATEGORIES": '"animals"'})
    assert error.field == "filter_values"
    assert "without a filter_name" in error.message


def test_a_filter_without_parameters_resolves_to_its_call(filters: FilterSet) -> None:
    call = filters.resolve("short", {})
    assert isinstance(call, FilterCall)
    assert call.name == "short"
    assert call.filter is filters.filters["short"]
    assert dict(call.values) == {} and dict(call.raw_values) == {}


# --- resolve: CurrentItem ---------------------------------------------------------------------


def test_a_current_item_filter_is_refused_without_a_current_item(filters: FilterSet) -> None:
    error = refused(filters, "same_category", {})
    assert error.field == "filter_name"
    assert "CurrentItem" in error.message and "GetSimilarItems" in error.message


def test_a_current_item_filter_is_accepted_with_a_current_item(filters: FilterSet) -> None:
    call = filters.resolve("same_category", {}, current_item=True)
    assert call is not None and call.name == "same_category"
    assert call.filter.uses_current_item


def test_other_filters_are_accepted_with_a_current_item(filters: FilterSet) -> None:
    call = filters.resolve("in_categories", {"CATEGORIES": '"sports"'}, current_item=True)
    assert call is not None and dict(call.values) == {"CATEGORIES": ("sports",)}


# --- resolve: the values' limits --------------------------------------------------------------


def many_parameters(count: int) -> FilterSet:
    """One filter taking `count` parameters (on one field: the 5-field limit holds)."""
    names = ", ".join(f"$P{k}" for k in range(count))
    return FilterSet.from_expressions(
        {"many": f"EXCLUDE ItemID WHERE Items.CATEGORIES IN ({names})"}, default=None
    )


def test_at_most_25_keys() -> None:
    filters = many_parameters(MAX_FILTER_VALUES + 1)
    values = {f"P{k}": '"x"' for k in range(MAX_FILTER_VALUES)}
    assert MAX_FILTER_VALUES == 25
    call = filters.resolve("many", values)
    assert call is not None and len(call.values) == 25
    error = refused(filters, "many", {**values, f"P{MAX_FILTER_VALUES}": '"x"'})
    assert error.field == "filter_values"
    assert "26 keys" in error.message and "at most 25" in error.message


@pytest.mark.parametrize("key", ["CATE-GORIES", "CATEGORIES ", "CAT.EGORIES", "KATEGORIÉ", "$X"])
def test_a_key_of_other_characters_is_refused(filters: FilterSet, key: str) -> None:
    error = refused(filters, "in_categories", {key: '"animals"'})
    assert error.field == f"filter_values.{key}"
    assert "A-Z, a-z, 0-9 and _" in error.message


def test_an_empty_key_is_refused(filters: FilterSet) -> None:
    error = refused(filters, "not_categories", {"": '"animals"'})
    assert error.field.startswith("filter_values")
    assert "1 to 50 characters" in error.message


def test_a_key_of_50_characters_is_allowed_and_51_refused() -> None:
    assert MAX_VALUE_KEY_LENGTH == 50
    key50, key51 = "K" * 50, "K" * 51
    filters = FilterSet.from_expressions(
        {
            "long": f"EXCLUDE ItemID WHERE Items.CATEGORIES IN (${key50})",
            "longer": f"EXCLUDE ItemID WHERE Items.CATEGORIES IN (${key51})",
        },
        default=None,
    )
    call = filters.resolve("long", {key50: '"news"'})
    assert call is not None and dict(call.values) == {key50: ("news",)}
    error = refused(filters, "longer", {key51: '"news"'})
    # The field names the key cut to the 50 characters a key may have.
    assert error.field == f"filter_values.{key50}"
    assert "1 to 50 characters" in error.message


def test_a_value_of_1000_characters_is_allowed_and_1001_refused(filters: FilterSet) -> None:
    assert MAX_VALUE_LENGTH == 1000
    value = '"' + "x" * 998 + '"'
    call = filters.resolve("in_categories", {"CATEGORIES": value})
    assert call is not None and call.values["CATEGORIES"] == ("x" * 998,)
    error = refused(filters, "in_categories", {"CATEGORIES": '"' + "x" * 999 + '"'})
    assert error.field == "filter_values.CATEGORIES"
    assert "longer than 1000 characters" in error.message


def test_a_key_that_is_not_a_parameter_is_refused_naming_those_it_takes(
    filters: FilterSet,
) -> None:
    error = refused(filters, "in_categories", {"CATEGORIES": '"news"', "GENRE": '"x"'})
    assert error.field == "filter_values.GENRE"
    assert "has no $GENRE" in error.message and "$CATEGORIES" in error.message


def test_a_key_given_to_a_filter_without_parameters_is_refused(filters: FilterSet) -> None:
    error = refused(filters, "short", {"CATEGORIES": '"news"'})
    assert error.field == "filter_values.CATEGORIES"
    assert "no parameters" in error.message


def test_parameter_names_are_case_sensitive(filters: FilterSet) -> None:
    error = refused(filters, "in_categories", {"categories": '"news"'})
    assert error.field == "filter_values.categories"


# --- resolve: required and optional parameters ------------------------------------------------


def test_an_include_parameter_is_required_and_named(filters: FilterSet) -> None:
    error = refused(filters, "in_categories", {})
    assert error.field == "filter_values.CATEGORIES"
    assert "is required" in error.message and "INCLUDE" in error.message


def test_an_include_parameter_is_required_beside_an_exclude_one(filters: FilterSet) -> None:
    error = refused(filters, "category_unless", {"SKIP": '"news"'})
    assert error.field == "filter_values.CATEGORIES"


def test_an_exclude_parameter_may_be_omitted(filters: FilterSet) -> None:
    call = filters.resolve("not_categories", {})
    assert call is not None and dict(call.values) == {}
    call = filters.resolve("category_unless", {"CATEGORIES": '"sports"'})
    assert call is not None and dict(call.values) == {"CATEGORIES": ("sports",)}


@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_value_counts_as_not_given(filters: FilterSet, empty: str) -> None:
    error = refused(filters, "in_categories", {"CATEGORIES": empty})
    assert error.field == "filter_values.CATEGORIES"
    assert "is required" in error.message
    call = filters.resolve("not_categories", {"CATEGORIES": empty})
    assert call is not None
    assert call.values["CATEGORIES"] == ()
    assert call.raw_values["CATEGORIES"] == empty


def test_raw_values_are_kept_as_written(filters: FilterSet) -> None:
    written = '"animals",  "music"'
    call = filters.resolve("in_categories", {"CATEGORIES": written})
    assert call is not None
    assert dict(call.raw_values) == {"CATEGORIES": written}
    assert dict(call.values) == {"CATEGORIES": ("animals", "music")}


def test_a_repeated_request_resolves_to_the_same_call_and_a_bad_one_is_refused_again() -> None:
    filters = FilterSet.from_expressions(EXPRESSIONS)
    first = filters.resolve("in_categories", {"CATEGORIES": '"music"'})
    assert filters.resolve("in_categories", {"CATEGORIES": '"music"'}) is first
    assert filters.resolve("in_categories", {"CATEGORIES": '"news"'}) is not first
    for _ in range(2):  # nothing kept for a refused request
        refused(filters, "in_categories", {"CATEGORIES": "x" * (MAX_VALUE_LENGTH + 1)})


def test_resolved_calls_are_kept_within_their_bound() -> None:
    filters = FilterSet.from_expressions(EXPRESSIONS)
    first = filters.resolve("in_categories", {"CATEGORIES": '"c0"'})
    for k in range(1, RESOLVED_CALLS + 1):
        filters.resolve("in_categories", {"CATEGORIES": f'"c{k}"'})
    assert len(filters._resolved) == RESOLVED_CALLS
    again = filters.resolve("in_categories", {"CATEGORIES": '"c0"'})
    assert again is not first and again == first  # the oldest went; resolved alike


# --- parse_filter_value: Personalize's value format -------------------------------------------


@pytest.mark.parametrize(
    ("raw", "values"),
    [
        ('"comedy"', ("comedy",)),
        ('"comedy","news"', ("comedy", "news")),
        ('"comedy", "news",  "sports"', ("comedy", "news", "sports")),  # spaces after commas
        ('  "comedy" ,"news"  ', ("comedy", "news")),
        ('"a,b","c"', ("a,b", "c")),  # a comma inside quotes is part of the value
        ('" spaced "', (" spaced ",)),  # spaces inside quotes are kept
        (r'"5\" screen"', ('5" screen',)),  # an escaped quote
        (r'"say \"hi\"","x"', ('say "hi"', "x")),
        (r'"C:\\dir"', ("C:\\dir",)),  # an escaped backslash
        ('""', ("",)),
        ('"música"', ("música",)),
    ],
)
def test_quoted_values(raw: str, values: tuple[str, ...]) -> None:
    assert parse_filter_value("CATEGORIES", raw) == values


@pytest.mark.parametrize(
    ("raw", "values"),
    [("comedy", ("comedy",)), ("  comedy  ", ("comedy",)), ("27.5", ("27.5",)), ("a,b", ("a,b",))],
)
def test_a_bare_value_is_one_value(raw: str, values: tuple[str, ...]) -> None:
    assert parse_filter_value("K", raw) == values


@pytest.mark.parametrize("raw", ["", " ", "\t"])
def test_an_empty_value_gives_no_values(raw: str) -> None:
    assert parse_filter_value("K", raw) == ()


@pytest.mark.parametrize(
    ("raw", "position"),
    [
        ('"comedy', 1),  # unterminated
        ('"comedy","news', 10),  # the second one unterminated
        ('"comedy" "news"', 1),  # no comma between values
        ('"comedy",news', 10),  # an unquoted value after a quoted one
    ],
)
def test_a_malformed_quoted_value_is_refused_naming_the_key_and_position(
    raw: str, position: int
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_filter_value("CATEGORIES", raw)
    assert caught.value.field == "filter_values.CATEGORIES"
    assert f"at character {position}:" in caught.value.message


def test_resolve_refuses_a_malformed_value_naming_the_key(filters: FilterSet) -> None:
    error = refused(filters, "in_categories", {"CATEGORIES": '"animals","music'})
    assert error.field == "filter_values.CATEGORIES"
    assert "at character 11" in error.message


# --- the default filter -----------------------------------------------------------------------


def test_the_default_filter_is_built_in() -> None:
    filters = FilterSet.from_expressions({})
    assert filters.default is not None
    assert filters.default.name == DEFAULT_FILTER_NAME == "exclude_interacted"
    assert filters.default.filter.expression == DEFAULT_FILTER_EXPRESSION
    assert dict(filters.default.values) == {}
    assert set(filters.filters) == {DEFAULT_FILTER_NAME}
    # A request may name it too.
    call = filters.resolve(DEFAULT_FILTER_NAME, {})
    assert call is not None and call.excludes_every_interaction()


def test_the_built_in_default_is_added_beside_the_configured_filters(filters: FilterSet) -> None:
    assert set(filters.filters) == {*EXPRESSIONS, DEFAULT_FILTER_NAME}
    assert filters.default is not None and filters.default.name == DEFAULT_FILTER_NAME


def test_a_configured_exclude_interacted_replaces_the_built_in_one() -> None:
    own = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")'
    filters = FilterSet.from_expressions({DEFAULT_FILTER_NAME: own})
    assert filters.default is not None
    assert filters.default.filter.expression == own


@pytest.mark.parametrize("none", [None, ""])
def test_no_default_filter(none: str | None) -> None:
    filters = FilterSet.from_expressions(EXPRESSIONS, default=none)
    assert filters.default is None
    assert set(EXPRESSIONS) <= set(filters.filters)
    assert filters.details()["default_filter"] == "none"


def test_the_default_may_name_a_configured_filter() -> None:
    filters = FilterSet.from_expressions(EXPRESSIONS, default="unwatched")
    assert filters.default is not None
    assert filters.default.name == "unwatched"
    assert filters.default.filter is filters.filters["unwatched"]
    assert not filters.default.excludes_every_interaction()
    # The built-in one is added only when it is the default.
    assert DEFAULT_FILTER_NAME not in filters.filters


def test_an_unknown_default_is_refused_listing_the_known_filters() -> None:
    with pytest.raises(FilterError, match=r"default_filter 'unwathced' is not a filter") as caught:
        FilterSet.from_expressions(EXPRESSIONS, default="unwathced")
    assert "known: " in str(caught.value) and "unwatched" in str(caught.value)
    with pytest.raises(FilterError, match=r"known: none"):
        FilterSet({}, "anything")


@pytest.mark.parametrize("name", ["in_categories", "not_categories", "category_unless"])
def test_a_default_with_parameters_is_refused(name: str) -> None:
    with pytest.raises(FilterError, match=rf"default_filter '{name}' takes parameters"):
        FilterSet.from_expressions(EXPRESSIONS, default=name)


def test_a_bad_expression_is_refused_naming_the_filter_and_position() -> None:
    with pytest.raises(FilterError, match=r"filter 'broken' at character 16: expected WHERE"):
        FilterSet.from_expressions({"broken": 'INCLUDE ItemID WHER Items.CATEGORIES IN ("a")'})


def test_the_set_is_read_only(filters: FilterSet) -> None:
    with pytest.raises(TypeError):
        filters.filters["more"] = filters.filters["short"]  # type: ignore[index]


# --- details (GetModelInfo) -------------------------------------------------------------------


def test_details_name_the_default_and_every_expression(filters: FilterSet) -> None:
    details = filters.details()
    assert details == {
        "default_filter": DEFAULT_FILTER_NAME,
        f"filters.{DEFAULT_FILTER_NAME}": DEFAULT_FILTER_EXPRESSION,
        **{f"filters.{name}": text for name, text in EXPRESSIONS.items()},
    }
    keys = list(details)
    assert keys == ["default_filter", *sorted(keys[1:])]


def test_details_without_any_filter() -> None:
    assert FilterSet().details() == {"default_filter": "none"}
    assert FilterSet.from_expressions({}, default=None).details() == {"default_filter": "none"}


# --- excludes_every_interaction ---------------------------------------------------------------


def test_the_built_in_default_excludes_every_interaction() -> None:
    built_in = parse_filter(DEFAULT_FILTER_NAME, DEFAULT_FILTER_EXPRESSION)
    assert excludes_every_interaction(built_in)
    assert FilterCall(built_in).excludes_every_interaction()
    # Spelling does not matter: keywords in any case, spaces, the star unquoted.
    assert excludes_every_interaction(
        parse_filter("x", "exclude itemid where Interactions.EVENT_TYPE in ( * )")
    )


@pytest.mark.parametrize(
    "expression",
    [
        # two parts
        'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")'
        ' | EXCLUDE ItemID WHERE Items.CATEGORIES IN ("news")',
        'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")'
        ' | INCLUDE ItemID WHERE Items.CATEGORIES IN ("news")',
        # NOT IN
        'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE NOT IN ("*")',
        # named event types
        'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")',
        'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched", "clicked")',
        "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ($EVENT_TYPES)",
        # INCLUDE instead of EXCLUDE
        'INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")',
        # two conditions in the part
        'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")'
        ' AND Interactions.EVENT_TYPE IN ("watched")',
        'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")'
        ' OR Interactions.EVENT_TYPE IN ("watched")',
        # not on interactions at all
        'EXCLUDE ItemID WHERE Items.CATEGORIES IN ("news")',
    ],
)
def test_variants_do_not_exclude_every_interaction(expression: str) -> None:
    found = parse_filter("variant", expression)
    assert not excludes_every_interaction(found)
    assert not FilterCall(found).excludes_every_interaction()


# --- text in expressions ----------------------------------------------------------------------


def test_an_escaped_quote_in_an_expression_is_a_quote() -> None:
    filters = FilterSet.from_expressions(
        {"quoted": r'INCLUDE ItemID WHERE Items.TITLE IN ("5\" screen")'}, default=None
    )
    (condition,) = filters.filters["quoted"].parts[0].conditions
    assert condition.operands == ('5" screen',)


def test_a_non_ascii_value_in_an_expression_is_kept() -> None:
    filters = FilterSet.from_expressions(
        {"musica": 'INCLUDE ItemID WHERE Items.CATEGORIES IN ("música", "动画")'}, default=None
    )
    (condition,) = filters.filters["musica"].parts[0].conditions
    assert condition.operands == ("música", "动画")
