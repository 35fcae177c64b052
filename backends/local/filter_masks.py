"""Filters evaluated by the local engine: compiled once per model, cheap mask operations per call.

`CompiledFilters` turns every configured filter (`backends.filtering.FilterSet`) into boolean
masks over the engine's items: the model's items first (the ones it can score), then the
catalog's items the model does not know (so that re-ranking can filter ids it cannot score).
(and one blank item, for ids known to neither). A call then costs a few vectorised
operations over one mask per condition, never a Python loop over items:

- `Items.<field> IN / NOT IN`: per field, each value's item indices (categorical values
  split on `|`); a condition ORs the indices of its values. NOT IN is the complement of IN
  (an item without a value is not IN any list).
- `Items.<field> = < <= > >=`: per field, the values as float64 (NaN where missing or not a
  number, which matches no comparison).
- `CurrentItem.<field>`: the same, with the values of the item whose similar items are asked.
- `Interactions.EVENT_TYPE IN / NOT IN`: the items among the user's recent (item, event
  type) pairs (the 100 most recent per type, `backends.local.recent`) whose type is (not)
  in the list, case-insensitively; `"*"` is every type. No user, or an unknown one: no items.
- Conditions chain with AND / OR (AND first); parts combine as Personalize combines them:
  the union of the INCLUDE parts (every item when there is none) minus the union of the
  EXCLUDE parts. An EXCLUDE part whose parameter is not given is left out.

Conditions that depend on nothing per call (fixed values on Items) are evaluated once here.
Personalize's semantics are in ../shared/reference/personalize.md section 3 and
`backends.filtering`; the contract suite checks this implementation against an independent
one (the Personalize emulator's) on the same calls.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from recs.backends.base import CatalogItem
from recs.backends.errors import InvalidRequestError, ModelLoadError
from recs.backends.filtering import FilterCall, FilterSet
from recs.backends.local.artifacts import LocalModel
from recs.backends.local.kernels import readonly
from recs.pipeline.filters import (
    AllEventTypes,
    Condition,
    CurrentItem,
    Filter,
    Operand,
    Parameter,
    Part,
)

CATEGORY_SEPARATOR = "|"
MASK_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class Window:
    """A user's interactions as filters see them: (item, event type) pairs, the items as
    universe indices and the types as codes into `names` (lower-cased)."""

    items: np.ndarray
    types: np.ndarray
    names: np.ndarray


@dataclass(frozen=True, slots=True)
class _Call:
    """What one evaluation depends on besides the compiled columns."""

    values: Mapping[str, tuple[str, ...]]
    window: Window | None  # None: no user, or one without interactions
    current_item: int | None  # universe item index


class CompiledFilters:
    """The configured filters, ready to answer `allowed(call, user, current_item)`."""

    def __init__(
        self,
        filters: FilterSet,
        model: LocalModel,
        catalog: pa.Table | None,
        added: Sequence[CatalogItem] = (),
    ) -> None:
        """`added`: items received after the catalog was written (PutItems), which replace
        or extend it; their properties are catalog columns."""
        self.filters = filters
        self.num_model_items = model.num_items
        ids = model.item_ids.tolist()
        index = {item: i for i, item in enumerate(ids)}
        extra: list[str] = []
        catalog_ids = [] if catalog is None else catalog.column("ITEM_ID").to_pylist()
        for item in [*catalog_ids, *(i.item_id for i in added)]:
            if item not in index:
                index[item] = len(ids) + len(extra)
                extra.append(item)
        self.index = index  # item id -> universe index
        self.extra_ids = extra  # ids of the universe items after the model's, in order
        # The last index is a blank item (no catalog values, no interactions): where
        # re-ranking looks up an id found neither in the model nor in the catalog.
        self.blank = len(ids) + len(extra)
        self.size = self.blank + 1
        self._model = model
        self._event_types = np.char.lower(np.asarray(model.event_types, dtype=str))
        self._item_values: dict[str, list[tuple[str, ...]]] = {}
        self._categories: dict[str, dict[str, np.ndarray]] = {}
        self._numbers: dict[str, np.ndarray] = {}
        self._static: dict[Condition, np.ndarray] = {}
        fields = {
            (name, field)
            for name, found in filters.filters.items()
            for field in _item_fields(found)
        }
        columns = {} if catalog is None else self._catalog_columns(catalog, {f for _, f in fields})
        for item in added:  # the latest version of a video wins over the catalog's
            at = index[item.item_id]
            for field, values in columns.items():
                values[at] = _added_value(item, field)
        for name, field in sorted(fields):
            if field not in columns:
                where = "no catalog is configured (`catalog` in the serve config)"
                if catalog is not None:
                    known = ", ".join(catalog.column_names)
                    where = f"the catalog has no column {field} (it has {known})"
                raise ModelLoadError(f"filter {name!r} uses Items.{field}, but {where}")
        for field, values in columns.items():
            self._item_values[field] = _categorical(values)
            self._categories[field] = _value_index(self._item_values[field])
            self._numbers[field] = _numbers(values, self.size)
        # Filters whose answer depends on the user or the current item (not cached).
        self._per_user = {
            name
            for name, found in filters.filters.items()
            if found.uses_current_item
            or any(part.dataset == "Interactions" for part in found.parts)
        }
        self._mask_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._cache_lock = threading.Lock()
        nobody = _Call({}, None, None)
        for found in filters.filters.values():
            for part in found.parts:
                for condition in part.conditions:
                    if _is_static(condition):
                        self._static[condition] = readonly(self._condition(condition, nobody))

    def _catalog_columns(self, catalog: pa.Table, fields: set[str]) -> dict[str, list]:
        """Each field's values in universe order (None where an item has none)."""
        rows = catalog.column("ITEM_ID").to_pylist()
        position = np.array([self.index[item] for item in rows], dtype=np.int64)
        columns = {}
        for field in fields & set(catalog.column_names):
            values: list = [None] * self.size
            for at, value in zip(position.tolist(), catalog.column(field).to_pylist(), strict=True):
                values[at] = value  # a repeated id: the last row wins, as in the catalog
            columns[field] = values
        return columns

    # --- per call ---------------------------------------------------------------------

    def model_window(self, user: int | None) -> Window | None:
        """The window training stored for a model user (None for no user)."""
        if user is None:
            return None
        model = self._model
        start, stop = model.recent_indptr[user], model.recent_indptr[user + 1]
        return Window(
            model.recent_items[start:stop], model.recent_types[start:stop], self._event_types
        )

    def per_user(self, call: FilterCall) -> bool:
        """Whether `call`'s answer depends on the user or the current item (else the same
        mask serves everyone, and no window need be built for it)."""
        return call.name in self._per_user

    def allowed(
        self, call: FilterCall, window: Window | None = None, current_item: int | None = None
    ) -> np.ndarray:
        """Which items `call` lets through (bool, universe order: model items first) for a
        user with this interaction `window` (None: no interactions). Read-only.

        A filter that reads neither interactions nor the current item gives the same mask for
        every user: the masks of the last `MASK_CACHE_SIZE` value combinations are kept, so a
        call repeating a recent one costs a dict lookup.
        """
        if call.name not in self._per_user:
            return self._cached(call)[0]
        return self._evaluate(call, window, current_item)

    def allowed_model_items(self, call: FilterCall, window: Window | None = None) -> np.ndarray:
        """The model items (ascending indices) `call` lets through: `allowed` as a list of
        candidates, kept with the mask when the mask is cached."""
        if call.name not in self._per_user:
            return self._cached(call)[1]
        return np.flatnonzero(self._evaluate(call, window, None)[: self.num_model_items])

    def _cached(self, call: FilterCall) -> tuple[np.ndarray, np.ndarray]:
        key = call.key
        cached = self._mask_cache.get(key)
        if cached is None:
            mask = readonly(self._evaluate(call, None, None))
            cached = (mask, readonly(np.flatnonzero(mask[: self.num_model_items])))
            with self._cache_lock:
                self._mask_cache[key] = cached
                if len(self._mask_cache) > MASK_CACHE_SIZE:
                    del self._mask_cache[next(iter(self._mask_cache))]
        return cached

    def _evaluate(
        self, call: FilterCall, window: Window | None, current_item: int | None
    ) -> np.ndarray:
        context = _Call(call.values, window, current_item)
        include: np.ndarray | None = None
        exclude: np.ndarray | None = None
        for part in call.filter.parts:
            if part.action == "EXCLUDE" and any(
                not call.values.get(name) for name in part.parameters
            ):
                continue  # Personalize ignores an EXCLUDE part whose parameter is not given
            matched = self._part(part, context)
            if part.action == "INCLUDE":
                include = matched if include is None else include | matched
            else:
                exclude = matched if exclude is None else exclude | matched
        allowed = include if include is not None else np.ones(self.size, dtype=np.bool_)
        if exclude is not None:
            allowed = allowed & ~exclude
        return allowed

    def _part(self, part: Part, context: _Call) -> np.ndarray:
        result: np.ndarray | None = None
        for group in part.any_of:
            matched = self._condition(group[0], context)
            for condition in group[1:]:
                matched = matched & self._condition(condition, context)
            result = matched if result is None else result | matched
        assert result is not None  # a part has at least one condition
        return result

    def _condition(self, condition: Condition, context: _Call) -> np.ndarray:
        static = self._static.get(condition)
        if static is not None:
            return static
        if condition.dataset == "Interactions":
            return self._interactions(condition, context)
        if condition.operator in ("IN", "NOT IN"):
            matched = np.zeros(self.size, dtype=np.bool_)
            index = self._categories[condition.field]
            for value in self._strings(condition.operands, context):
                items = index.get(value)
                if items is not None:
                    matched[items] = True
            return ~matched if condition.operator == "NOT IN" else matched
        number = self._number(condition.operands[0], context, condition)
        column = self._numbers[condition.field]
        with np.errstate(invalid="ignore"):
            return _COMPARE[condition.operator](column, number)

    def _interactions(self, condition: Condition, context: _Call) -> np.ndarray:
        matched = np.zeros(self.size, dtype=np.bool_)
        window = context.window
        if window is None or len(window.items) == 0:
            return matched
        if any(isinstance(operand, AllEventTypes) for operand in condition.operands):
            hit = np.ones(len(window.items), dtype=np.bool_)
        else:
            wanted = [value.lower() for value in self._strings(condition.operands, context)]
            hit = np.isin(window.names, wanted)[window.types]
        if condition.operator == "NOT IN":
            hit = ~hit
        matched[window.items[hit]] = True
        return matched

    def _strings(self, operands: tuple[Operand, ...], context: _Call) -> list[str]:
        values: list[str] = []
        for operand in operands:
            if isinstance(operand, Parameter):
                values.extend(context.values.get(operand.name, ()))
            elif isinstance(operand, CurrentItem):
                values.extend(self._current_values(operand.field, context))
            elif isinstance(operand, float):
                values.append(_number_text(operand))
            elif isinstance(operand, str):
                values.append(operand)
        return values

    def _current_values(self, field: str, context: _Call) -> list[str]:
        if context.current_item is None:
            return []
        return list(self._item_values[field][context.current_item])

    def _number(self, operand: Operand, context: _Call, condition: Condition) -> float:
        if isinstance(operand, float):
            return operand
        if isinstance(operand, CurrentItem):
            if context.current_item is None:
                return math.nan
            return float(self._numbers[operand.field][context.current_item])
        assert isinstance(operand, Parameter)
        given = context.values.get(operand.name, ())
        try:
            (value,) = given
            return float(value)
        except ValueError:
            raise InvalidRequestError(
                f"filter_values.{operand.name}",
                f"must be one number (it is compared with Items.{condition.field})",
            ) from None


