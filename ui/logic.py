"""The page's decisions, kept free of Streamlit so they can be tested on their own.

Query parameters in and out (so a link such as `?user=u42` can be shared), the filter
typed in the sidebar as the client's arguments, the overlap of two answers, the Markdown
tables the page shows (with why a video is there, where the service says), the ids pasted
for re-ranking, the model facts grouped for reading, and a failed call explained in words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypedDict
from urllib.parse import quote, urlsplit

import grpc

from recs.client import Item, RecsError
from recs.client.filters import collect_filter_entries, parse_filter_entry

if TYPE_CHECKING:
    from recs.ui.history import HistoryEntry

# The page's views, in the order the sidebar lists them, with their labels.
VIEWS: dict[str, str] = {
    "user": "For a user",
    "similar": "Similar videos",
    "popular": "Popular now",
    "trending": "Trending now",
    "rerank": "Re-rank",
    "compare": "Compare two services",
    "about": "About the model",
}
DEFAULT_VIEW = "user"
DEFAULT_NUM_RESULTS = 10
MAX_NUM_RESULTS = 500  # the service's limit (Personalize's)
# The views whose calls take a filter (the five recommendation calls).
FILTERED_VIEWS = frozenset({"user", "similar", "popular", "trending", "rerank", "compare"})
FILTER_VALUES_HINT = "Write KEY=v1,v2 for each $KEY of the filter, separated by ';'."


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What the URL asks the page to show."""

    view: str = DEFAULT_VIEW
    user_id: str = ""
    item_id: str = ""
    num_results: int = DEFAULT_NUM_RESULTS
    filter_name: str = ""  # a filter of the service's [filters] config, by name
    filter_values: str = ""  # its values as typed: `KEY=v1,v2`, `;` or new lines between


def parse_query_params(
    params: Mapping[str, str | Sequence[str]],
) -> tuple[PageRequest, list[str]]:
    """Read `view`, `user`, `item`, `n`, `filter` and `filter_values` from the URL's query
    parameters.

    Returns the request and one sentence per parameter that could not be used (naming
    it); such a parameter takes its default. Without `view`, a link with only `?item=`
    opens the similar videos, anything else the user's page. Repeated parameters use
    their last value, as Streamlit does.
    """
    values = {key: _last(value).strip() for key, value in params.items()}
    problems: list[str] = []
    user_id = values.get("user", "")
    item_id = values.get("item", "")

    view = values.get("view", "")
    if view and view not in VIEWS:
        problems.append(
            f"URL parameter view={view!r} is not a view of this page "
            f"(one of: {', '.join(VIEWS)}); showing the default."
        )
        view = ""
    if not view:
        view = "similar" if item_id and not user_id else DEFAULT_VIEW

    num_results = DEFAULT_NUM_RESULTS
    raw_n = values.get("n", "")
    if raw_n:
        try:
            num_results = int(raw_n)
        except ValueError:
            num_results = 0
        if not 1 <= num_results <= MAX_NUM_RESULTS:
            problems.append(
                f"URL parameter n={raw_n!r} must be a whole number from 1 to "
                f"{MAX_NUM_RESULTS}; showing {DEFAULT_NUM_RESULTS}."
            )
            num_results = DEFAULT_NUM_RESULTS

    filter_values = values.get("filter_values", "")
    try:
        parse_filter_values(filter_values)
    except FilterInputError as exc:
        problems.append(
            f"URL parameter filter_values={filter_values!r} cannot be used: {exc}; "
            "showing no filter values."
        )
        filter_values = ""
    request = PageRequest(
        view, user_id, item_id, num_results, values.get("filter", ""), filter_values
    )
    return request, problems


def to_query_params(request: PageRequest) -> dict[str, str]:
    """The query parameters that reopen `request` (defaults and empty fields left out)."""
    params = {"view": request.view}
    if request.user_id:
        params["user"] = request.user_id
    if request.item_id:
        params["item"] = request.item_id
    if request.num_results != DEFAULT_NUM_RESULTS:
        params["n"] = str(request.num_results)
    if request.filter_name:
        params["filter"] = request.filter_name
    if request.filter_values:
        params["filter_values"] = request.filter_values
    return params


