"""The reference filter evaluator (filter_reference.py) on the tiny dataset, by hand.

These answers are read off tests/fixtures/tiny_dataset's two CSV files, so that the oracle
of the filter contract is itself checked against Personalize's semantics
(../shared/reference/personalize.md sections 1.2 and 3).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from recs.backends.filtering import FilterCall, FilterSet
from recs.pipeline.filters import parse_filter
from tests.backends.contract import TINY_DATASET
from tests.backends.filter_reference import FilterReferenceError, ReferenceFilters

CATALOG = ["a1", "a2", "a3", "b1", "b2", "b3", "p", "cold1"]
EVERY_ITEM = [*CATALOG, "orphan1", "orphan2", "not-anywhere"]


@pytest.fixture(scope="module")
def reference() -> ReferenceFilters:
    return ReferenceFilters(TINY_DATASET)


def call(expression: str, values: dict[str, str] | None = None, similar: bool = False):
    """The request's FilterCall, checked the way the service checks it."""
    filters = FilterSet.from_expressions({"f": expression}, default=None)
    return filters.resolve("f", values or {}, current_item=similar)


def kept(
    reference: ReferenceFilters,
    found: FilterCall,
    user: str | None = None,
    current: str | None = None,
) -> set[str]:
    return set(reference.kept(found, EVERY_ITEM, user, current))


# Items ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ('"music"', {"a3"}),  # a3 is animals|music: one of its values is enough
        ('"animals","comedy"', {"a1", "a2", "a3", "p"}),
        ("news", {"cold1"}),  # a bare value
        ('"Animals"', set()),  # exact, case-sensitive
        ('"anim"', set()),  # whole values, not substrings
    ],
)
def test_in_a_parameter_list_matches_any_value_of_a_multi_valued_field(reference, values, expected):
    found = call("INCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES)", {"CATEGORIES": values})
    assert kept(reference, found) == expected


def test_not_in_is_the_complement_of_in_so_items_without_values_are_not_in(reference):
    found = call('INCLUDE ItemID WHERE Items.CATEGORIES NOT IN ("animals", "sports")')
    assert kept(reference, found) == {"p", "cold1", "orphan1", "orphan2", "not-anywhere"}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("Items.DURATION < 30", {"a3", "b1", "b2", "p"}),
        ("Items.DURATION <= 27.5", {"a3", "b1", "b2", "p"}),
        ("Items.DURATION > 40", {"a2", "cold1"}),
        ("Items.DURATION >= 40", {"a2", "b3", "cold1"}),
        ("Items.DURATION = 31", {"a1"}),  # numerically: the catalog writes 31.0
        ("Items.CREATION_TIMESTAMP >= 1690000600", {"p", "cold1"}),
    ],
)
def test_comparisons_are_numeric_and_items_without_a_value_never_match(
    reference, expression, expected
):
    assert kept(reference, call(f"INCLUDE ItemID WHERE {expression}")) == expected


def test_a_comparison_parameter_takes_one_number(reference):
    found = call("INCLUDE ItemID WHERE Items.DURATION <= $MAX", {"MAX": "27.5"})
    assert kept(reference, found) == {"a3", "b1", "b2", "p"}
    for bad in ("long", '"1","2"'):
        with pytest.raises(FilterReferenceError, match=r"\$MAX"):
            reference.check(call("INCLUDE ItemID WHERE Items.DURATION <= $MAX", {"MAX": bad}))


def test_numbers_in_an_in_list_compare_as_the_catalog_writes_them(reference):
    found = call("INCLUDE ItemID WHERE Items.CREATION_TIMESTAMP IN (1690000000, 1690000500)")
    assert kept(reference, found) == {"a1", "b3"}
    # DURATION is a float field: items.csv's "31.0" is the number 31, written "31"
    found = call("INCLUDE ItemID WHERE Items.DURATION IN (31, 45.5)")
    assert kept(reference, found) == {"a1", "a2"}
    assert kept(reference, call('INCLUDE ItemID WHERE Items.DURATION IN ("31")')) == {"a1"}
    assert kept(reference, call('INCLUDE ItemID WHERE Items.DURATION IN ("31.0")')) == set()


def test_and_binds_tighter_than_or(reference):
    found = call(
        'INCLUDE ItemID WHERE Items.CATEGORIES IN ("animals") AND Items.DURATION > 25'
        ' OR Items.CATEGORIES IN ("sports") AND Items.DURATION < 20'
    )
    # (animals AND > 25) OR (sports AND < 20); not animals AND (> 25 OR sports) AND < 20
    assert kept(reference, found) == {"a1", "a2", "b1"}


# Interactions ---------------------------------------------------------------------------


def test_exclude_an_event_type_is_case_insensitive_and_per_user(reference):
    found = call('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("WATCHED")')
    # u01 watched a1, a2, p and only clicked a3
    assert kept(reference, found, "u01") == set(EVERY_ITEM) - {"a1", "a2", "p"}
    # u04 watched a1 and shared a2
    assert kept(reference, found, "u04") == set(EVERY_ITEM) - {"a1"}


