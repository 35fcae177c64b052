"""The Streamlit page: look at what the recommendation service answers.

Run by `recs ui` (see ui/cli.py), which passes the settings as environment variables.
The page talks to the service only through the client library. Each page run opens a
fresh channel (cheap on a local network): when the service was down, the next run
reconnects at once instead of waiting out grpc's reconnect back-off, so the page
recovers as soon as the service is back. Failed calls are shown in words, never as a
stack trace.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import pandas as pd
import streamlit as st

from recs.client import Item, ModelInfo, RecsClient, RecsError, Result
from recs.pipeline.dataset import DatasetError
from recs.ui import logic
from recs.ui.evaluation import EvaluationFileError, chart_bars, load_figures, short_metric_name
from recs.ui.history import History
from recs.ui.settings import UiSettings

T = TypeVar("T")

# One retry of UNAVAILABLE is enough for a page: a person is waiting and can retry.
MAX_ATTEMPTS = 2
HISTORY_LENGTH = 10


def main() -> None:
    """Draw the page for the current URL and widget state."""
    st.set_page_config(page_title="Video recommendations", page_icon="🎬", layout="wide")
    settings = UiSettings.from_env(os.environ)
    request, problems = logic.parse_query_params(st.query_params.to_dict())
    history = _history(settings)
    _sidebar(settings, request, history)

    st.title("Video recommendations")
    st.caption(
        f"Asking the service at `{settings.target}` through the `recs` client library. "
        "Share a view by copying the address: it holds the user, video, view and filter."
    )
    for problem in problems:
        st.warning(problem)

    current = _current_request()
    st.query_params.from_dict(logic.to_query_params(current))
    if current.view in logic.FILTERED_VIEWS and not _filter_can_be_sent(current):
        return
    VIEW_PAGES[current.view](settings, current, history)


# Settings and shared parts --------------------------------------------------------------


def _history(settings: UiSettings) -> History | None:
    """The dataset's history, or None (with a note in the sidebar) when there is none."""
    if settings.data_dir is None:
        return None
    try:
        stamp = (settings.data_dir / "interactions.csv").stat().st_mtime_ns
        return _load_history(str(settings.data_dir), stamp)
    except (DatasetError, OSError) as exc:
        st.sidebar.warning(f"No user history: {exc}")
        return None


@st.cache_resource(show_spinner="Reading the dataset…", max_entries=2)
def _load_history(data_dir: str, modified_ns: int) -> History:
    """Read once per dataset version (`modified_ns` makes a rewritten file load again)."""
    del modified_ns  # part of the cache key only
    return History.load(data_dir)


def _sidebar(settings: UiSettings, request: logic.PageRequest, history: History | None) -> None:
    """The view selector and the inputs shared by the views, first filled from the URL."""
    state = st.session_state
    state.setdefault("view", request.view)
    state.setdefault("user", request.user_id)
    state.setdefault("item", request.item_id)
    state.setdefault("n", request.num_results)
    state.setdefault("filter", request.filter_name)
    state.setdefault("filter_values", request.filter_values)
    state.setdefault("compare_target", settings.compare_target)

    with st.sidebar:
        st.radio("View", list(logic.VIEWS), format_func=logic.VIEWS.get, key="view")
        st.text_input("User id", key="user", placeholder="e.g. u42")
        if history is not None:
            st.selectbox(
                "…or pick an active user",
                history.active_users(),
                index=None,
                key="user_pick",
                placeholder="most interactions first",
                on_change=_copy_pick,
                args=("user_pick", "user"),
            )
        st.text_input("Video id", key="item", placeholder="e.g. v7")
        if history is not None:
            st.selectbox(
                "…or pick a video",
                history.titled_items(),
                index=None,
                key="item_pick",
                format_func=lambda item_id: f"{history.title(item_id)} ({item_id})",
                placeholder="search by title",
                on_change=_copy_pick,
                args=("item_pick", "item"),
            )
        st.number_input("How many videos", 1, logic.MAX_NUM_RESULTS, step=1, key="n")
        st.text_input(
            "Filter",
            key="filter",
            placeholder="optional, e.g. by_category",
            help="A filter of the service's `[filters]` config, by name (Personalize's "
            "filterArn); empty: the service's default filter. *About the model* lists the "
            "service's filters.",
        )
        st.text_input(
            "Filter values",
            key="filter_values",
            placeholder="e.g. CATEGORIES=comedy,gaming",
            help="The filter's $PARAMETERs (Personalize's filterValues): `KEY=v1,v2` for "
            'each, separated by `;`. A value may also be given quoted, `"v1","v2"`.',
        )
        st.text_input(
            "Compare with (host:port)",
            key="compare_target",
            help="A second service for the Compare view, e.g. Personalize beside local.",
        )


