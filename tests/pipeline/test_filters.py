"""Personalize's filter grammar: the documented examples parse; mistakes are named with where."""

from __future__ import annotations

import pytest

from recs.pipeline.filters import (
    AllEventTypes,
    Condition,
    CurrentItem,
    FilterError,
    Parameter,
    parse_filter,
)

# The documentation's examples (reference section 3) that concern items, plus the issue's.
DOCUMENTED = [
    "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ($EVENT_TYPE)",
    'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click", "stream")',
    'INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")',
    "EXCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)",
    'EXCLUDE ItemID WHERE Items.CATEGORY IN ("shoe") AND Items.DESCRIPTION NOT IN ("boot")',
    "INCLUDE ItemID WHERE Items.PRICE <= $PRICE",
    "INCLUDE ItemID WHERE Items.CREATION_TIMESTAMP < $DATE",
    "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)"
    ' | INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("favorite")',
    "INCLUDE ItemID WHERE Items.GENRE IN ($GENRE)"
    ' | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click", "stream")',
    "INCLUDE ItemID WHERE Items.PRICE < CurrentItem.PRICE AND Items.GENRE IN CurrentItem.GENRE",
    'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")',
    "INCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES)",
    "INCLUDE ItemID WHERE Items.DURATION <= 60",
    'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")',
]


@pytest.mark.parametrize("expression", DOCUMENTED)
def test_documented_expressions_parse(expression: str) -> None:
    parsed = parse_filter("f", expression)
    assert parsed.parts and parsed.expression == expression


def test_the_parts_conditions_and_parameters_are_what_was_written() -> None:
    parsed = parse_filter(
        "mixed",
        'INCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES, "comedy") AND Items.DURATION < 60'
        ' OR Items.DURATION >= $LONG | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE NOT IN ("*")',
    )
    include, exclude = parsed.parts
    assert include.action == "INCLUDE" and exclude.action == "EXCLUDE"
    assert include.any_of == (
        (
            Condition("Items", "CATEGORIES", "IN", (Parameter("CATEGORIES"), "comedy")),
            Condition("Items", "DURATION", "<", (60.0,)),
        ),
        (Condition("Items", "DURATION", ">=", (Parameter("LONG"),)),),
    )
    assert exclude.any_of == (
        (Condition("Interactions", "EVENT_TYPE", "NOT IN", (AllEventTypes(),)),),
    )
    assert parsed.parameters == {"CATEGORIES", "LONG"}
    assert not parsed.uses_current_item


def test_current_item_is_recognised() -> None:
    parsed = parse_filter("same_genre", "INCLUDE ItemID WHERE Items.GENRES IN CurrentItem.GENRES")
    assert parsed.parts[0].conditions[0].operands == (CurrentItem("GENRES"),)
    assert parsed.uses_current_item


MISTAKES = [
    (
        "INCLUDE ItemID WHERE Items.GENRE INN ($G)",
        r"at character 34: expected IN, NOT IN, =, <, <=, > or >=, found 'INN'",
    ),
    (
        "INCLUDE UserID WHERE Items.GENRE IN ($G)",
        r"at character 9: expected ItemID .*found 'UserID'",
    ),
    (
        "KEEP ItemID WHERE Items.GENRE IN ($G)",
        r"at character 1: expected INCLUDE or EXCLUDE, found 'KEEP'",
    ),
    ("INCLUDE ItemID Items.GENRE IN ($G)", r"at character 16: expected WHERE, found 'Items'"),
    (
        "INCLUDE ItemID WHERE Items.GENRE IN ($G",
        r"at character 40: expected ',' or '\)', found the end",
    ),
    (
        'INCLUDE ItemID WHERE Items.GENRE IN ("a") extra',
        r"expected '\|' or the end of the expression, found 'extra'",
    ),
    (
        "INCLUDE ItemID WHERE Users.AGE IN ($A)",
        r"dataset 'Users' is not one of Items, Interactions",
    ),
    (
        'INCLUDE ItemID WHERE Interactions.EVENT_VALUE IN ("1")',
        r"Interactions conditions can only be on EVENT_TYPE",
    ),
    ('INCLUDE ItemID WHERE Interactions.EVENT_TYPE = "x"', r"EVENT_TYPE takes IN or NOT IN, not ="),
    (
        'INCLUDE ItemID WHERE Items.GENRE IN ("*")',
        r"'\*' \(every event type\) is only for Interactions",
    ),
    (
        'INCLUDE ItemID WHERE Items.GENRE IN ("a") AND Interactions.EVENT_TYPE IN ("b")',
        r"separate parts joined by '\|'",
    ),
    (
        'INCLUDE ItemID WHERE Items.DURATION < "short"',
        r"expected a number, a \$PARAMETER or CurrentItem",
    ),
    ("INCLUDE ItemID WHERE Items.GENRE IN ($G) IF CurrentUser.AGE > 18", r"needs a Users dataset"),
    ("INCLUDE ItemID WHERE Items.GENRE IN ($G) # comment", r"at character 42: unexpected '#'"),
    (
        "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (CurrentItem.X)",
        r"CurrentItem compares with Items fields only",
    ),
]


@pytest.mark.parametrize(("expression", "message"), MISTAKES)
def test_mistakes_name_the_filter_the_position_and_what_was_expected(
    expression: str, message: str
) -> None:
    with pytest.raises(FilterError, match=r"filter 'bad'.*" + message):
        parse_filter("bad", expression)


def test_limits_of_createfilter() -> None:
    with pytest.raises(FilterError, match="1 to 2500 characters"):
        parse_filter("long", "INCLUDE ItemID WHERE Items.A IN (" + '"x",' * 700 + '"x")')
    with pytest.raises(FilterError, match="1 to 63 characters"):
        parse_filter("n" * 64, "INCLUDE ItemID WHERE Items.A IN ($A)")
    six_fields = " AND ".join(f"Items.F{i} IN ($P{i})" for i in range(6))
    with pytest.raises(FilterError, match="uses 6 fields, at most 5"):
        parse_filter("wide", f"INCLUDE ItemID WHERE {six_fields}")
