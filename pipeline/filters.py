"""Amazon Personalize's filter expressions: parsed and checked once, with errors that say where.

The grammar, as Personalize documents it (../shared/reference/personalize.md section 3;
https://docs.aws.amazon.com/personalize/latest/dg/filter-expressions.html):

    filter     := part ( "|" part )*
    part       := ( "INCLUDE" | "EXCLUDE" ) "ItemID" "WHERE" condition ( ("AND" | "OR") condition )*
    condition  := Dataset "." FIELD ( "IN" | "NOT" "IN" ) list
                | Dataset "." FIELD ( "=" | "<" | "<=" | ">" | ">=" ) operand
    list       := "(" operand ( "," operand )* ")" | CurrentItem "." FIELD
    operand    := "string" | number | $PARAMETER | "*" | CurrentItem "." FIELD

Checked here, as Personalize checks them at CreateFilter: the expression is 1 to 2,500
characters; datasets are `Items` and `Interactions` (this service has no Users or Actions
dataset); `Interactions` conditions are on `EVENT_TYPE` with IN / NOT IN only, and `*` (every
event type) only there; the conditions chained in one part use one dataset (mixing Items and
Interactions takes `|`); `CurrentItem.<field>` (similar items only) compares with Items; a
filter uses at most 5 distinct fields. `AND` binds tighter than `OR`, as in SQL: Personalize's
documentation does not say, and every example it gives reads the same either way.

The parsed `Filter` knows its parameters (`$NAME`, case-sensitive) so a request that lacks one
can be refused by name. Evaluating a filter against a catalog and a user's history belongs to
the engines; this module is the grammar both backends and the contract tests share.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

MAX_EXPRESSION_LENGTH = 2500
MAX_NAME_LENGTH = 63
MAX_FIELDS = 5
DATASETS = ("Items", "Interactions")
EVENT_TYPE = "EVENT_TYPE"
COMPARISONS = ("=", "<", "<=", ">", ">=")

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<parameter>\$[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op><=|>=|=|<|>)
    | (?P<punct>[(),|*.])
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)


class FilterError(ValueError):
    """A filter expression Personalize would refuse; the message names the filter and where."""


@dataclass(frozen=True, slots=True)
class Parameter:
    """A `$NAME` placeholder, given a value per request (Personalize's filterValues)."""

    name: str


@dataclass(frozen=True, slots=True)
class CurrentItem:
    """`CurrentItem.<field>`: the field of the item whose similar items are asked for."""

    field: str


@dataclass(frozen=True, slots=True)
class AllEventTypes:
    """`*` in `Interactions.EVENT_TYPE IN ("*")`: every event type."""


Operand = str | float | Parameter | CurrentItem | AllEventTypes


@dataclass(frozen=True, slots=True)
class Condition:
    """`<dataset>.<field> <operator> <operands>`."""

    dataset: str
    field: str
    operator: str  # IN, NOT IN, =, <, <=, >, >=
    operands: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class Part:
    """`INCLUDE|EXCLUDE ItemID WHERE ...`: OR of ANDs of conditions (AND binds tighter)."""

    action: str  # INCLUDE or EXCLUDE
    any_of: tuple[tuple[Condition, ...], ...]
    # Derived once: every request naming the filter asks (the request path).
    conditions: tuple[Condition, ...] = field(init=False, repr=False, compare=False)
    parameters: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        conditions = tuple(c for group in self.any_of for c in group)
        object.__setattr__(self, "conditions", conditions)
        object.__setattr__(
            self,
            "parameters",
            frozenset(
                operand.name
                for condition in conditions
                for operand in condition.operands
                if isinstance(operand, Parameter)
            ),
        )

    @property
    def dataset(self) -> str:
        return self.any_of[0][0].dataset


@dataclass(frozen=True, slots=True)
class Filter:
    """A parsed filter: its `|`-joined parts and the parameters it takes."""

    name: str
    expression: str
    parts: tuple[Part, ...]
    # Derived once: every request naming the filter asks (the request path).
    parameters: frozenset[str] = field(init=False, repr=False, compare=False)
    uses_current_item: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "parameters", frozenset().union(*(part.parameters for part in self.parts))
        )
        object.__setattr__(
            self,
            "uses_current_item",
            any(
                isinstance(operand, CurrentItem)
                for part in self.parts
                for condition in part.conditions
                for operand in condition.operands
            ),
        )


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    position: int  # 1-based character position in the expression


