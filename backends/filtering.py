"""Filters by name: the configured set, the default filter, and one request's filter checked.

Both engines take a request's filter as a `FilterCall`: the parsed filter
(`recs.pipeline.filters`) and the values given for its `$PARAMETER`s, already checked
against Personalize's limits, so that a bad `filter_name` or `filter_values` is refused the
same way whichever engine answers. Sources: ../shared/reference/personalize.md sections 1.2
(`filterValues`: at most 25 keys of at most 50 characters `[A-Za-z0-9_]`, values of at most
1,000 characters; several values as a comma-separated list of quoted strings) and 3
(INCLUDE parameters are required; an EXCLUDE part whose parameter is not given is ignored);
https://docs.aws.amazon.com/personalize/latest/dg/filter-real-time.html.

**The default filter.** Personalize excludes nothing by itself. GetRecommendations without a
filter applies the set's default filter, by default `exclude_interacted`
(`EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")`: nothing the user interacted with,
within the last 100 interactions per event type), so "never what they already watched" holds
on both engines. `[server] default_filter` names another filter of `[filters]`, or `""` for none.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from recs.backends.errors import InvalidRequestError
from recs.pipeline.filters import (
    AllEventTypes,
    Filter,
    FilterError,
    parse_filter,
)

DEFAULT_FILTER_NAME = "exclude_interacted"
DEFAULT_FILTER_EXPRESSION = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")'

MAX_FILTER_VALUES = 25
RESOLVED_CALLS = 1024  # distinct (filter, values) requests kept resolved, see FilterSet.resolve
MAX_VALUE_KEY_LENGTH = 50
MAX_VALUE_LENGTH = 1000
_VALUE_KEY = re.compile(r"[A-Za-z0-9_]+")
_QUOTED = re.compile(r'\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


@dataclass(frozen=True, slots=True)
class FilterCall:
    """One request's filter: which filter, and the values given for its parameters.

    `values` maps each given `$PARAMETER` name to its values (one or more strings);
    `raw_values` keeps them as the caller wrote them, which is what Personalize's
    `filterValues` takes.
    """

    filter: Filter
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    raw_values: Mapping[str, str] = field(default_factory=dict)
    # Worked out once: engines ask them on every call (the hot path).
    history_only: bool = field(init=False, repr=False, compare=False)
    # The filter's name and its values, hashable: equal for calls an engine may answer alike.
    key: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "history_only", excludes_every_interaction(self.filter))
        object.__setattr__(self, "key", (self.filter.name, tuple(sorted(self.values.items()))))

    @property
    def name(self) -> str:
        return self.filter.name

    def excludes_every_interaction(self) -> bool:
        """True for `EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")` exactly: the
        user's whole (windowed) history, which an engine may apply without evaluating it."""
        return self.history_only


def excludes_every_interaction(found: Filter) -> bool:
    """Whether `found` is the history exclusion and nothing else (see FilterCall)."""
    if len(found.parts) != 1:
        return False
    part = found.parts[0]
    if part.action != "EXCLUDE" or len(part.conditions) != 1:
        return False
    condition = part.conditions[0]
    return (
        condition.dataset == "Interactions"
        and condition.operator == "IN"
        and any(isinstance(operand, AllEventTypes) for operand in condition.operands)
    )


UNFILTERED = FilterCall(Filter("(no filter)", "", ()))
"""GetRecommendations asked for no filter at all, not even the default one: what a
Personalize request without `filterArn` means (the AWS-protocol endpoint sends it). Only
`recommend` tells it from None; `FilterSet.applied` turns it into None."""