def _copy_pick(pick_key: str, input_key: str) -> None:
    """Put the picked id into its text input (a widget callback, before the page runs)."""
    picked = st.session_state.get(pick_key)
    if picked:
        st.session_state[input_key] = picked


def _current_request() -> logic.PageRequest:
    state = st.session_state
    return logic.PageRequest(
        view=state["view"],
        user_id=state["user"].strip(),
        item_id=state["item"].strip(),
        num_results=int(state["n"]),
        filter_name=state["filter"].strip(),
        filter_values=state["filter_values"].strip(),
    )


def _filter_can_be_sent(request: logic.PageRequest) -> bool:
    """False, with a warning like those of the URL's problems, when the sidebar's filter
    cannot be sent: the view then asks nothing rather than show an unfiltered answer."""
    try:
        logic.filter_arguments(request)
    except logic.FilterInputError as exc:
        st.warning(str(exc))
        return False
    return True


def _ask(
    settings: UiSettings, target: str, call: Callable[[RecsClient], T], where: str
) -> T | None:
    """Make one call; on failure say what happened in words and offer a retry."""
    try:
        with RecsClient(
            target,
            timeout=settings.timeout,
            max_attempts=MAX_ATTEMPTS,
            tls_ca=settings.tls_ca,
            token=settings.token or None,
        ) as client:
            return call(client)
    except RecsError as error:
        st.error(logic.describe_error(error, target), icon="⚠️")
        st.button("Try again", key=f"retry-{where}")
        return None


def _backend_name(settings: UiSettings, target: str) -> str:
    """Which backend answers at `target`, or '' (a failure shows up in the main call)."""
    try:
        with RecsClient(target, timeout=settings.timeout, max_attempts=1) as client:
            return client.model_info().backend
    except RecsError:
        return ""


def _results(result: Result | None, key: str, shared: frozenset[str] | None = None) -> None:
    """A ranked answer as a table inside a container keyed `key` (tests find it by that)."""
    if result is None:
        return
    with st.container(key=key):
        st.markdown(logic.results_markdown(result.items, shared))
    _reasons_note(result.items)
    if result.recommendation_id:
        st.caption(f"recommendation id `{result.recommendation_id}`")


def _reasons_note(items: Sequence[Item]) -> None:
    """Under a table with a Reason column, what the reasons mean."""
    note = logic.reasons_note(items)
    if note:
        st.caption(note)


def _player(items: Sequence[Item], key: str) -> None:
    """Play one of the answered videos (only those with a web address)."""
    playable = {item.item_id: item for item in items if logic.is_web_url(item.url)}
    if not playable:
        return
    choice = st.selectbox(
        "▶ Play one of these",
        list(playable),
        index=None,
        key=key,
        format_func=lambda item_id: playable[item_id].title or item_id,
        placeholder="choose a video",
    )
    if choice is not None:
        st.video(playable[choice].url)


def _need(value: str, what: str) -> bool:
    if not value:
        st.info(f"Type a {what} id in the sidebar, pick one, or open a link with `?{what}=ID`.")
    return bool(value)


# Views --------------------------------------------------------------------------------