def test_every_event_type_is_the_users_history(reference):
    found = call('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")')
    assert kept(reference, found, "u09") == set(EVERY_ITEM) - {"p", "orphan1", "orphan2"}
    assert kept(reference, found, "u04") == set(EVERY_ITEM) - {"a1", "a2"}


def test_not_in_event_types_matches_items_with_another_type_of_interaction(reference):
    found = call('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE NOT IN ("watched")')
    assert kept(reference, found, "u01") == set(EVERY_ITEM) - {"a3"}  # clicked
    assert kept(reference, found, "u04") == set(EVERY_ITEM) - {"a2"}  # shared
    # u07 watched b3 three times and clicked it once: the click is enough
    assert kept(reference, found, "u07") == set(EVERY_ITEM) - {"b3"}


@pytest.mark.parametrize("user", [None, "user-never-seen"])
def test_without_a_known_user_interactions_match_nothing(reference, user):
    exclude = call('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")')
    include = call('INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")')
    assert kept(reference, exclude, user) == set(EVERY_ITEM)
    assert kept(reference, include, user) == set()


def test_include_items_or_interactions_minus_exclude(reference):
    found = call(
        'INCLUDE ItemID WHERE Items.CATEGORIES IN ("music")'
        ' | INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("clicked")'
        ' | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")'
    )
    # u02 clicked a2 and p, watched a1, a3 (music) and nothing else: (a3 | a2, p) - (a1, a3)
    assert kept(reference, found, "u02") == {"a2", "p"}


# Parameters -----------------------------------------------------------------------------


def test_an_exclude_part_without_its_value_is_ignored(reference):
    expression = (
        "EXCLUDE ItemID WHERE Items.CATEGORIES IN ($SKIP)"
        ' | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")'
    )
    assert kept(reference, call(expression), "u04") == set(EVERY_ITEM) - {"a1", "a2"}
    assert kept(reference, call(expression, {"SKIP": ""}), "u04") == set(EVERY_ITEM) - {
        "a1",
        "a2",
    }
    assert kept(reference, call(expression, {"SKIP": '"sports","comedy"'}), "u04") == set(
        EVERY_ITEM
    ) - {"a1", "a2", "b1", "b2", "b3", "p"}


def test_an_include_part_without_its_value_is_refused(reference):
    found = FilterCall(parse_filter("f", "INCLUDE ItemID WHERE Items.CATEGORIES IN ($C)"))
    with pytest.raises(FilterReferenceError, match=r"\$C"):
        reference.keeps(found, "a1")


# CurrentItem ----------------------------------------------------------------------------


def test_current_item_categories_and_duration(reference):
    same = call("INCLUDE ItemID WHERE Items.CATEGORIES IN CurrentItem.CATEGORIES", similar=True)
    assert kept(reference, same, current="a3") == {"a1", "a2", "a3"}  # animals or music
    assert kept(reference, same, current="b1") == {"b1", "b2", "b3"}
    assert kept(reference, same, current="orphan1") == set()  # no values: matches nothing
    assert kept(reference, same, current=None) == set()
    shorter = call("INCLUDE ItemID WHERE Items.DURATION < CurrentItem.DURATION", similar=True)
    assert kept(reference, shorter, current="b3") == {"a1", "a3", "b1", "b2", "p"}
    assert kept(reference, shorter, current="orphan1") == set()


# The window of 100 interactions per event type --------------------------------------------


def test_only_the_100_most_recent_interactions_per_event_type_count(tmp_path: Path):
    rows = [("u", f"i{k:03d}", 1000 + k, "watched") for k in range(105)]
    rows.append(("u", "tie-early", 1200, "watched"))  # same timestamp as the next one,
    rows.append(("u", "tie-late", 1200, "watched"))  # which is later in the file
    rows += [("u", f"x{k:03d}", 900 + k, "watched") for k in range(99)]  # older still
    rows.append(("u", "i000", 1, "clicked"))  # another type: its own window
    rows.append(("u", "old", 2, "Watched"))  # the same type, whatever its case
    with (tmp_path / "interactions.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE"])
        writer.writerows(rows)
    reference = ReferenceFilters(tmp_path)
    watched = reference.user_items("u", ["watched"])
    # the most recent 100 "watched": tie-early and tie-late (1200), then i104 down to i007
    assert watched == {"tie-early", "tie-late", *(f"i{k:03d}" for k in range(7, 105))}
    assert reference.user_items("u", ["clicked"]) == {"i000"}
    found = call('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")')
    assert reference.keeps(found, "i006", "u")
    assert not reference.keeps(found, "i007", "u")
    assert reference.keeps(found, "old", "u")
    assert reference.keeps(found, "i000", "u")  # clicked, not watched
    every = call('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")')
    assert not reference.keeps(every, "i000", "u")  # its click is in the clicked window


def test_equal_timestamps_the_later_row_is_more_recent(tmp_path: Path):
    rows = [("u", f"i{k:03d}", 5000 + k, "watched") for k in range(99)]
    rows += [("u", "first", 10, "watched"), ("u", "second", 10, "watched")]
    with (tmp_path / "interactions.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE"])
        writer.writerows(rows)
    reference = ReferenceFilters(tmp_path)
    assert "second" in reference.user_items("u")
    assert "first" not in reference.user_items("u")