class FilterSet:
    """The filters a service knows, by name, and the one GetRecommendations applies by default.

    Built once at start-up (`from_expressions` parses every expression, so a bad one stops
    the start naming the filter and the position); `resolve` checks each request's filter.
    """

    def __init__(
        self, filters: Mapping[str, Filter] | None = None, default: str | None = None
    ) -> None:
        self._filters = MappingProxyType(dict(filters or {}))
        if default is not None and default not in self._filters:
            raise FilterError(
                f"default_filter {default!r} is not a filter of [filters] "
                f"(known: {', '.join(sorted(self._filters)) or 'none'})"
            )
        self._default = FilterCall(self._filters[default]) if default is not None else None
        # Requests repeat a few (filter, values) pairs: each is checked and parsed once.
        self._resolved: dict[tuple, FilterCall | None] = {}
        if self._default is not None and self._default.filter.parameters:
            raise FilterError(
                f"default_filter {default!r} takes parameters "
                f"({', '.join(sorted(self._default.filter.parameters))}); a default filter "
                "must not, since requests without a filter give no values"
            )

    @classmethod
    def from_expressions(
        cls, expressions: Mapping[str, str], default: str | None = DEFAULT_FILTER_NAME
    ) -> FilterSet:
        """Parse `expressions` (name -> expression); the built-in default filter is added
        when `default` is `exclude_interacted` and `expressions` does not define it."""
        filters = {name: parse_filter(name, text) for name, text in expressions.items()}
        if default == DEFAULT_FILTER_NAME and DEFAULT_FILTER_NAME not in filters:
            filters[DEFAULT_FILTER_NAME] = parse_filter(
                DEFAULT_FILTER_NAME, DEFAULT_FILTER_EXPRESSION
            )
        return cls(filters, default or None)

    @property
    def filters(self) -> Mapping[str, Filter]:
        """Every filter by name, the default one included."""
        return self._filters

    @property
    def default(self) -> FilterCall | None:
        """The filter GetRecommendations applies when the request names none (None: no filter)."""
        return self._default

    def applied(self, requested: FilterCall | None) -> FilterCall | None:
        """The filter GetRecommendations applies for `requested`: the default one for None,
        no filter for UNFILTERED, else `requested`."""
        if requested is None:
            return self._default
        return None if requested is UNFILTERED else requested

    def details(self) -> dict[str, str]:
        """For GetModelInfo: `default_filter` (its name, or `none`) and `filters.<name>`
        (each expression)."""
        default = self._default.name if self._default is not None else "none"
        described = {"default_filter": default}
        for name in sorted(self._filters):
            described[f"filters.{name}"] = self._filters[name].expression
        return described

    def resolve(
        self, name: str, values: Mapping[str, str], current_item: bool = False
    ) -> FilterCall | None:
        """The request's filter, checked; None when it names none (and gives no values).

        Raises InvalidRequestError naming the field: an unknown `filter_name`, values
        without a name, a key or value beyond Personalize's limits, a key that is not a
        parameter of the filter, a missing value for a parameter of an INCLUDE part, or a
        filter comparing with `CurrentItem` on a call that has no current item (only
        similar items, `current_item=True`, have one).

        The last RESOLVED_CALLS distinct requests' answers are kept (a FilterCall is
        immutable); a refused request is checked again each time.
        """
        key = (name, current_item, tuple(values.items()))
        resolved = self._resolved.get(key)
        if resolved is None:
            resolved = self._resolve(name, values, current_item)
            if len(self._resolved) >= RESOLVED_CALLS:
                with contextlib.suppress(KeyError, StopIteration, RuntimeError):
                    del self._resolved[next(iter(self._resolved))]  # the oldest goes
            self._resolved[key] = resolved
        return resolved

    def _resolve(
        self, name: str, values: Mapping[str, str], current_item: bool
    ) -> FilterCall | None:
        if not name:
            if values:
                raise InvalidRequestError("filter_values", "given without a filter_name")
            return None
        found = self._filters.get(name)
        if found is None:
            known = ", ".join(sorted(self._filters)) or "none are configured"
            raise InvalidRequestError("filter_name", f"no filter named {name!r} (known: {known})")
        if found.uses_current_item and not current_item:
            raise InvalidRequestError(
                "filter_name",
                f"filter {name!r} compares with CurrentItem, which only GetSimilarItems has",
            )
        if not values:
            _check_required(found, {})
            return FilterCall(found)
        if len(values) > MAX_FILTER_VALUES:
            raise InvalidRequestError(
                "filter_values", f"holds {len(values)} keys, at most {MAX_FILTER_VALUES}"
            )
        parsed: dict[str, tuple[str, ...]] = {}
        for key, raw in values.items():
            _check_key(key, found)
            if len(raw) > MAX_VALUE_LENGTH:
                raise InvalidRequestError(
                    f"filter_values.{key}", f"is longer than {MAX_VALUE_LENGTH} characters"
                )
            parsed[key] = parse_filter_value(key, raw)
        _check_required(found, parsed)
        return FilterCall(found, MappingProxyType(parsed), MappingProxyType(dict(values)))


def parse_filter_value(key: str, raw: str) -> tuple[str, ...]:
    """Personalize's value format: `"a","b"` (quoted, comma-separated) or one bare value.

    `\\"` inside quotes is a literal quote. An empty value gives no values (the parameter
    counts as not given).
    """
    text = raw.strip()
    if not text:
        return ()
    if not text.startswith('"'):
        return (text,)
    found, at = [], 0
    while at < len(raw):
        match = _QUOTED.match(raw, at)
        if match is None:
            raise InvalidRequestError(
                f"filter_values.{key}",
                f'at character {at + 1}: expected a "quoted" value, values separated by commas',
            )
        found.append(match.group(1).replace('\\"', '"').replace("\\\\", "\\"))
        at = match.end()
        if at == len(raw.rstrip()):
            break
    return tuple(found)


def _check_key(key: str, found: Filter) -> None:
    if not 1 <= len(key) <= MAX_VALUE_KEY_LENGTH or not _VALUE_KEY.fullmatch(key):
        raise InvalidRequestError(
            f"filter_values.{key[:MAX_VALUE_KEY_LENGTH]}",
            f"keys are 1 to {MAX_VALUE_KEY_LENGTH} characters of A-Z, a-z, 0-9 and _",
        )
    if key not in found.parameters:
        takes = ", ".join(f"${p}" for p in sorted(found.parameters)) or "no parameters"
        raise InvalidRequestError(
            f"filter_values.{key}", f"filter {found.name!r} has no ${key} (it takes {takes})"
        )


def _check_required(found: Filter, values: Mapping[str, tuple[str, ...]]) -> None:
    """Every parameter of an INCLUDE part needs a value (Personalize refuses the call)."""
    for part in found.parts:
        if part.action != "INCLUDE":
            continue
        for name in sorted(part.parameters):
            if not values.get(name):
                raise InvalidRequestError(
                    f"filter_values.{name}",
                    f"is required: filter {found.name!r} has ${name} in an INCLUDE part",
                )