# Filters ------------------------------------------------------------------------------------


class FilterInputError(ValueError):
    """The filter typed in the sidebar (or given in the URL) cannot be sent; says why."""


class FilterArguments(TypedDict):
    """The filter keyword arguments of the client's recommend, similar, popular, trending and
    rerank."""

    filter_name: str
    filter_values: dict[str, str]


def filter_arguments(request: PageRequest) -> FilterArguments:
    """The client's filter arguments for `request`; FilterInputError when they cannot be
    sent: values without a filter name, or values that do not parse."""
    try:
        values = parse_filter_values(request.filter_values)
    except FilterInputError as exc:
        raise FilterInputError(f"Filter values: {exc}. {FILTER_VALUES_HINT}") from None
    if values and not request.filter_name:
        raise FilterInputError(
            "Filter values need a filter: type its name in the sidebar's Filter field."
        )
    return FilterArguments(filter_name=request.filter_name, filter_values=values)


def parse_filter_values(text: str) -> dict[str, str]:
    """`KEY=v1,v2` entries, one per line or separated by `;`, as the `filter_values` map.

    Each value is a plain comma-separated list or already in Personalize's format
    (`"v1","v2"`, where a `;` inside quotes stays part of the value); see
    `recs.client.filters.parse_filter_entry`. Raises FilterInputError naming the bad entry.
    """
    try:
        return collect_filter_entries(parse_filter_entry(entry) for entry in _entries(text))
    except ValueError as exc:
        raise FilterInputError(str(exc)) from None


def _entries(text: str) -> list[str]:
    """`text` split at new lines, and at `;` outside double quotes; blank entries dropped."""
    entries: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if char == "\n" or (char == ";" and not quoted):
            entries.append("".join(current))
            current, quoted, escaped = [], False, False
            continue
        current.append(char)
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
    entries.append("".join(current))
    return [entry for entry in entries if entry.strip()]


def _last(value: str | Sequence[str]) -> str:
    if isinstance(value, str):
        return value
    return value[-1] if value else ""


@dataclass(frozen=True, slots=True)
class Overlap:
    """Which videos two answers have in common."""

    shared: frozenset[str]
    left_count: int
    right_count: int

    @property
    def jaccard(self) -> float:
        """Shared videos over all distinct videos of both answers (0 when both are empty)."""
        union = self.left_count + self.right_count - len(self.shared)
        return len(self.shared) / union if union else 0.0

    def summary(self) -> str:
        """One line for people: how many are shared and the Jaccard index."""
        return (
            f"{len(self.shared)} of {max(self.left_count, self.right_count)} videos in both "
            f"answers (Jaccard {self.jaccard:.2f})"
        )


def overlap(left: Iterable[str], right: Iterable[str]) -> Overlap:
    """The overlap of two answers given as item ids (duplicates count once)."""
    left_ids, right_ids = set(left), set(right)
    return Overlap(frozenset(left_ids & right_ids), len(left_ids), len(right_ids))


def parse_item_ids(text: str) -> list[str]:
    """Ids pasted for re-ranking, separated by commas, spaces or new lines, in order.

    Repeats are kept: the service answers with the distinct ids, as Personalize does.
    """
    return [part for part in re.split(r"[\s,]+", text) if part]


# Markdown tables -------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|:~$])")
BOTH_MARK = "●"


def escape_markdown(text: str) -> str:
    """`text` shown literally by Streamlit's Markdown (no links, emphasis, emoji or math)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text.replace("\n", " "))


def is_web_url(url: str) -> bool:
    """True for an http(s) address with a host: only those are linked or played."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def video_link(title: str, url: str) -> str:
    """A Markdown cell with the title, linked to the video when its URL is a web address."""
    label = escape_markdown(title) if title else "*(no title)*"
    if not is_web_url(url):
        return label
    return f"[{label}]({quote(url, safe=':/?#@!$&*+,;=%~')})"


