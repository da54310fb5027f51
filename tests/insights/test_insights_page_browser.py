"""The Insights page in headless Chromium on `--demo`: every kind of finding is there, ranked as the API ranks
them; each opens its evidence (a chart, example traces that lead to the trace) and its action, and the
actions work (switch on the cache, start an experiment, set an alert)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from tests.support.llmlens_server import LLMLensServer

from llmlens.insights import KINDS

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    with LLMLensServer(tmp_path_factory.mktemp("insights-demo"), demo=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (scripts/setup-test-env.sh does)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    pg.set_default_timeout(60_000)
    yield pg
    context.close()
    assert errors == [], errors


def _api(demo: LLMLensServer) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(demo.url + "/api/v1/insights", params={"range": "7d"}, timeout=120).json()
    assert doc["status"] == "fresh" and doc["errors"] == []
    return doc


def _open(page: Page, demo: LLMLensServer) -> None:
    page.goto(demo.url + "/insights?range=7d")
    page.locator("#insights").wait_for()  # after the page's own reloads while the findings are computed


def _finding(page: Page, kind: str, text: str) -> Any:
    finding = page.locator(f"details.insight[data-kind='{kind}']", has_text=text).first
    finding.locator("summary").click()
    return finding


def test_findings_are_ranked_and_open_their_evidence(demo: LLMLensServer, page: Page, tmp_path: Path) -> None:
    _open(page, demo)
    api = _api(demo)
    shown = page.locator("details.insight")
    ids = [shown.nth(i).get_attribute("id") for i in range(shown.count())]
    assert ids == [f"insight-{i['id']}" for i in api["insights"]]
    assert {i["kind"] for i in api["insights"]} == set(KINDS)  # the demo has every pattern planted
    assert page.locator("nav[aria-label=Main] a[aria-current=page]").inner_text() == "Insights"
    page.screenshot(path=str(tmp_path / "insights.png"))  # the README's copy: `make screenshots`
    first = shown.first
    first.locator("summary").click()
    first.locator(".chart-canvas .uplot").wait_for()
    assert first.locator(".method").inner_text() == api["insights"][0]["method"]
    assert first.locator(".assumptions li").count() == len(api["insights"][0]["assumptions"])
    example = first.locator("a.example-trace").first
    trace_id = example.inner_text()
    example.click()
    page.wait_for_url(re.compile(rf"/traces/{trace_id}"))
    assert page.locator(".wf-row").count() >= 1


def test_switch_on_the_cache_from_the_finding(demo: LLMLensServer, page: Page) -> None:
    _open(page, demo)
    finding = _finding(page, "cacheable_prompts", "faq_bot")
    finding.get_by_role("button", name="Switch on the gateway cache for faq_bot").click()
    finding.locator(".action-result", has_text="the gateway cache is on for faq_bot").wait_for()
    assert "faq_bot" in httpx.get(demo.url + "/api/v1/gateway/cache/features").json()["features"]
    _open(page, demo)
    assert "Done: the gateway cache is on" in _finding(page, "cacheable_prompts", "faq_bot").inner_text()


def test_start_an_experiment_from_the_finding(demo: LLMLensServer, page: Page) -> None:
    _open(page, demo)
    finding = _finding(page, "smaller_model", "classify_ticket")
    command = (
        "llmlens experiment run insights-classify_ticket-gpt-4o --from-filter feature=classify_ticket "
        "--from-filter model=gpt-4o --from-filter limit=20 --variant model=gpt-4o --variant model=gpt-4o-mini "
        "--evaluator helpfulness"
    )
    assert command in " ".join(finding.inner_text().split())
    finding.locator("button.action-button").click()
    result = finding.locator(".action-result a", has_text="see the result")
    result.wait_for(timeout=120_000)
    result.click()
    page.wait_for_url(re.compile(r"/experiments/exp_"))
    # The demo's stand-in answers both models and plays the judge: the experiment finishes with both variants.
    page.locator("#experiment-status", has_text="done").wait_for(timeout=120_000)
    assert page.locator("#summary tbody tr").count() == 2


def test_set_an_alert_from_the_finding(demo: LLMLensServer, page: Page) -> None:
    _open(page, demo)
    finding = _finding(page, "retries", "rate-limit")
    finding.locator("button.action-button").click()
    finding.locator(".action-result", has_text="alert rule insights errors gpt-4o-mini created").wait_for()
    rules = httpx.get(demo.url + "/api/v1/alerts/rules").json()["rules"]
    assert any(r["name"] == "insights errors gpt-4o-mini" and r["type"] == "error_rate" for r in rules)