def _user_page(settings: UiSettings, request: logic.PageRequest, history: History | None) -> None:
    st.header(f"For user {request.user_id}" if request.user_id else "For a user")
    if not _need(request.user_id, "user"):
        return
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("Recent history")
        _history_table(history, request.user_id)
    with right:
        st.subheader("Recommended next")
        filters = logic.filter_arguments(request)
        result = _ask(
            settings,
            settings.target,
            lambda client: client.recommend(request.user_id, request.num_results, **filters),
            "user",
        )
        _results(result, "recommendations")
        if result is not None:
            _player(result.items, "play-user")


def _history_table(history: History | None, user_id: str) -> None:
    if history is None:
        st.info(
            "The service has no history call. Start the page with `--data DIR` (a prepared "
            "dataset) to see the user's latest interactions here."
        )
        return
    entries, total = history.recent(user_id, HISTORY_LENGTH)
    st.caption(
        f"From `{history.source}`, the data the model learns from (the service has no "
        f"history call): latest {len(entries)} of {total} interactions."
    )
    if not entries:
        st.info(
            "No interactions for this user in the dataset: the service treats unknown "
            "users as cold and answers with popular videos."
        )
        return
    with st.container(key="history"):
        st.markdown(logic.history_markdown(entries))


def _similar_page(
    settings: UiSettings, request: logic.PageRequest, history: History | None
) -> None:
    title = history.title(request.item_id) if history is not None and request.item_id else ""
    if title:
        st.header(f"Videos like “{title}”")
    else:
        st.header(f"Videos like {request.item_id}" if request.item_id else "Similar videos")
    if not _need(request.item_id, "item"):
        return
    filters = logic.filter_arguments(request)
    result = _ask(
        settings,
        settings.target,
        lambda client: client.similar(request.item_id, request.num_results, **filters),
        "similar",
    )
    _results(result, "similar")
    if result is not None:
        _player(result.items, "play-similar")


def _popular_page(settings: UiSettings, request: logic.PageRequest, _: History | None) -> None:
    st.header("Popular now")
    filters = logic.filter_arguments(request)
    result = _ask(
        settings,
        settings.target,
        lambda client: client.popular(request.num_results, **filters),
        "popular",
    )
    _results(result, "popular")
    if result is not None:
        _player(result.items, "play-popular")


def _trending_page(settings: UiSettings, request: logic.PageRequest, _: History | None) -> None:
    st.header("Trending now")
    st.caption(
        "The videos whose interactions rose most in the service's latest trend interval "
        "against the one before (Personalize's Trending-Now)."
    )
    filters = logic.filter_arguments(request)
    result = _ask(
        settings,
        settings.target,
        lambda client: client.trending(request.num_results, **filters),
        "trending",
    )
    _results(result, "trending")
    if result is not None:
        _player(result.items, "play-trending")


def _rerank_page(settings: UiSettings, request: logic.PageRequest, _: History | None) -> None:
    st.header(f"Re-rank for user {request.user_id}" if request.user_id else "Re-rank")
    if not _need(request.user_id, "user"):
        return
    text = st.text_area(
        "Video ids to order (commas, spaces or new lines)",
        key="rerank_ids",
        placeholder="v1, v2, v3",
    )
    asked = logic.parse_item_ids(text)
    if not asked:
        st.info("Paste the ids of the videos to order, then press Ctrl+Enter.")
        return
    filters = logic.filter_arguments(request)
    result = _ask(
        settings,
        settings.target,
        lambda client: client.rerank(request.user_id, asked, **filters),
        "rerank",
    )
    if result is None:
        return
    st.caption("Best first; *Was* is the video's place in the list you gave.")
    with st.container(key="reranked"):
        st.markdown(logic.reranked_markdown(result.items, asked))
    _reasons_note(result.items)


