"""The traces explorer, the sessions list, the trace page and the demo's Replay in headless Chromium, on a
real `llmlens serve --demo`: what each page shows is checked against the stored data, read with SQL."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.support.browser import chromium
from tests.support.llmlens_server import LLMLensServer

COUNT_CAP = 10_000

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    with LLMLensServer(tmp_path_factory.mktemp("explorer-demo"), demo=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    pg.set_default_timeout(20_000)
    yield pg
    context.close()
    assert errors == [], errors


def dollars(text: str) -> tuple[float, int]:
    """A shown amount like `$1,234.56` -> (1234.56, 2 decimals shown)."""
    match = re.fullmatch(r"\$([\d,]+)(?:\.(\d+))?", text.strip())
    assert match, f"not an amount: {text!r}"
    decimals = match.group(2) or ""
    return float(match.group(1).replace(",", "") + (f".{decimals}" if decimals else "")), len(decimals)


def shown_count(n: int, noun: str) -> str:
    """How the page writes a count of `n` traces or sessions (the count stops at COUNT_CAP)."""
    return f"{min(n, COUNT_CAP):,}{'+' if n > COUNT_CAP else ''} {noun}{'' if n == 1 else 's'}"


def test_sort_traces_by_cost(server: LLMLensServer, page: Any) -> None:
    page.goto(server.url + "/traces?range=30d")
    page.locator("th a.sort-link", has_text="Cost").click()
    page.wait_for_url(re.compile(r"sort=-cost"))
    costs = server.sql(
        "SELECT trace_id, SUM(cost_usd) AS cost FROM llm_logs GROUP BY trace_id "
        "HAVING SUM(cost_usd) IS NOT NULL ORDER BY cost DESC LIMIT 2"
    )
    assert costs[0]["cost"] > costs[1]["cost"], "two traces cost the same: the test cannot tell which comes first"
    first = page.locator("#trace-rows tr").first
    assert first.get_attribute("data-trace-id") == costs[0]["trace_id"]
    shown, decimals = dollars(first.locator("td.cost").inner_text())
    assert abs(shown - costs[0]["cost"]) <= 0.5 * 10**-decimals + 1e-12
    # Every row costs at most the row above it.
    amounts = [dollars(t)[0] for t in page.locator("#trace-rows td.cost").all_inner_texts() if t.strip() != "—"]
    assert amounts == sorted(amounts, reverse=True) and len(amounts) == 50
    roots = server.sql("SELECT COUNT(*) AS n FROM spans WHERE parent_span_id IS NULL")[0]["n"]
    assert page.locator("#trace-total").inner_text() == shown_count(roots, "trace")


def test_filter_traces_by_claude(server: LLMLensServer, page: Any) -> None:
    page.goto(server.url + "/traces?range=30d")
    model = page.get_by_label("Model")
    assert model.input_value() == "" and model.get_attribute("placeholder") == "any model"
    suggestions = page.locator("#known-models option").evaluate_all("(os) => os.map((o) => o.value)")
    assert {m["model"] for m in server.sql("SELECT DISTINCT model FROM llm_logs")} <= set(suggestions)
    n = server.sql(
        "SELECT COUNT(*) AS n FROM spans WHERE parent_span_id IS NULL AND trace_id IN "
        "(SELECT trace_id FROM llm_logs WHERE model ILIKE '%claude%' OR response_model ILIKE '%claude%')"
    )[0]["n"]
    assert n > 50
    model.fill("claude")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"model=claude"))
    expect(page.locator("#trace-total")).to_have_text(shown_count(n, "trace"))  # the results were swapped in
    rows = page.locator("#trace-rows tr")
    assert rows.count() == 50
    for text in page.locator("#trace-rows td.models").all_inner_texts():
        assert "claude" in text.lower(), text
    # The state is in the URL: loading it again shows the same filter.
    page.goto(page.url)
    assert page.get_by_label("Model").input_value() == "claude"


def test_page_sessions(server: LLMLensServer, page: Any) -> None:
    ordered = server.sql(
        "SELECT session_id, MAX(timestamp) AS last_seen FROM llm_logs WHERE session_id IS NOT NULL "
        "GROUP BY session_id ORDER BY last_seen DESC, session_id"
    )
    assert len(ordered) > 100
    page.goto(server.url + "/sessions?range=30d")
    assert page.locator("#session-total").inner_text() == shown_count(len(ordered), "session")

    def shown() -> list[str]:
        return [r.get_attribute("data-session-id") for r in page.locator("#session-rows tr").all()]

    assert shown() == [s["session_id"] for s in ordered[:50]]
    page.locator("#next-page").click()
    page.wait_for_url(re.compile(r"cursor="))
    assert shown() == [s["session_id"] for s in ordered[50:100]]
    assert page.locator("#session-total").inner_text() == shown_count(len(ordered), "session")
    second_page = page.url
    page.locator("#prev-page").click()
    page.wait_for_url(lambda url: url != second_page)
    assert shown() == [s["session_id"] for s in ordered[:50]]
    # The columns of a row: turns and first message of its session.
    first = ordered[0]["session_id"]
    turns = server.sql(f"SELECT COUNT(DISTINCT trace_id) AS n FROM llm_logs WHERE session_id = '{first}'")[0]["n"]
    assert page.locator(f"#session-rows tr[data-session-id='{first}'] td.turns").inner_text() == str(turns)


def test_waterfall_has_a_time_axis_and_the_header_names_status_feature_and_models(
    server: LLMLensServer, page: Any
) -> None:
    found = server.sql(
        "SELECT trace_id, COUNT(*) AS spans FROM spans WHERE trace_id IN "
        "(SELECT trace_id FROM spans WHERE kind = 'tool') GROUP BY trace_id HAVING COUNT(*) >= 5 "
        "ORDER BY trace_id LIMIT 1"
    )[0]
    trace_id = found["trace_id"]
    spans = server.sql(
        "SELECT kind, model, feature, status, epoch_ms(timestamp) AS start_ms, latency_ms FROM spans "
        f"WHERE trace_id = '{trace_id}' ORDER BY timestamp"
    )
    duration = max(s["start_ms"] + s["latency_ms"] for s in spans) - min(s["start_ms"] for s in spans)
    page.goto(f"{server.url}/traces/{trace_id}")
    ticks = page.locator("#wf-axis .wf-tick")
    offsets = [float(t.get_attribute("data-offset-ms")) for t in ticks.all()]
    assert len(offsets) >= 3 and offsets[0] == 0 and page.locator("#wf-axis .wf-tick").first.inner_text() == "0 ms"
    step = offsets[1] - offsets[0]
    assert all(abs((b - a) - step) < 1e-6 for a, b in itertools.pairwise(offsets))
    assert offsets[-1] <= duration + 1 < offsets[-1] + step + 1
    # Each tick is drawn over the bars, where its time falls on their scale.
    scale = page.locator(".wf-row .wf-track").first.bounding_box()
    for tick, offset in zip(ticks.all(), offsets, strict=True):
        box = tick.bounding_box()
        anchor = box["x"] if "start" in tick.get_attribute("class") else box["x"] + box["width"] / 2
        if "end" in tick.get_attribute("class"):
            anchor = box["x"] + box["width"]
        assert abs(anchor - (scale["x"] + scale["width"] * offset / duration)) < 3, (offset, box, scale)
    # A span name that is cut on screen is whole in its tooltip.
    for row in page.locator(".wf-row a").all():
        assert row.locator(".wf-name").inner_text() in row.get_attribute("title")
    facts = page.locator("#trace-facts")
    failed = any(s["status"] == "error" for s in spans)
    assert facts.locator(".trace-status").inner_text().startswith("error" if failed else "ok")
    assert facts.locator(".trace-feature").inner_text() == next(s["feature"] for s in spans if s["feature"])
    models = {s["model"] for s in spans if s["kind"] == "llm" and s["model"]}
    assert set(facts.locator(".trace-models a").all_inner_texts()) == models


def test_demo_replay_and_compare_answer_through_the_simulated_provider(server: LLMLensServer, page: Any) -> None:
    call = server.sql(
        "SELECT trace_id, span_id, model FROM llm_logs WHERE provider = 'google' AND status = 'ok' "
        "AND replay_of IS NULL ORDER BY timestamp DESC LIMIT 1"
    )[0]
    page.goto(f"{server.url}/traces/{call['trace_id']}?span={call['span_id']}")
    page.locator("#replay-simulated-note").wait_for()
    page.get_by_role("button", name="Replay", exact=True).click()
    result = page.locator(".replay-result")
    result.wait_for()
    row = result.locator(".replay-row").first
    assert row.locator(".chip.simulated").inner_text() == "simulated"
    assert "[simulated by llmlens" in row.locator(".resp-text").inner_text()
    assert call["model"] in row.locator(".resp-text").inner_text()
    assert result.locator(".simulated-note").count() == 1
    stored = server.sql(f"SELECT trace_id, attributes, response FROM spans WHERE replay_of = '{call['span_id']}'")
    assert len(stored) == 1 and json.loads(stored[0]["attributes"])["llmlens.simulated"] is True
    # The replay is a trace of its own, and its page labels the call simulated too.
    page.goto(f"{server.url}/traces/{stored[0]['trace_id']}")
    assert page.locator(".wf-row.kind-llm .chip.simulated").count() == 1
    # Compare across two providers, offline.
    page.goto(f"{server.url}/traces/{call['trace_id']}?span={call['span_id']}")
    page.locator("#replay-models").fill("gpt-4o-mini, claude-3-5-haiku-20241022")
    page.locator("#compare-button").click()
    rows = page.locator(".replay-result .replay-row")
    rows.first.wait_for()
    assert rows.count() == 2
    for i in range(2):
        assert rows.nth(i).locator(".chip.simulated").count() == 1
        assert "[simulated by llmlens" in rows.nth(i).locator(".resp-text").inner_text()