def results_markdown(items: Sequence[Item], shared: frozenset[str] | None = None) -> str:
    """Ranked videos as a Markdown table: rank, title (linked), id, score, and a Reason
    column when some video has one (see `reason_cell`).

    With `shared`, a last column marks the videos that the other answer has too.
    """
    if not items:
        return "*The service answered with no videos.*"
    explained = has_reasons(items)
    header = "| # | Title | Id | Score |"
    rule = "|--:|:--|:--|--:|"
    if explained:
        header += " Reason |"
        rule += ":--|"
    if shared is not None:
        header += " In both |"
        rule += ":-:|"
    lines = [header, rule]
    for rank, item in enumerate(items, start=1):
        row = (
            f"| {rank} | {video_link(item.title, item.url)} | {escape_markdown(item.item_id)} "
            f"| {format_score(item.score)} |"
        )
        if explained:
            row += f" {reason_cell(item.reason)} |"
        if shared is not None:
            row += f" {BOTH_MARK if item.item_id in shared else ''} |"
        lines.append(row)
    return "\n".join(lines)


def reranked_markdown(items: Sequence[Item], asked: Sequence[str]) -> str:
    """A re-ranked answer as a Markdown table, with each video's place in the input (and a
    Reason column when some video has one)."""
    if not items:
        return "*The service answered with no videos.*"
    explained = has_reasons(items)
    places = {item_id: place for place, item_id in enumerate(dict.fromkeys(asked), start=1)}
    header = "| # | Was | Title | Id | Score |" + (" Reason |" if explained else "")
    rule = "|--:|--:|:--|:--|--:|" + (":--|" if explained else "")
    lines = [header, rule]
    for rank, item in enumerate(items, start=1):
        was = places.get(item.item_id)
        row = (
            f"| {rank} | {was if was is not None else '–'} | {video_link(item.title, item.url)} "
            f"| {escape_markdown(item.item_id)} | {format_score(item.score)} |"
        )
        lines.append(row + (f" {reason_cell(item.reason)} |" if explained else ""))
    return "\n".join(lines)


# Why a video is in an answer: Personalize's `reason` values, marked where the page knows
# them (the local engine's exploration picks are "Exploration"); others show as sent.
EXPLORATION = "Exploration"
REASON_MARKS: dict[str, str] = {EXPLORATION: "🆕 Exploration"}
EXPLORATION_NOTE = (
    "🆕 Exploration is a new video, with little or no interaction data yet, mixed in so it "
    "gets seen"
)


def has_reasons(items: Iterable[Item]) -> bool:
    """True when some video of the answer carries a reason (the tables then show them)."""
    return any(item.reason for item in items)


def reasons_note(items: Iterable[Item]) -> str:
    """What the Reason column means, for under the table; '' when the answer has none."""
    reasons = {value for item in items for value in item.reason}
    if not reasons:
        return ""
    note = "*Reason* says why the service put a video there (Personalize's `reason`)"
    return f"{note}: {EXPLORATION_NOTE}." if EXPLORATION in reasons else f"{note}."


def reason_cell(reason: Sequence[str]) -> str:
    """A video's reasons for a Markdown cell: known ones marked, the rest literally."""
    return ", ".join(REASON_MARKS.get(value, escape_markdown(value)) for value in reason)


def history_markdown(entries: Sequence[HistoryEntry]) -> str:
    """A user's interactions as a Markdown table: when, title, id, event (watched/clicked)."""
    lines = ["| When (UTC) | Title | Id | Event |", "|:--|:--|:--|:--|"]
    lines += [
        f"| {format_timestamp(entry.timestamp)} | "
        f"{escape_markdown(entry.title) if entry.title else '*(no title)*'} | "
        f"{escape_markdown(entry.item_id)} | {escape_markdown(entry.event_type)} |"
        for entry in entries
    ]
    return "\n".join(lines)


