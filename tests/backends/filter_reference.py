"""A plain-Python reference evaluator of filters: which items a filter keeps, item by item.

It is the oracle of the filter contract tests (tests/backends/contract.py), which hold it
against the local engine's compiled filters both directly (tests/backends/local/
test_local_contract.py) and through Personalize's API (PersonalizeBackend -> the
AWS-protocol endpoint -> the local engine, tests/backends/personalize/
test_personalize_contract.py). It is written from Personalize's documented semantics only,
never from an engine's code, so that an engine's compiled filters and this evaluator check
each other. Sources:
../shared/reference/personalize.md section 3 ("Filter expressions": elements, `|`, rules
and limits) and section 1.2 (`filterValues`: INCLUDE parameters are required; an EXCLUDE
part whose parameter is not given is ignored);
https://docs.aws.amazon.com/personalize/latest/dg/filter-expressions.html.

It reads the prepared dataset's `items.csv` and `interactions.csv` with the `csv` module,
one dict per item and one list per user, and evaluates one item at a time: slow, obvious,
and meant for datasets of a few dozen rows.

The semantics, as implemented:

- **Parts** (section 3, `|`): an item is kept iff it matches at least one INCLUDE part (or
  the filter has no INCLUDE part) and matches no EXCLUDE part that applies. An EXCLUDE part
  using a `$PARAMETER` given no value (or an empty one) does not apply: it is ignored as a
  whole (section 1.2). An INCLUDE part must have all its values: the caller is refused
  before (`FilterSet.resolve`), so here that is a `ReferenceError`.
- **Within a part**: an OR of AND-groups, AND binding tighter (`Part.any_of`).
- **Items conditions** read the item's row of `items.csv`; an item missing from it has no
  values. Categorical fields (`categorical` in the Items schema: CATEGORIES) hold several
  values separated by `|`; other fields hold one.
  - `IN (list)`: some value of the item equals some listed value, exactly (case-sensitive).
    Numbers compare as text written the way the catalog writes them ("30" for 30.0, "45.5"
    for 45.5: pyarrow's CSV writer, which `recs prepare` uses): a number in the list, and
    the value of a numeric field of the Items schema (DURATION, CREATION_TIMESTAMP), which
    is a number to Personalize whatever its text in the file ("31.0" is 31, written "31").
    `NOT IN (list)` is the exact complement of IN, so an item without a value is NOT IN
    every list.
  - `= < <= > >=` compare numbers: the item's value read as a float; a missing or
    non-numeric value matches no comparison. The operand is a number, a `$PARAMETER`
    with exactly one numeric value, or `CurrentItem.<field>`.
  - `$PARAMETER` gives the values of `FilterCall.values` (parsed from `filterValues`).
  - `CurrentItem.<field>`: the values of that field of the item whose similar items are
    asked; without a current item (or when it has no such value) there are no values: IN
    matches nothing (and NOT IN, its complement, everything), a comparison nothing.
- **Interactions conditions** (`EVENT_TYPE` only) see the user's 100 most recent
  interactions per event type (section 3, "Rules and limits"): most recent by TIMESTAMP,
  and between equal timestamps the later row of the file. Event types match
  case-insensitively, so the window is per lower-cased event type.
  - `IN (types)`: the user has one of those interactions with the item whose type is
    listed; `IN ("*")`: any type.
  - `NOT IN (types)`: the user has one of those interactions with the item whose type is
    not listed.
  - No user, or a user without interactions: nothing matches.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from recs.backends.filtering import FilterCall
from recs.pipeline.filters import (
    COMPARISONS,
    AllEventTypes,
    Condition,
    CurrentItem,
    Operand,
    Parameter,
    Part,
)
from recs.pipeline.schemas import ITEMS_FIELDS

# Personalize's default window: interactions per user per event type that filters see.
WINDOW = 100
CATEGORICAL_FIELDS = frozenset(f["name"] for f in ITEMS_FIELDS if f.get("categorical"))
_NUMERIC_TYPES = {"int", "long", "float", "double"}
NUMERIC_FIELDS = frozenset(
    f["name"]
    for f in ITEMS_FIELDS
    if _NUMERIC_TYPES & set(f["type"] if isinstance(f["type"], list) else [f["type"]])
)
MULTI_VALUE_SEPARATOR = "|"


class FilterReferenceError(ValueError):
    """A call the reference cannot evaluate: Personalize would refuse it (InvalidInput)."""


class ReferenceFilters:
    """Which items a filter keeps, from a prepared dataset directory (see the module doc)."""

    def __init__(self, dataset_dir: str | Path, window: int = WINDOW) -> None:
        dataset_dir = Path(dataset_dir)
        self.window = window
        # item id -> field -> the cell as written (empty cells left out: no value)
        self.items: dict[str, dict[str, str]] = {}
        items_csv = dataset_dir / "items.csv"
        if items_csv.exists():
            with items_csv.open(encoding="utf-8", newline="") as file:
                for row in csv.DictReader(file):
                    self.items[row["ITEM_ID"]] = {k: v for k, v in row.items() if v}
        # user id -> [(item id, lower-cased event type)] within the window, in no order
        self.interactions: dict[str, list[tuple[str, str]]] = {}
        by_user_type: dict[tuple[str, str], list[tuple[int, int, str]]] = defaultdict(list)
        with (dataset_dir / "interactions.csv").open(encoding="utf-8", newline="") as file:
            for row_number, row in enumerate(csv.DictReader(file)):
                event_type = (row.get("EVENT_TYPE") or "").lower()
                key = (row["USER_ID"], event_type)
                by_user_type[key].append((int(row["TIMESTAMP"]), row_number, row["ITEM_ID"]))
        for (user, event_type), events in by_user_type.items():
            events.sort()  # oldest first; equal timestamps: file order
            recent = events[-window:] if window > 0 else []
            self.interactions.setdefault(user, []).extend(
                (item, event_type) for _, _, item in recent
            )

    # --- the verdict ----------------------------------------------------------------------

    def keeps(
        self,
        call: FilterCall,
        item_id: str,
        user_id: str | None = None,
        current_item: str | None = None,
    ) -> bool:
        """Whether `call`'s filter lets `item_id` through, for `user_id` (Interactions
        conditions) and `current_item` (`CurrentItem.<field>`, similar items only)."""
        self.check(call)
        includes = [p for p in call.filter.parts if p.action == "INCLUDE"]
        excludes = [p for p in call.filter.parts if p.action == "EXCLUDE"]
        if includes and not any(
            self._matches(call, part, item_id, user_id, current_item) for part in includes
        ):
            return False
        return not any(
            self._matches(call, part, item_id, user_id, current_item)
            for part in excludes
            if not self._missing_parameters(call, part)
        )

    def check(self, call: FilterCall) -> None:
        """FilterReferenceError for values Personalize refuses (InvalidInputException): a
        parameter of an INCLUDE part without a value (section 1.2), or a parameter compared
        with `= < <= > >=` given other than one number, in a part that applies."""
        for part in call.filter.parts:
            missing = self._missing_parameters(call, part)
            if missing and part.action == "INCLUDE":
                raise FilterReferenceError(
                    f"filter {call.name!r}: INCLUDE needs a value for ${', $'.join(missing)}"
                )
            if missing:
                continue  # an EXCLUDE part without its values is ignored
            for condition in part.conditions:
                for operand in condition.operands:
                    if condition.operator in COMPARISONS and isinstance(operand, Parameter):
                        given = call.values.get(operand.name, ())
                        if len(given) != 1 or _number(given[0]) is None:
                            raise FilterReferenceError(
                                f"filter {call.name!r}: ${operand.name} compares with "
                                f"{condition.operator} and takes one number, not {list(given)}"
                            )

    def kept(
        self,
        call: FilterCall,
        item_ids: Iterable[str],
        user_id: str | None = None,
        current_item: str | None = None,
    ) -> list[str]:
        """The ids of `item_ids` that `call` keeps, in their order."""
        return [i for i in item_ids if self.keeps(call, i, user_id, current_item)]

    # --- parts and conditions ---------------------------------------------------------------

    @staticmethod
    def _missing_parameters(call: FilterCall, part: Part) -> list[str]:
        """The parameters of `part` given no value (an empty value counts as none)."""
        names = {
            operand.name
            for condition in part.conditions
            for operand in condition.operands
            if isinstance(operand, Parameter)
        }
        return sorted(name for name in names if not call.values.get(name))

    def _matches(
        self,
        call: FilterCall,
        part: Part,
        item_id: str,
        user_id: str | None,
        current_item: str | None,
    ) -> bool:
        """OR of the AND-groups of `part`."""
        return any(
            all(self._condition(call, c, item_id, user_id, current_item) for c in group)
            for group in part.any_of
        )

    def _condition(
        self,
        call: FilterCall,
        condition: Condition,
        item_id: str,
        user_id: str | None,
        current_item: str | None,
    ) -> bool:
        if condition.dataset == "Interactions":
            return self._interactions(call, condition, item_id, user_id)
        if condition.operator in COMPARISONS:
            return self._comparison(call, condition, item_id, current_item)
        listed = set(self._list_values(call, condition.operands, current_item))
        found = any(value in listed for value in self.values(item_id, condition.field))
        return found if condition.operator == "IN" else not found

    def _comparison(
        self, call: FilterCall, condition: Condition, item_id: str, current_item: str | None
    ) -> bool:
        """`Items.F <op> operand`, numerically; no number on either side: no match."""
        (operand,) = condition.operands
        if isinstance(operand, float):
            bound: float | None = operand
        elif isinstance(operand, Parameter):
            bound = _number(call.values[operand.name][0])  # one number: see check()
        elif isinstance(operand, CurrentItem):
            values = self.values(current_item, operand.field) if current_item else []
            bound = _number(values[0]) if len(values) == 1 else None
        else:
            raise FilterReferenceError(f"cannot compare with {operand!r}")
        values = self.values(item_id, condition.field)
        value = _number(values[0]) if len(values) == 1 else None
        if value is None or bound is None:
            return False
        return {
            "=": value == bound,
            "<": value < bound,
            "<=": value <= bound,
            ">": value > bound,
            ">=": value >= bound,
        }[condition.operator]

    def _list_values(
        self, call: FilterCall, operands: Iterable[Operand], current_item: str | None
    ) -> list[str]:
        """The texts an IN / NOT IN list stands for."""
        found: list[str] = []
        for operand in operands:
            if isinstance(operand, str):
                found.append(operand)
            elif isinstance(operand, float):
                found.append(number_text(operand))
            elif isinstance(operand, Parameter):
                found.extend(call.values.get(operand.name, ()))
            elif isinstance(operand, CurrentItem):
                if current_item is not None:
                    found.extend(self.values(current_item, operand.field))
            else:
                raise FilterReferenceError(f"{operand!r} in an Items list")
        return found

    def _interactions(
        self, call: FilterCall, condition: Condition, item_id: str, user_id: str | None
    ) -> bool:
        """`Interactions.EVENT_TYPE IN / NOT IN (...)` over the user's window."""
        every_type = any(isinstance(o, AllEventTypes) for o in condition.operands)
        listed = {
            text.lower()
            for text in self._list_values(
                call, [o for o in condition.operands if not isinstance(o, AllEventTypes)], None
            )
        }
        types = {t for i, t in self.interactions.get(user_id or "", []) if i == item_id}
        if condition.operator == "IN":
            return bool(types) and (every_type or bool(types & listed))
        return not every_type and bool(types - listed)

    # --- the data ---------------------------------------------------------------------------

    def values(self, item_id: str | None, field: str) -> list[str]:
        """The item's values of `field` in the catalog: several for a categorical field
        (split on `|`), one otherwise (a numeric field's as `number_text` writes it), none
        when the item or the cell is missing (or a numeric cell is not a number)."""
        cell = self.items.get(item_id or "", {}).get(field)
        if cell is None:
            return []
        if field in CATEGORICAL_FIELDS:
            return [v for v in cell.split(MULTI_VALUE_SEPARATOR) if v]
        if field in NUMERIC_FIELDS:
            number = _number(cell)
            return [] if number is None else [number_text(number)]
        return [cell]

    def user_items(self, user_id: str, event_types: Iterable[str] | None = None) -> set[str]:
        """The items of the user's window (of those event types only, when given)."""
        wanted = None if event_types is None else {t.lower() for t in event_types}
        return {
            item
            for item, event_type in self.interactions.get(user_id, [])
            if wanted is None or event_type in wanted
        }


def number_text(value: float) -> str:
    """A number as a CSV writes it: "30" for 30.0, "45.5" for 45.5."""
    return str(int(value)) if value.is_integer() else repr(value)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
