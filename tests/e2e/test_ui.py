"""The web UI in headless Chromium against a real server full of demo data: every page loads
without console errors and draws its charts, and the main debugging flows work."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.browser import chromium
from tests.support.llmlens_server import LLMLensServer

# Screenshots land in pytest's temporary folders, for looking at after a failure; the README's copies in
# docs/screenshots are refreshed only on purpose, by `make screenshots`.
pytestmark = [pytest.mark.browser]

# page name -> (path, how many charts it must draw with data)
PAGES = {
    "overview": ("/", 9),
    "cost": ("/cost", 1),
    "latency": ("/latency", 5),
    "prompts": ("/prompts", 1),
    "prompt": ("/prompts/support_answer", 1),
    "tools": ("/tools", 1),
    "feedback": ("/feedback", 1),
    "traces": ("/traces", 0),
    "sessions": ("/sessions", 0),
    "sql": ("/sql", 0),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    with LLMLensServer(tmp_path_factory.mktemp("ui-data"), demo=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)  # type: ignore[attr-defined]
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    pg.set_default_timeout(15_000)
    yield pg
    context.close()
    assert errors == [], errors


@pytest.mark.parametrize("name", list(PAGES))
def test_page_loads_with_charts(server: LLMLensServer, page: object, name: str, tmp_path: Path) -> None:
    path, charts = PAGES[name]
    response = page.goto(server.url + path)  # type: ignore[attr-defined]
    assert response.status == 200
    page.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
    drawn = page.locator(".chart-canvas .uplot, .spark .uplot")  # type: ignore[attr-defined]
    if charts:
        drawn.first.wait_for()
        assert drawn.count() >= charts
        assert page.locator(".chart-canvas.empty").count() == 0  # type: ignore[attr-defined]
    assert page.locator("nav[aria-label=Main] a[href^='/alerts']").count() == 1  # type: ignore[attr-defined]
    page.screenshot(path=str(tmp_path / f"{name}.png"))  # type: ignore[attr-defined]


def test_filter_traces_open_trace_and_its_session(server: LLMLensServer, page: object, tmp_path: Path) -> None:
    page.goto(server.url + "/traces")  # type: ignore[attr-defined]
    total = page.locator("#trace-rows tr").count()  # type: ignore[attr-defined]
    page.get_by_label("Text in prompt or response").fill("password")  # type: ignore[attr-defined]
    page.get_by_label("Status").select_option("ok")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Filter").click()  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"q=password"))  # type: ignore[attr-defined]
    rows = page.locator("#trace-rows tr")  # type: ignore[attr-defined]
    rows.first.wait_for()
    assert 0 < rows.count() <= total
    page.locator(".trace-link").first.click()  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"/traces/[0-9a-f]{32}"))  # type: ignore[attr-defined]
    assert page.locator(".wf-row").count() >= 3  # type: ignore[attr-defined]
    detail = page.locator("#span-detail")  # type: ignore[attr-defined]
    assert "llm" in detail.locator("h2").inner_text()
    assert "password" in detail.inner_text().lower()
    page.screenshot(path=str(tmp_path / "trace.png"))  # type: ignore[attr-defined]
    # Pick another span in the waterfall: the detail panel follows (htmx), and the URL keeps it.
    page.locator(".wf-row.kind-request a").click()  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"span="))  # type: ignore[attr-defined]
    page.locator("#span-detail h2", has_text="request").wait_for()  # type: ignore[attr-defined]
    trace_id = re.search(r"/traces/([0-9a-f]{32})", page.url).group(1)  # type: ignore[attr-defined,union-attr]
    page.locator("#session-link").click()  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"/sessions/sess-"))  # type: ignore[attr-defined]
    turns = page.locator(".transcript .turn")  # type: ignore[attr-defined]
    assert turns.count() >= 1
    # The turn of the trace we came from links back to it.
    assert page.locator(f".turn-trace[href*='{trace_id}']").count() == 1  # type: ignore[attr-defined]
    assert "password" in page.locator(".transcript").inner_text().lower()  # type: ignore[attr-defined]
    page.screenshot(path=str(tmp_path / "session.png"))  # type: ignore[attr-defined]
    turns.first.locator(".turn-trace").click()
    page.wait_for_url(re.compile(r"/traces/[0-9a-f]{32}"))  # type: ignore[attr-defined]


def test_trace_pagination_is_keyset(server: LLMLensServer, page: object) -> None:
    page.goto(server.url + "/traces?range=30d")  # type: ignore[attr-defined]
    first = page.locator(".trace-link").all_inner_texts()  # type: ignore[attr-defined]
    page.locator("#next-page").click()  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"cursor="))  # type: ignore[attr-defined]
    page.locator(".pager a", has_text="Newest").wait_for()  # type: ignore[attr-defined]
    second = page.locator(".trace-link").all_inner_texts()  # type: ignore[attr-defined]
    assert len(first) == 50 and second
    assert max(second) <= min(first)


def test_compare_two_template_versions(server: LLMLensServer, page: object) -> None:
    page.goto(server.url + "/prompts?range=30d")  # type: ignore[attr-defined]
    page.get_by_role("link", name="support_answer").click()  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"/prompts/support_answer"))  # type: ignore[attr-defined]
    page.get_by_label("Before").select_option("v3")  # type: ignore[attr-defined]
    page.get_by_label("After").select_option("v5")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Compare").click()  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"a=v3.*b=v5|b=v5.*a=v3"))  # type: ignore[attr-defined]
    heading = page.locator("#cmp-h").inner_text()  # type: ignore[attr-defined]
    assert "v3" in heading and "v5" in heading
    verdicts = page.locator(".verdicts").inner_text()  # type: ignore[attr-defined]
    assert "Satisfaction:" in verdicts and "Error rate:" in verdicts
    assert re.search(r"p = |too small", verdicts)
    page.locator(".chart-canvas .uplot").first.wait_for()  # type: ignore[attr-defined]


def test_run_an_example_sql_query(server: LLMLensServer, page: object, tmp_path: Path) -> None:
    page.goto(server.url + "/sql")  # type: ignore[attr-defined]
    page.get_by_role("link", name="Cost per feature (7 days)").click()  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"/sql\?"))  # type: ignore[attr-defined]
    assert "SUM(cost_usd)" in page.locator("#sql-q").input_value()  # type: ignore[attr-defined]
    # One row per feature that has calls in the last 7 days (no feature is a group of its own), read from the store.
    features = server.sql("SELECT DISTINCT feature FROM llm_logs WHERE timestamp > NOW() - INTERVAL 7 DAY")
    rows = page.locator("table.results tbody tr")  # type: ignore[attr-defined]
    assert len(features) > 1 and rows.count() == len(features)
    page.locator(".chart-canvas .uplot").first.wait_for()  # type: ignore[attr-defined]
    page.screenshot(path=str(tmp_path / "sql.png"))  # type: ignore[attr-defined]
    with page.expect_download() as download_info:  # type: ignore[attr-defined]
        page.locator("#sql-csv").click()  # type: ignore[attr-defined]
    target = tmp_path / "result.csv"
    download_info.value.save_as(target)
    lines = target.read_text().splitlines()
    assert lines[0] == "feature,total_cost,calls" and len(lines) == len(features) + 1


def test_keyboard_and_narrow_window(server: LLMLensServer, page: object) -> None:
    page.set_viewport_size({"width": 390, "height": 800})  # type: ignore[attr-defined]
    for path in ("/", "/cost", "/traces"):
        page.goto(server.url + path)  # type: ignore[attr-defined]
        page.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")  # type: ignore[attr-defined]
        assert overflow <= 1, f"{path} scrolls sideways by {overflow}px at 390px"
    page.keyboard.press("Tab")  # type: ignore[attr-defined]
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"  # type: ignore[attr-defined]
    page.keyboard.press("Enter")  # type: ignore[attr-defined]
    assert page.evaluate("document.activeElement.id") == "main"  # type: ignore[attr-defined]
    unlabeled = page.evaluate(  # type: ignore[attr-defined]
        """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
           .filter(el => !el.labels || el.labels.length === 0).map(el => el.name)"""
    )
    assert unlabeled == []
