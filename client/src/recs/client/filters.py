"""Filter values in Amazon Personalize's format, for callers that hold plain strings.

A filter's `$PARAMETER` gets its values as one string: several values are a comma-separated
list of quoted strings, `"comedy","gaming"`. `filter_value` writes that string from plain
values; `parse_filter_entry` reads the `KEY=VALUE` a person types (the `recs` CLI's
`--filter-value`, the page's filter values field), where VALUE is either a plain
comma-separated list or already in Personalize's format.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def filter_value(*values: str) -> str:
    """`values` as one filter value in Personalize's format: each quoted, comma-separated.

    `filter_value("comedy", "gaming") == '"comedy","gaming"'`. A `"` or `\\` inside a value
    is escaped with a backslash, so any string reaches the filter as it was given.
    """
    return ",".join(f'"{_escape(value)}"' for value in values)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def typed_filter_value(text: str) -> str:
    """A value as a person types it, in Personalize's format.

    Text starting with `"` is taken to be in Personalize's format already and is passed as
    is (the server checks it). Anything else is a plain comma-separated list: each part
    stripped, empty parts dropped, and quoted by `filter_value` (`comedy, gaming` gives
    `"comedy","gaming"`). A value holding a comma needs the quoted form.
    """
    stripped = text.strip()
    if stripped.startswith('"'):
        return stripped
    return filter_value(*(part.strip() for part in stripped.split(",") if part.strip()))


def parse_filter_entry(text: str) -> tuple[str, str]:
    """`KEY=VALUE` as (KEY, VALUE in Personalize's format); see `typed_filter_value`.

    Raises ValueError, saying what is wrong, for text without `=`, an empty key or no value.
    """
    key, equals, value = text.partition("=")
    key = key.strip()
    if not equals:
        raise ValueError(f"{text.strip()!r} is not KEY=VALUE")
    if not key:
        raise ValueError(f"{text.strip()!r} has no KEY before '='")
    formatted = typed_filter_value(value)
    if not formatted:
        raise ValueError(f"{key}= has no value (give one or more, e.g. {key}=comedy,gaming)")
    return key, formatted


def collect_filter_entries(entries: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Parsed `KEY=VALUE` entries as the `filter_values` map; a key given twice is an error.

    One key is one `$PARAMETER`, so its values belong in one entry (`KEY=a,b`); silently
    keeping either of two entries would drop values the caller meant to send.
    """
    values: dict[str, str] = {}
    for key, value in entries:
        if key in values:
            raise ValueError(f"{key} is given twice; give all its values at once: {key}=a,b")
        values[key] = value
    return values


def filter_fields(filter_name: str, filter_values: Mapping[str, str] | None) -> dict[str, Any]:
    """The `filter_name` and `filter_values` fields of a recommendation request message."""
    return {"filter_name": filter_name, "filter_values": dict(filter_values or {})}