def _compare_page(settings: UiSettings, request: logic.PageRequest, _: History | None) -> None:
    st.header(f"Compare for user {request.user_id}" if request.user_id else "Compare")
    other = st.session_state["compare_target"].strip()
    if not other:
        st.info(
            "Give a second service in the sidebar (or start with `--compare-target host:port`) "
            "to see both answers side by side, e.g. the local engine beside Personalize."
        )
        return
    if not _need(request.user_id, "user"):
        return
    targets = (settings.target, other)
    filters = logic.filter_arguments(request)
    summary = st.container()  # filled once both answers are in, shown above them
    results: list[Result | None] = []
    slots = []
    for column, side, target in zip(st.columns(2, gap="large"), "AB", targets, strict=True):
        with column:
            backend = _backend_name(settings, target)
            st.subheader(f"{side}: {target}")
            st.caption(f"backend **{backend}**" if backend else "backend unknown")
            results.append(
                _ask(
                    settings,
                    target,
                    lambda client: client.recommend(
                        request.user_id, request.num_results, **filters
                    ),
                    f"compare-{side}",
                )
            )
            slots.append(st.container())
    if results[0] is None or results[1] is None:
        return
    shared = logic.overlap(results[0].item_ids, results[1].item_ids)
    with summary:
        count = len(shared.shared)
        st.metric("In both answers", f"{count} video{'' if count == 1 else 's'}")
        st.caption(f"{shared.summary()}; {logic.BOTH_MARK} marks a video both recommend.")
    for slot, side, result in zip(slots, "ab", results, strict=True):
        with slot:
            _results(result, f"compare-{side}", shared.shared)


def _about_page(settings: UiSettings, request: logic.PageRequest, _: History | None) -> None:
    st.header("About the model")
    other = st.session_state["compare_target"].strip()
    for index, target in enumerate(dict.fromkeys(t for t in (settings.target, other) if t)):
        info = _ask(settings, target, lambda client: client.model_info(), f"about-{index}")
        if info is not None:
            _model_facts(target, info, f"facts-{index}")
    st.subheader("Offline evaluation")
    if settings.eval_json is None:
        st.caption(
            "Start the page with `--eval-json FILE` (written by `recs evaluate run --json`) "
            "to chart its metrics here."
        )
        return
    _evaluation(settings.eval_json)


def _model_facts(target: str, info: ModelInfo, key: str) -> None:
    st.subheader(f"{target}: backend {info.backend}")
    headline = logic.headline_details(info.details)
    if headline:
        for column, (label, value) in zip(st.columns(len(headline)), headline, strict=True):
            column.metric(label, value)
    sections = logic.group_details(info.details)
    if not sections:
        st.caption("The backend reports no details.")
        return
    with st.container(key=key):
        for tab, rows in zip(st.tabs(list(sections)), sections.values(), strict=True):
            tab.markdown(logic.facts_markdown(rows))


def _evaluation(path: Path) -> None:
    try:
        figures = load_figures(path)
    except EvaluationFileError as exc:
        st.warning(f"Cannot show the evaluation: {exc}")
        return
    st.caption(f"From `{path}`.")
    bars = chart_bars(figures)
    if bars:
        table = pd.DataFrame(
            {
                "metric": [short_metric_name(bar.metric) for bar in bars],
                "system": [bar.series or "all" for bar in bars],
                "value": [bar.value for bar in bars],
            }
        )
        with st.container(key="evaluation-chart"):
            st.bar_chart(
                table, x="metric", y="value", color="system", horizontal=True, stack=False,
                height=max(300, 18 * len(bars)),
            )  # fmt: skip
    with st.expander("All figures in the file"):
        st.markdown(
            logic.facts_markdown([(figure.name, f"{figure.value:g}") for figure in figures])
        )


VIEW_PAGES: dict[str, Callable[[UiSettings, logic.PageRequest, History | None], None]] = {
    "user": _user_page,
    "similar": _similar_page,
    "popular": _popular_page,
    "trending": _trending_page,
    "rerank": _rerank_page,
    "compare": _compare_page,
    "about": _about_page,
}

main()
