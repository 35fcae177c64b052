"""The page in a real browser: `recs ui` against a real service, driven by headless Chromium.

Uses Debian's chromium (/usr/bin/chromium) through playwright-python; nothing downloads
a browser. Screenshots land in test-artifacts/ (gitignored).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from recs.client import RecsClient, Result
from recs.ui import logic
from tests.ui.conftest import (
    ARTIFACTS,
    EXPLORED,
    ROOT,
    TINY_DATASET,
    ServiceThread,
    free_port,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 60_000  # generous: the machine is shared and Streamlit starts slowly
START_SECONDS = 120

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason=f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)",
)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright-python is not installed")


@contextmanager
def recs_ui(target: str) -> Iterator[str]:
    """Run `recs ui` against `target` on a free port; yields the page's base URL."""
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"recs-ui-{port}.log"
    command = [sys.executable, "-m", "recs.cli.main", "ui", "--target", target]
    command += ["--port", str(port), "--data", str(TINY_DATASET)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_until_healthy(port, process, log_path)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_until_healthy(port: int, process: subprocess.Popen, log_path: Path) -> None:
    """Poll Streamlit's health endpoint until it answers "ok" (or the process dies)."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"recs ui exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"recs ui did not start within {START_SECONDS}s:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page_url(service: ServiceThread) -> Iterator[str]:
    with recs_ui(service.target) as url:
        yield url


def open_page(browser: Browser, url: str) -> Page:
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    return page


def screenshot(page: Page, name: str) -> None:
    """Save a full-page screenshot once the script run has finished and widgets are drawn."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()
    page.locator('[data-testid="stSkeleton"]').first.wait_for(state="detached")
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def titles(result: Result) -> list[str]:
    """The Title column the page should show for `result` (videos missing from the catalog
    show as "(no title)")."""
    return [item.title or "(no title)" for item in result.items]


def shown_titles(page: Page, key: str) -> list[str]:
    """The Title column of the results table in the container keyed `key`."""
    table = page.locator(f".st-key-{key} table")
    table.wait_for()
    return table.locator("tbody tr td:nth-child(2)").all_inner_texts()


def test_user_link_shows_the_titles_the_client_returns(browser, page_url, service):
    with RecsClient(service.target) as client:
        expected = titles(client.recommend("u01", 10))
    assert expected

    page = open_page(browser, f"{page_url}/?user=u01")
    assert shown_titles(page, "recommendations") == expected
    history = page.locator(".st-key-history table")
    assert "Everyone watches this" in history.inner_text()
    screenshot(page, "ui-user.png")
    page.close()


def test_item_link_shows_similar_videos(browser, page_url, service):
    with RecsClient(service.target) as client:
        expected = titles(client.similar("b1", 10))

    page = open_page(browser, f"{page_url}/?item=b1")
    page.get_by_role("heading", name="Videos like “Bicycle kick”").wait_for()
    assert shown_titles(page, "similar") == expected
    screenshot(page, "ui-similar.png")
    page.close()


def test_stopped_service_is_said_in_words_and_the_page_recovers(
    browser, tiny_backend, tiny_catalog
):
    port = free_port()
    with recs_ui(f"127.0.0.1:{port}") as url:
        page = open_page(browser, f"{url}/?user=u01")
        alert = page.get_by_text("Status UNAVAILABLE")
        alert.wait_for()
        body = page.locator("body").inner_text()
        assert f"The service at 127.0.0.1:{port} cannot be reached" in body
        assert "Traceback" not in body
        screenshot(page, "ui-service-down.png")

        service = ServiceThread(tiny_backend, tiny_catalog, port=port).start()
        try:
            page.get_by_role("button", name="Try again").click()
            shown = shown_titles(page, "recommendations")
            with RecsClient(service.target) as client:
                assert shown == titles(client.recommend("u01", 10))
            assert page.get_by_text("Status UNAVAILABLE").count() == 0
        finally:
            service.stop()
        page.close()


def test_compare_view_marks_shared_videos(browser, page_url, service, fixed_service):
    with RecsClient(service.target) as a, RecsClient(fixed_service.target) as b:
        left, right = a.recommend("u01", 10), b.recommend("u01", 10)
    shared = logic.overlap(left.item_ids, right.item_ids).shared

    page = open_page(browser, f"{page_url}/?view=compare&user=u01")
    compare_with = page.get_by_role("textbox", name="Compare with (host:port)")
    compare_with.fill(fixed_service.target)
    compare_with.press("Enter")
    assert shown_titles(page, "compare-a") == titles(left)
    assert shown_titles(page, "compare-b") == titles(right)
    marked = page.locator(f".st-key-compare-b tbody tr:has-text('{logic.BOTH_MARK}')")
    assert marked.count() == len(shared)
    screenshot(page, "ui-compare.png")
    page.close()


def test_trending_view_is_picked_in_the_sidebar(browser, fixed_service):
    with RecsClient(fixed_service.target) as client:
        expected = titles(client.trending(10))

    with recs_ui(fixed_service.target) as url:
        page = open_page(browser, f"{url}/?view=popular")
        page.get_by_role("heading", name="Popular now").wait_for()
        page.get_by_text("Trending now", exact=True).click()
        page.get_by_role("heading", name="Trending now").wait_for()
        assert shown_titles(page, "trending") == expected
        assert "view=trending" in page.url
        screenshot(page, "ui-trending.png")
        page.close()


def test_an_exploration_pick_shows_its_reason(browser, exploring_service):
    with RecsClient(exploring_service.target) as client:
        result = client.recommend("u01", 10)

    with recs_ui(exploring_service.target) as url:
        page = open_page(browser, f"{url}/?user=u01")
        assert shown_titles(page, "recommendations") == titles(result)
        table = page.locator(".st-key-recommendations table")
        headers = table.locator("thead th").all_inner_texts()
        assert [h.strip() for h in headers] == ["#", "Title", "Id", "Score", "Reason"]
        reasons = table.locator("tbody tr td:nth-child(5)").all_inner_texts()
        ids = table.locator("tbody tr td:nth-child(3)").all_inner_texts()
        shown = {i.strip(): r.strip() for i, r in zip(ids, reasons, strict=True)}
        assert shown == {
            item.item_id: "🆕 Exploration" if item.reason else "" for item in result.items
        }
        assert shown[EXPLORED] == "🆕 Exploration"
        page.get_by_text("🆕 Exploration is a new video").wait_for()
        screenshot(page, "ui-exploration.png")
        page.close()