def format_score(score: float) -> str:
    """Scores are probabilities or shares: four significant digits are plenty."""
    return f"{score:.4g}"


def format_timestamp(seconds: int) -> str:
    """A Unix time in seconds as UTC date and minute."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M")


# Model facts --------------------------------------------------------------------------

# Prefixes of model-info keys (`counts.users`, `params.factors`) and the section they
# belong to; a key without a prefix describes the model itself.
DETAIL_SECTIONS: dict[str, str] = {
    "": "Model",
    "counts": "Data",
    "params": "Parameters",
}


def group_details(details: Mapping[str, str]) -> dict[str, list[tuple[str, str]]]:
    """Model-info details in sections (Model, Data, Parameters, ...), keys sorted."""
    sections: dict[str, list[tuple[str, str]]] = {}
    for key in sorted(details, key=lambda k: (k.count(".") > 0, k)):
        prefix, _, name = key.rpartition(".")
        section = DETAIL_SECTIONS.get(prefix, prefix.replace("_", " ").capitalize())
        sections.setdefault(section, []).append((name, details[key]))
    return sections


# Model-info keys worth a headline, with their labels (shown when the backend reports them).
HEADLINE_DETAILS: dict[str, str] = {
    "trained_at": "Trained at",
    "counts.interactions": "Interactions",
    "counts.users": "Users",
    "counts.items": "Videos",
}


def headline_details(details: Mapping[str, str]) -> list[tuple[str, str]]:
    """The few model facts people ask first (label, value), in a fixed order, made readable:
    counts with thousands separators, times as UTC date and minute."""
    return [
        (label, _readable(details[key]))
        for key, label in HEADLINE_DETAILS.items()
        if key in details
    ]


def _readable(value: str) -> str:
    if value.isdigit():
        return f"{int(value):,}"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC" if moment.tzinfo else "%Y-%m-%d %H:%M")


def facts_markdown(rows: Sequence[tuple[str, str]]) -> str:
    """Key/value rows as a two-column Markdown table."""
    lines = ["| Name | Value |", "|:--|:--|"]
    lines += [f"| {escape_markdown(key)} | {escape_markdown(value)} |" for key, value in rows]
    return "\n".join(lines)


# Errors in words --------------------------------------------------------------------------

_WHAT_HAPPENED: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.UNAVAILABLE: "cannot be reached or is not ready to answer",
    grpc.StatusCode.DEADLINE_EXCEEDED: "did not answer in time",
    grpc.StatusCode.INVALID_ARGUMENT: "rejected what the page asked",
    grpc.StatusCode.NOT_FOUND: "does not know what the page asked for",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "is overloaded",
    grpc.StatusCode.FAILED_PRECONDITION: "is misconfigured",
    grpc.StatusCode.UNIMPLEMENTED: "does not offer this call (an older or different server?)",
    grpc.StatusCode.INTERNAL: "failed while answering",
    grpc.StatusCode.UNKNOWN: "failed while answering",
}

_WHAT_TO_DO: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.UNAVAILABLE: "Check that it is running (`make serve`); the page "
    "recovers by itself once it answers again.",
    grpc.StatusCode.DEADLINE_EXCEEDED: "Try again, or ask for fewer videos.",
    grpc.StatusCode.INVALID_ARGUMENT: "Change the input named in the message.",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "Try again in a moment.",
}


def describe_error(error: RecsError, target: str) -> str:
    """A failed call explained for people: what happened, the status code and message."""
    code = error.code
    what = _WHAT_HAPPENED.get(code, "answered with an error")
    message = error.message.strip() or "no message"
    sentence = f"The service at {target} {what}. Status {code.name}: {message.rstrip('.')}."
    advice = _WHAT_TO_DO.get(code)
    return f"{sentence} {advice}" if advice else sentence