def parse_filter(name: str, expression: str) -> Filter:
    """Parse and check `expression`; FilterError says which filter, where and what was expected."""
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise FilterError(f"filter name {name!r}: must be 1 to {MAX_NAME_LENGTH} characters")
    if not len(expression.strip()) >= 1 or len(expression) > MAX_EXPRESSION_LENGTH:
        raise FilterError(
            f"filter {name!r}: the expression must be 1 to {MAX_EXPRESSION_LENGTH} characters"
        )
    parser = _Parser(name, expression, _tokens(name, expression))
    parts = [parser.part()]
    while parser.accept("|"):
        parts.append(parser.part())
    parser.end()
    found = Filter(name, expression, tuple(parts))
    fields = {(c.dataset, c.field) for part in found.parts for c in part.conditions}
    if len(fields) > MAX_FIELDS:
        raise FilterError(f"filter {name!r}: uses {len(fields)} fields, at most {MAX_FIELDS}")
    return found


def _tokens(name: str, expression: str) -> list[_Token]:
    tokens, at = [], 0
    while at < len(expression):
        match = _TOKEN.match(expression, at)
        if match is None:
            raise FilterError(
                f"filter {name!r} at character {at + 1}: unexpected {expression[at]!r}"
            )
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), at + 1))
        at = match.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens, one method per rule of the grammar above."""

    def __init__(self, name: str, expression: str, tokens: list[_Token]) -> None:
        self.name = name
        self.expression = expression
        self.tokens = tokens
        self.at = 0

    # --- token helpers --------------------------------------------------------------------

    def peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.text.upper() == text.upper() and token.kind != "string":
            self.at += 1
            return True
        return False

    def expect(self, text: str, what: str | None = None) -> _Token:
        token = self.peek()
        if not self.accept(text):
            self.fail(what or text, token)
        return self.tokens[self.at - 1]

    def fail(self, expected: str, token: _Token | None = None) -> None:
        token = token if token is not None else self.peek()
        if token is None:
            where, found = f"character {len(self.expression) + 1}", "the end"
        else:
            where, found = f"character {token.position}", repr(token.text)
        raise FilterError(f"filter {self.name!r} at {where}: expected {expected}, found {found}")

    def end(self) -> None:
        if self.peek() is not None:
            self.fail("'|' or the end of the expression")

    # --- rules ----------------------------------------------------------------------------

    def part(self) -> Part:
        token = self.peek()
        if self.accept("INCLUDE"):
            action = "INCLUDE"
        elif self.accept("EXCLUDE"):
            action = "EXCLUDE"
        else:
            self.fail("INCLUDE or EXCLUDE", token)
        target = self.peek()
        if not self.accept("ItemID"):
            self.fail("ItemID (this service recommends items)", target)
        self.expect("WHERE")
        groups = [[self.condition()]]
        while True:
            if self.accept("AND"):
                groups[-1].append(self.condition())
            elif self.accept("OR"):
                groups.append([self.condition()])
            else:
                break
        self.check_not_current_user()
        part = Part(action, tuple(tuple(group) for group in groups))
        datasets = {condition.dataset for condition in part.conditions}
        if len(datasets) > 1:
            raise FilterError(
                f"filter {self.name!r}: a part chains conditions on "
                f"{' and '.join(sorted(datasets))}; conditions on different datasets go in "
                "separate parts joined by '|'"
            )
        return part

    def check_not_current_user(self) -> None:
        token = self.peek()
        if token is not None and token.text.upper() == "IF":
            raise FilterError(
                f"filter {self.name!r} at character {token.position}: IF CurrentUser... needs "
                "a Users dataset, which this service does not have"
            )

    def condition(self) -> Condition:
        token = self.peek()
        dataset, field = self.field(token)
        if dataset not in DATASETS:
            raise FilterError(
                f"filter {self.name!r} at character {token.position if token else 0}: "
                f"dataset {dataset!r} is not one of {', '.join(DATASETS)}"
            )
        if dataset == "Interactions" and field != EVENT_TYPE:
            raise FilterError(
                f"filter {self.name!r}: Interactions conditions can only be on EVENT_TYPE, "
                f"not {field}"
            )
        operator_token = self.peek()
        if self.accept("NOT"):
            self.expect("IN", "IN after NOT")
            operator = "NOT IN"
        elif self.accept("IN"):
            operator = "IN"
        elif operator_token is not None and operator_token.kind == "op":
            self.at += 1
            operator = operator_token.text
        else:
            self.fail("IN, NOT IN, =, <, <=, > or >=", operator_token)
        if dataset == "Interactions" and operator not in ("IN", "NOT IN"):
            raise FilterError(
                f"filter {self.name!r}: Interactions.EVENT_TYPE takes IN or NOT IN, not {operator}"
            )
        operands = self.operands(operator, dataset)
        return Condition(dataset, field, operator, operands)

    def field(self, token: _Token | None) -> tuple[str, str]:
        if token is None or token.kind != "word":
            self.fail("a field such as Items.CATEGORIES", token)
        self.at += 1
        self.expect(".", f"'.' after {token.text}")
        field_token = self.peek()
        if field_token is None or field_token.kind != "word":
            self.fail(f"a field name after {token.text}.", field_token)
        self.at += 1
        return token.text, field_token.text

    def operands(self, operator: str, dataset: str) -> tuple[Operand, ...]:
        if operator in COMPARISONS:
            operand = self.operand(dataset)
            if isinstance(operand, str | AllEventTypes):
                self.fail(f"a number, a $PARAMETER or CurrentItem.<field> after {operator}")
            return (operand,)
        if self.peek() is not None and self.peek().text == "CurrentItem":
            return (self.operand(dataset),)
        self.expect("(", f"'(' after {operator}")
        values = [self.operand(dataset)]
        while self.accept(","):
            values.append(self.operand(dataset))
        self.expect(")", "',' or ')'")
        return tuple(values)

    def operand(self, dataset: str) -> Operand:
        token = self.peek()
        if token is None:
            self.fail("a value")
        self.at += 1
        if token.kind == "string":
            # Backslash escapes (\" \\) decoded, any other character kept as written.
            text = codecs.decode(
                token.text[1:-1].encode("latin-1", "backslashreplace"), "unicode_escape"
            )
            if text == "*":
                return self._all_event_types(dataset, token)
            return text
        if token.kind == "number":
            return float(token.text)
        if token.kind == "parameter":
            return Parameter(token.text[1:])
        if token.text == "*":
            return self._all_event_types(dataset, token)
        if token.text == "CurrentItem":
            if dataset != "Items":
                raise FilterError(
                    f"filter {self.name!r} at character {token.position}: CurrentItem compares "
                    "with Items fields only"
                )
            self.expect(".", "'.' after CurrentItem")
            field_token = self.peek()
            if field_token is None or field_token.kind != "word":
                self.fail("a field name after CurrentItem.", field_token)
            self.at += 1
            return CurrentItem(field_token.text)
        self.at -= 1
        self.fail('a "string", a number, a $PARAMETER or CurrentItem.<field>', token)
        raise AssertionError  # unreachable: fail raises

    def _all_event_types(self, dataset: str, token: _Token) -> AllEventTypes:
        if dataset != "Interactions":
            raise FilterError(
                f"filter {self.name!r} at character {token.position}: '*' (every event type) "
                "is only for Interactions.EVENT_TYPE"
            )
        return AllEventTypes()