_COMPARE = {
    "=": np.equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}


def _added_value(item: CatalogItem, field: str) -> str | None:
    """A PutItems item's value of a catalog column (None when it has none)."""
    if field == "TITLE":
        return item.title or None
    if field == "URL":
        return item.url or None
    return item.properties.get(field)


def _item_fields(found: Filter) -> set[str]:
    """Every catalog field a filter reads (Items conditions and CurrentItem operands)."""
    fields = set()
    for part in found.parts:
        for condition in part.conditions:
            if condition.dataset == "Items":
                fields.add(condition.field)
            fields.update(o.field for o in condition.operands if isinstance(o, CurrentItem))
    return fields


def _is_static(condition: Condition) -> bool:
    return condition.dataset == "Items" and not any(
        isinstance(operand, Parameter | CurrentItem) for operand in condition.operands
    )


def _categorical(values: list) -> list[tuple[str, ...]]:
    """Each item's categorical values: the text split on `|` (numbers as a catalog writes them)."""
    split: list[tuple[str, ...]] = []
    for value in values:
        text = "" if value is None else value if isinstance(value, str) else _number_text(value)
        split.append(tuple(text.split(CATEGORY_SEPARATOR)) if text else ())
    return split


def _value_index(item_values: list[tuple[str, ...]]) -> dict[str, np.ndarray]:
    """Each categorical value -> the items holding it."""
    found: dict[str, list[int]] = {}
    for item, values in enumerate(item_values):
        for value in values:
            found.setdefault(value, []).append(item)
    return {value: np.array(items, dtype=np.int64) for value, items in found.items()}


def _numbers(values: list, size: int) -> np.ndarray:
    """The values as float64, NaN where missing or not a number."""
    out = np.full(size, np.nan)
    for item, value in enumerate(values):
        if value is None:
            continue
        try:
            out[item] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def _number_text(value: float) -> str:
    """A number as a catalog would write it: 30.0 -> "30", 2.5 -> "2.5"."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
