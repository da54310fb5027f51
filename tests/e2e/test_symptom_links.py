"""From every symptom to the exact call, in headless Chromium set to Los Angeles time, on a real
`llmlens serve --demo`: charts draw in UTC, a click on a chart's bucket opens that bucket's traces, and
every link from a figure (feedback, prompt versions, alert drivers, error types, cost rows) lands on a
trace list whose rows are checked against the stored data, read with SQL."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from tests.support.browser import chromium
from tests.support.llmlens_server import LLMLensServer

from llmlens.query.feedback import RATED_CALLS_LIMIT
from llmlens.server.routes._formatting import usd

pytestmark = [pytest.mark.browser]

TIMEZONE = "America/Los_Angeles"  # 7 or 8 hours behind UTC: a chart drawn in local time is off by that much


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    with LLMLensServer(tmp_path_factory.mktemp("symptom-links"), demo=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 950}, timezone_id=TIMEZONE)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    pg.set_default_timeout(20_000)
    yield pg
    context.close()
    assert errors == [], errors


# -- reading the data ------------------------------------------------------------------------------------


def sql(server: LLMLensServer, query: str) -> list[dict[str, Any]]:
    with server.client() as c:
        r = c.post("/api/v1/sql", json={"query": query})
    assert r.status_code == 200, f"SQL failed with {r.status_code}: {r.text}"
    doc = r.json()
    assert not doc.get("truncated"), "the SQL answer was cut short: the test would compare against part of the data"
    return [dict(zip(doc["columns"], row, strict=True)) for row in doc["rows"]]


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def ts(t: dt.datetime) -> str:
    return f"TIMESTAMP '{t.strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def utc(text: str) -> dt.datetime:
    """An ISO time from a URL or the JSON (`...Z`) -> naive UTC."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC).replace(tzinfo=None)


def window(server: LLMLensServer, length: dt.timedelta) -> dict[str, str]:
    """A fixed window ending at the server's current minute, so that a page and the SQL read the same data."""
    with server.client() as c:
        end = utc(c.get("/api/v1/overview", params={"range": "1h"}).json()["window"]["end"])
    return {"from": (end - length).isoformat() + "Z", "to": end.isoformat() + "Z"}


def listed(server: LLMLensServer, query: dict[str, str]) -> list[dict[str, Any]]:
    """Every trace the trace list shows for these URL parameters, all pages, in its order."""
    out: list[dict[str, Any]] = []
    params = {**query, "limit": "500"}
    with server.client() as c:
        while True:
            r = c.get("/api/v1/traces", params=params)
            assert r.status_code == 200, r.text
            doc = r.json()
            assert not doc["total_capped"], "more traces than the list counts: narrow the test's window"
            out += doc["traces"]
            if not doc["next_cursor"]:
                return out
            params["cursor"] = doc["next_cursor"]


def rooted(server: LLMLensServer, start: dt.datetime, end: dt.datetime, *conditions: str) -> set[str]:
    """Trace ids as the trace list defines them: the root starts in [start, end), and for each condition
    some span of the trace in [start, end) meets it."""
    where = [f"r.parent_span_id IS NULL AND r.timestamp >= {ts(start)} AND r.timestamp < {ts(end)}"]
    where += [
        f"r.trace_id IN (SELECT trace_id FROM spans WHERE timestamp >= {ts(start)} AND timestamp < {ts(end)} AND {c})"
        for c in conditions
    ]
    return {r["trace_id"] for r in sql(server, f"SELECT r.trace_id FROM spans r WHERE {' AND '.join(where)}")}


def query_of(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlparse(url).query).items()}


def landing_matches_api(page: Any, server: LLMLensServer) -> list[dict[str, Any]]:
    """The landing trace list's rows and count are the API's for the same URL; returns all its traces."""
    query = query_of(page.url)
    every = listed(server, query)
    shown = page.locator("#trace-rows tr[data-trace-id]").evaluate_all("rows => rows.map(r => r.dataset.traceId)")
    assert shown == [t["trace_id"] for t in every[: len(shown)]]
    assert len(shown) == min(len(every), 50)
    assert page.locator("#trace-total").get_attribute("data-total") == str(len(every))
    return every


# -- charts ------------------------------------------------------------------------------------------------


def chart(page: Any, title: str) -> Any:
    canvas = page.locator("figure.chart", has=page.locator("figcaption", has_text=title)).locator(".chart-canvas")
    canvas.wait_for()
    page.wait_for_function("el => !!el.uplot", arg=canvas.element_handle())
    canvas.scroll_into_view_if_needed()
    return canvas


def spec_of(canvas: Any) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(canvas.get_attribute("data-chart"))
    return spec


def point(canvas: Any, i: int, y_value: float | None = None) -> tuple[float, float]:
    """Page coordinates of bucket i's middle, at y_value (default: just above the bottom of the plot)."""
    pos: dict[str, float] = canvas.evaluate(
        """(el, [i, y]) => {
            const u = el.uplot, spec = JSON.parse(el.dataset.chart), r = u.over.getBoundingClientRect();
            const x = r.left + u.valToPos(spec.x[i] + spec.step_s / 2, "x");
            return {x, y: y === null ? r.bottom - 2 : r.top + u.valToPos(y, "y")};
        }""",
        [i, y_value],
    )
    return pos["x"], pos["y"]


def legend_values(canvas: Any) -> list[str]:
    values: list[str] = canvas.evaluate(
        "el => [...el.querySelectorAll('.u-legend .u-series')].map(s => s.querySelector('.u-value').textContent)"
    )
    return values


def bucket_text(start: dt.datetime, end: dt.datetime) -> str:
    """How the charts name a bucket: UTC, 24-hour."""
    return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC"


def bucket_bounds(spec: dict[str, Any], i: int) -> tuple[dt.datetime, dt.datetime]:
    start = max(spec["x"][i], spec["start"])
    end = min(spec["x"][i] + spec["step_s"], spec["end"])
    return (
        dt.datetime.fromtimestamp(start, dt.UTC).replace(tzinfo=None),
        dt.datetime.fromtimestamp(end, dt.UTC).replace(tzinfo=None),
    )


def clean_buckets(server: LLMLensServer, spec: dict[str, Any], values: list[float | None]) -> list[int]:
    """Buckets by value, largest first, whose LLM calls all belong to traces rooted in the bucket and whose
    traces' LLM calls all lie in it: there the traces of the bucket and the calls of the bucket are the same
    thing (the trace list places a trace by its root; a chart places a call by its own time)."""
    out = []
    for i in sorted((i for i, v in enumerate(values) if v), key=lambda i: -(values[i] or 0))[:6]:
        start, end = bucket_bounds(spec, i)
        straddling = sql(
            server,
            "SELECT COUNT(*) AS n FROM llm_logs l JOIN spans r ON r.trace_id = l.trace_id AND r.parent_span_id IS NULL "
            f"WHERE (l.timestamp >= {ts(start)} AND l.timestamp < {ts(end)}) "
            f"<> (r.timestamp >= {ts(start)} AND r.timestamp < {ts(end)})",
        )[0]["n"]
        if straddling == 0:
            out.append(i)
    assert out, "every large bucket has a trace across its edge: the test cannot compare traces with calls"
    return out


def test_charts_draw_in_utc_and_24_hour_time_in_a_los_angeles_browser(server: LLMLensServer, page: Any) -> None:
    # A window starting at hh:59, as in the report: its axis must start at that UTC hour, not 7-8 hours before.
    end = utc(window(server, dt.timedelta(hours=1))["to"])
    start = (end - dt.timedelta(hours=24)).replace(minute=59, second=0)
    page.goto(f"{server.url}/?from={start.isoformat()}Z&to={end.isoformat()}Z")
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == TIMEZONE
    canvas = chart(page, "Spend per hour")
    spec = spec_of(canvas)
    ticks = json.loads(canvas.get_attribute("data-x-ticks"))
    assert len(ticks) >= 4
    for split, label in ticks:
        t = dt.datetime.fromtimestamp(split, dt.UTC)
        assert label.split("\n")[0] == f"{t:%H:%M}", (split, label)  # UTC, 24-hour
    first_tick = dt.datetime.fromtimestamp(ticks[0][0], dt.UTC).replace(tzinfo=None)
    assert start.replace(minute=0) <= first_tick <= start + dt.timedelta(hours=4)
    assert "\n" in ticks[0][1]  # the first tick carries its date
    # Hover an afternoon bucket (a 12-hour clock would say 1:00 PM or so): the legend names it in UTC.
    i = next(i for i, x in enumerate(spec["x"]) if 13 <= dt.datetime.fromtimestamp(x, dt.UTC).hour <= 22 and i > 0)
    page.mouse.move(*point(canvas, i))
    b_start, b_end = bucket_bounds(spec, i)
    assert legend_values(canvas)[0] == bucket_text(b_start, b_end)
    hint = page.locator("figure.chart", has_text="Spend per hour").locator(".chart-hint")
    assert hint.inner_text() == f"Click: the traces of {bucket_text(b_start, b_end)}"
    assert "All times UTC" in page.locator("footer").inner_text()


def test_a_spend_bucket_opens_exactly_its_calls(server: LLMLensServer, page: Any) -> None:
    page.goto(server.url + "/?" + "&".join(f"{k}={v}" for k, v in window(server, dt.timedelta(hours=24)).items()))
    canvas = chart(page, "Spend per hour")
    spec = spec_of(canvas)
    values = spec["series"][0]["values"]
    i = clean_buckets(server, spec, values)[0]
    start, end = bucket_bounds(spec, i)
    page.mouse.click(*point(canvas, i, values[i] / 2))  # inside the bar
    page.wait_for_url(re.compile(r"/traces\?"))
    query = query_of(page.url)
    assert (utc(query["from"]), utc(query["to"]), query["sort"]) == (start, end, "-cost")
    assert "range" not in query
    every = landing_matches_api(page, server)
    # The traces that spent are the traces of the bucket's priced calls, and their costs add up to the bar.
    calls = sql(
        server,
        "SELECT trace_id, SUM(cost_usd) AS cost FROM llm_logs "
        f"WHERE timestamp >= {ts(start)} AND timestamp < {ts(end)} AND cost_usd IS NOT NULL GROUP BY trace_id",
    )
    spent = {t["trace_id"]: t["cost_usd"] for t in every if t["cost_usd"] is not None}
    assert spent.keys() == {c["trace_id"] for c in calls}
    for c in calls:
        assert spent[c["trace_id"]] == pytest.approx(c["cost"], abs=1e-8)
    assert math.fsum(spent.values()) == pytest.approx(values[i], abs=1e-6)
    shown_costs = [t["cost_usd"] for t in every if t["cost_usd"] is not None]
    assert shown_costs == sorted(shown_costs, reverse=True)  # the dearest first


def test_a_band_of_the_stacked_spend_chart_narrows_to_its_model(server: LLMLensServer, page: Any) -> None:
    page.goto(server.url + "/cost?" + "&".join(f"{k}={v}" for k, v in window(server, dt.timedelta(hours=24)).items()))
    canvas = chart(page, "Spend per hour, stacked by model")
    spec = spec_of(canvas)
    totals = [sum(s["values"][j] or 0 for s in spec["series"]) for j in range(len(spec["x"]))]
    i = clean_buckets(server, spec, totals)[0]
    shown: list[str] = canvas.evaluate(
        "el => [...el.querySelectorAll('.u-legend .u-series')].slice(1).map(s => s.querySelector('.u-label').textContent)"
    )
    # The largest band of a model shown on its own (not "other") in that bucket, and where it lies.
    series = [s for s in spec["series"] if s["label"] in shown]
    below, lead = 0.0, None
    for s in series:  # drawn bottom-up in the spec's order
        v = s["values"][i] or 0.0
        if lead is None or v > lead[2] - lead[1]:
            lead = (s["label"], below, below + v)
        below += v
    assert lead is not None and lead[2] > lead[1]
    model, low, high = lead
    page.mouse.click(*point(canvas, i, (low + high) / 2))
    page.wait_for_url(re.compile(r"/traces\?"))
    query = query_of(page.url)
    assert query["model"] == model and query["sort"] == "-cost"
    start, end = bucket_bounds(spec, i)
    every = landing_matches_api(page, server)
    want = rooted(server, start, end, f"kind = 'llm' AND (model = {lit(model)} OR response_model = {lit(model)})")
    assert {t["trace_id"] for t in every} == want
    assert all(model in t["models"] for t in every)


@pytest.mark.parametrize(
    ("path", "title", "expected"),
    [
        ("/", "LLM error rate", {"status": "error"}),
        ("/", "p95 latency of LLM calls", {"sort": "-latency"}),
        ("/latency?model=gpt-4o", "p50 / p95 / p99 latency", {"sort": "-latency", "model": "gpt-4o"}),
        ("/feedback", "Feedback on the calls made", {"feedback": "any"}),
    ],
)
def test_error_latency_and_feedback_charts_open_the_calls_of_a_bucket(
    server: LLMLensServer, page: Any, path: str, title: str, expected: dict[str, str]
) -> None:
    joiner = "&" if "?" in path else "?"
    page.goto(
        server.url + path + joiner + "&".join(f"{k}={v}" for k, v in window(server, dt.timedelta(hours=24)).items())
    )
    canvas = chart(page, title)
    spec = spec_of(canvas)
    with_value = [j for j in range(len(spec["x"])) if any(s["values"][j] for s in spec["series"])]
    i = with_value[len(with_value) // 2]
    x, _ = point(canvas, i)
    top = canvas.evaluate("el => el.uplot.over.getBoundingClientRect().top")
    page.mouse.click(x, top + 2)  # above every line and band: the whole bucket
    page.wait_for_url(re.compile(r"/traces\?"))
    query = query_of(page.url)
    start, end = bucket_bounds(spec, i)
    assert (utc(query["from"]), utc(query["to"])) == (start, end)
    assert {k: query.get(k) for k in expected} == expected
    every = landing_matches_api(page, server)
    if expected.get("status") == "error":
        assert {t["trace_id"] for t in every} == rooted(server, start, end, "status = 'error'")
        assert every and all(t["status"] == "error" for t in every)
    if expected.get("sort") == "-latency":
        latencies = [t["latency_ms"] for t in every if t["latency_ms"] is not None]
        assert latencies == sorted(latencies, reverse=True)
    if "model" in expected:
        assert every and all(expected["model"] in t["models"] for t in every)
    if expected.get("feedback") == "any":
        rated = "message_id IN (SELECT message_id FROM feedback_events)"
        assert {t["trace_id"] for t in every} == rooted(server, start, end, rated)


# -- feedback -------------------------------------------------------------------------------------------


def rated_calls_sql(start: dt.datetime, end: dt.datetime, where: str = "TRUE") -> str:
    """The rated calls of the window in the feedback list's order: thumbs-down and comments first."""
    return (
        "SELECT f.feedback_id, f.feedback_type, l.trace_id, l.span_id, l.latency_ms FROM feedback_events f "
        "JOIN llm_logs l ON l.message_id = f.message_id "
        f"WHERE l.timestamp >= {ts(start)} AND l.timestamp < {ts(end)} AND {where} "
        "ORDER BY CASE WHEN f.feedback_type = 'thumbs_down' OR f.feedback_text <> '' THEN 0 ELSE 1 END, "
        "f.timestamp DESC, f.feedback_id"
    )


def test_from_the_feedback_list_to_the_thumbs_down_calls_span_panel(server: LLMLensServer, page: Any) -> None:
    w = window(server, dt.timedelta(hours=24))
    page.goto(server.url + "/feedback?" + "&".join(f"{k}={v}" for k, v in w.items()))
    items = page.locator("li.rated-call")
    ids = items.evaluate_all("els => els.map(e => e.dataset.feedbackId)")
    want = sql(server, rated_calls_sql(utc(w["from"]), utc(w["to"])))
    assert ids == [r["feedback_id"] for r in want[:RATED_CALLS_LIMIT]]
    assert page.locator("#rated-total").inner_text().startswith(f"{len(want):,} feedback events")
    first_down = items.filter(has=page.locator(".chip.fb-thumbs_down")).first
    feedback_id = first_down.get_attribute("data-feedback-id")
    first_down.locator("a.rated-call-link").click()
    page.wait_for_url(re.compile(r"/traces/[0-9a-f]+\?.*span="))
    rated = sql(
        server,
        "SELECT l.trace_id, l.span_id, l.model FROM feedback_events f JOIN llm_logs l ON l.message_id = f.message_id "
        f"WHERE f.feedback_id = {lit(feedback_id or '')} AND f.feedback_type = 'thumbs_down'",
    )
    assert len(rated) == 1
    assert urlparse(page.url).path == f"/traces/{rated[0]['trace_id']}"
    assert query_of(page.url)["span"] == rated[0]["span_id"]
    detail = page.locator("#span-detail")
    assert detail.locator("h2").inner_text().startswith("llm")
    assert rated[0]["model"] in detail.locator(".facts").inner_text()
    assert page.locator(".wf-row.selected").count() == 1


def test_the_feedback_list_filters_by_feature_version_model_and_speed(server: LLMLensServer, page: Any) -> None:
    w = window(server, dt.timedelta(days=7))
    start, end = utc(w["from"]), utc(w["to"])
    page.goto(server.url + "/feedback?" + "&".join(f"{k}={v}" for k, v in w.items()))
    form = page.locator("form[aria-label='Which rated calls']")
    form.get_by_label("Feature").select_option("support_chat")
    form.get_by_label("Template version").select_option("support_answer@v4")
    form.get_by_label("Model").select_option("claude-3-5-haiku-20241022")
    form.get_by_label("Speed").select_option("slow")
    form.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"speed=slow"))
    where = (
        "l.feature = 'support_chat' AND l.template_id = 'support_answer' AND l.template_version = 'v4' "
        "AND l.model = 'claude-3-5-haiku-20241022' AND (l.latency_ms IS NULL OR l.latency_ms >= 3000)"
    )
    want = sql(server, rated_calls_sql(start, end, where))
    assert want, "no slow rated v4 call of claude-3-5-haiku in the demo: the filter is not tried"
    ids = page.locator("li.rated-call").evaluate_all("els => els.map(e => e.dataset.feedbackId)")
    assert ids == [r["feedback_id"] for r in want[:RATED_CALLS_LIMIT]]
    assert page.locator("#rated-total").inner_text().startswith(f"{len(want):,} feedback event")


def test_every_satisfaction_figure_links_to_the_calls_behind_it(server: LLMLensServer, page: Any) -> None:
    w = window(server, dt.timedelta(days=7))
    start, end = utc(w["from"]), utc(w["to"])
    page.goto(server.url + "/feedback?" + "&".join(f"{k}={v}" for k, v in w.items()))
    with server.client() as c:
        report = c.get("/api/v1/feedback", params=w).json()["feedback"]
    rated = "message_id IN (SELECT message_id FROM feedback_events{})"
    cases = [
        ("#feat-h", "support_chat", "feature = 'support_chat'"),
        ("#model-h", "gpt-4o", "kind = 'llm' AND (model = 'gpt-4o' OR response_model = 'gpt-4o')"),
        ("#tv-h", "support_answer@v5", "template_id = 'support_answer' AND template_version = 'v5'"),
    ]
    for heading, key, condition in cases:
        for link, feedback, typed in (
            ("a.group-traces", "any", ""),
            ("a.group-thumbs-down", "thumbs_down", " WHERE feedback_type = 'thumbs_down'"),
        ):
            page.goto(server.url + "/feedback?" + "&".join(f"{k}={v}" for k, v in w.items()))
            row = page.locator(f"section:has({heading}) tr", has=page.get_by_text(key, exact=True))
            row.locator(link).click()
            page.wait_for_url(re.compile(r"/traces\?"))
            assert query_of(page.url)["feedback"] == feedback
            every = landing_matches_api(page, server)
            assert {t["trace_id"] for t in every} == rooted(server, start, end, condition, rated.format(typed)), (
                key,
                link,
            )
    # A latency bucket: the trace list has no filter for it, so its figures open the list of its rated calls.
    slow = next(s for s in report["by_speed"] if s["key"] == "slow")
    page.goto(server.url + "/feedback?" + "&".join(f"{k}={v}" for k, v in w.items()))
    row = page.locator("section:has(#speed-h) tr", has=page.get_by_text("slow", exact=True))
    row.locator("a.group-rated").click()
    page.wait_for_url(re.compile(r"/feedback\?.*speed=slow"))
    want = sql(server, rated_calls_sql(start, end, "(l.latency_ms IS NULL OR l.latency_ms >= 3000)"))
    assert len(want) == slow["feedback"]
    assert page.locator("#rated-total").inner_text().startswith(f"{slow['feedback']:,} feedback events")
    ids = page.locator("li.rated-call").evaluate_all("els => els.map(e => e.dataset.feedbackId)")
    assert ids == [r["feedback_id"] for r in want[:RATED_CALLS_LIMIT]]


# -- prompts ----------------------------------------------------------------------------------------------


def test_from_a_prompt_version_to_its_thumbs_down_calls(server: LLMLensServer, page: Any) -> None:
    w = window(server, dt.timedelta(days=7))
    start, end = utc(w["from"]), utc(w["to"])
    page.goto(server.url + "/prompts/support_answer?" + "&".join(f"{k}={v}" for k, v in w.items()))
    assert page.locator("#cmp-h").inner_text() == "v4 → v5"
    # v5 doubled the prompt: the change is computed from the calls and flagged.
    avg = {
        r["template_version"]: r["avg"]
        for r in sql(
            server,
            "SELECT template_version, AVG(prompt_tokens) AS avg FROM llm_logs WHERE template_id = 'support_answer' "
            f"AND timestamp >= {ts(start)} AND timestamp < {ts(end)} GROUP BY template_version",
        )
    }
    with server.client() as c:
        shown = c.get("/api/v1/prompts/support_answer", params=w).json()["comparison"]["change"]
    assert shown["prompt_tokens"] == pytest.approx(avg["v5"] / avg["v4"] - 1, abs=1e-3)
    assert shown["prompt_tokens"] > 0.8 and shown["large"]
    assert f"{shown['prompt_tokens'] * 100:+.0f} % ⚑" in page.locator("#cmp-change").inner_text()
    v5_row = page.locator("tr[data-version=v5]")
    assert "⚑" in v5_row.inner_text()
    # The template's text, recovered from the calls (no registry holds it), differs where v5 changed it.
    diff = page.locator("#template-diff")
    assert "support_answer@v4" in diff.locator(".diff-line.del").all_inner_texts()[0]
    assert any("support_answer@v5" in line for line in diff.locator(".diff-line.ins").all_inner_texts())
    assert "{{question}}" in diff.inner_text()
    # A filled prompt of v5, from one of its calls.
    sample = page.locator("details.prompt-sample[data-version=v5]")
    assert "support_answer@v5" in sample.locator("pre").inner_text()
    v5_row.locator("a.version-thumbs-down").click()
    page.wait_for_url(re.compile(r"/traces\?"))
    query = query_of(page.url)
    assert (query["template_id"], query["template_version"], query["feedback"]) == (
        "support_answer",
        "v5",
        "thumbs_down",
    )
    every = landing_matches_api(page, server)
    want = rooted(
        server,
        start,
        end,
        "template_id = 'support_answer' AND template_version = 'v5'",
        "message_id IN (SELECT message_id FROM feedback_events WHERE feedback_type = 'thumbs_down')",
    )
    assert want, "no thumbs-down on a v5 call in the demo: the link is not tried"
    assert {t["trace_id"] for t in every} == want


# -- alerts, overview, cost --------------------------------------------------------------------------------


def active_cost_spike(server: LLMLensServer) -> dict[str, Any]:
    """The demo's planted cost spike, once the evaluator has run (it starts a few seconds after the server)."""
    deadline = time.monotonic() + 60
    with server.client() as c:
        while time.monotonic() < deadline:
            doc = c.get("/api/v1/alerts").json()
            found = [a for a in doc["active"] if a["details"].get("type") == "cost_spike"]
            if found:
                return found[0]
            if doc["last_run"]["at"]:
                break
            time.sleep(0.2)
    pytest.fail("the demo's cost spike alert is not active: the driver links have nothing to show")


def test_each_alert_driver_links_to_the_calls_behind_it(server: LLMLensServer, page: Any) -> None:
    alert = active_cost_spike(server)
    start, end = utc(alert["details"]["window_start"]), utc(alert["details"]["window_end"])
    drivers = alert["details"]["attribution"]["drivers"]
    conditions = {
        "user": lambda v: f"user_id = {lit(v)}",
        "feature": lambda v: f"feature = {lit(v)}",
        "model": lambda v: f"kind = 'llm' AND (model = {lit(v)} OR response_model = {lit(v)})",
    }
    tried = 0
    for dimension, condition in conditions.items():
        for entry in drivers.get(dimension, [])[:2]:
            page.goto(server.url + "/alerts")
            param = {"user": "user_id"}.get(dimension, dimension)
            hrefs = page.locator("a.driver-calls").evaluate_all("els => els.map(e => [e.textContent, e.href])")
            href = next(h for text, h in hrefs if text == entry["name"] and query_of(h).get(param) == entry["name"])
            page.locator(f"a.driver-calls[href='{urlparse(href).path}?{urlparse(href).query}']").first.click()
            page.wait_for_url(re.compile(r"/traces\?"))
            query = query_of(page.url)
            assert (utc(query["from"]), utc(query["to"])) == (start, end)
            every = landing_matches_api(page, server)
            assert {t["trace_id"] for t in every} == rooted(server, start, end, condition(entry["name"]))
            tried += 1
    assert tried >= 3


def test_errors_by_type_link_to_the_traces_failing_with_that_type(server: LLMLensServer, page: Any) -> None:
    w = window(server, dt.timedelta(days=7))
    page.goto(server.url + "/?" + "&".join(f"{k}={v}" for k, v in w.items()))
    links = page.locator("a.error-type-traces")
    types = [query_of(h)["error_type"] for h in links.evaluate_all("els => els.map(e => e.href)")]
    assert {"rate_limit", "timeout"} <= set(types)
    for error_type in ("rate_limit", "timeout"):
        page.goto(server.url + "/?" + "&".join(f"{k}={v}" for k, v in w.items()))
        page.locator("a.error-type-traces", has_text=error_type).click()
        page.wait_for_url(re.compile(r"/traces\?"))
        every = landing_matches_api(page, server)
        want = rooted(server, utc(w["from"]), utc(w["to"]), f"error_type = {lit(error_type)}")
        assert want and {t["trace_id"] for t in every} == want


def test_cost_rows_link_to_their_calls(server: LLMLensServer, page: Any) -> None:
    w = window(server, dt.timedelta(days=7))
    start, end = utc(w["from"]), utc(w["to"])
    cases = [
        ("#feat-h", "code_generation", "feature", "feature = 'code_generation'"),
        ("#users-h", None, "user_id", None),
        ("#models-h", "gpt-4o", "model", "kind = 'llm' AND (model = 'gpt-4o' OR response_model = 'gpt-4o')"),
    ]
    for heading, name, param, condition in cases:
        page.goto(server.url + "/cost?" + "&".join(f"{k}={v}" for k, v in w.items()))
        links = page.locator(f"section:has({heading}) a.calls-link")
        link = links.filter(has_text=re.compile(f"^{re.escape(name)}$")) if name else links.first
        value = link.inner_text()
        link.click()
        page.wait_for_url(re.compile(r"/traces\?"))
        query = query_of(page.url)
        assert urlparse(page.url).path == "/traces"  # a model's calls, not the Latency page
        assert (query[param], query["sort"]) == (value, "-cost")
        every = landing_matches_api(page, server)
        want = rooted(server, start, end, condition or f"user_id = {lit(value)}")
        assert want and {t["trace_id"] for t in every} == want, (param, value)


# -- how charts read ------------------------------------------------------------------------------------


def test_seven_models_show_as_the_top_five_and_the_rest_is_a_click_away(server: LLMLensServer, page: Any) -> None:
    w = window(server, dt.timedelta(days=7))
    page.goto(server.url + "/latency?" + "&".join(f"{k}={v}" for k, v in w.items()))
    canvas = chart(page, "p95 latency by model")
    assert len(spec_of(canvas)["series"]) == 7
    assert len(legend_values(canvas)) == 1 + 5
    more = page.locator("figure.chart", has_text="p95 latency by model").locator("button.chart-more")
    assert more.inner_text() == "Show all 7 models"
    more.click()
    page.wait_for_function("el => el.querySelectorAll('.u-legend .u-series').length === 8", arg=canvas.element_handle())
    # Spend adds up: the two smallest models become "other", their sum.
    page.goto(server.url + "/cost?" + "&".join(f"{k}={v}" for k, v in w.items()))
    canvas = chart(page, "Spend per hour, stacked by model")
    spec = spec_of(canvas)
    labels = canvas.evaluate(
        "el => [...el.querySelectorAll('.u-legend .u-series')].slice(1).map(s => s.querySelector('.u-label').textContent)"
    )
    assert "other 2 models" in labels and len(labels) == 6
    ranked = sorted(spec["series"], key=lambda s: -sum(abs(v) for v in s["values"] if v is not None))
    rest = ranked[5:]
    i = max(range(len(spec["x"])), key=lambda j: sum(s["values"][j] or 0 for s in rest))
    page.mouse.move(*point(canvas, i))
    values = dict(zip(labels, legend_values(canvas)[1:], strict=True))
    assert values["other 2 models"] == usd(sum(s["values"][i] or 0 for s in rest))


def test_empty_buckets_read_no_calls_bars_are_whole_and_tables_fill_their_cards(
    server: LLMLensServer, page: Any
) -> None:
    # The demo's traffic ends a few minutes before the server started: the last minutes of the hour are empty.
    w = window(server, dt.timedelta(hours=1))
    page.goto(server.url + "/?" + "&".join(f"{k}={v}" for k, v in w.items()))
    for title, empty_text in (("p95 latency of LLM calls", "no calls"), ("Spend per minute", "$0 (no calls)")):
        canvas = chart(page, title)
        spec = spec_of(canvas)
        assert spec["empty"], "no empty bucket in the last hour of the demo"
        i = spec["empty"][-1]
        page.mouse.move(*point(canvas, i))
        assert legend_values(canvas)[1] == empty_text
        values = spec["series"][0]["values"]
        full = next(j for j, v in enumerate(values) if v is not None and j not in spec["empty"])
        page.mouse.move(*point(canvas, full))
        assert "no calls" not in legend_values(canvas)[1]
        # The x scale covers the first and last buckets whole, so no bar is cut at either edge.
        lo, hi = canvas.evaluate("el => [el.uplot.scales.x.min, el.uplot.scales.x.max]")
        assert lo <= spec["x"][0] and hi >= spec["x"][-1] + spec["step_s"]
    page.goto(server.url + "/feedback")
    table = page.locator("section:has(#feat-h) table")
    table_width = table.evaluate("t => t.getBoundingClientRect().width")
    row_width = table.locator("tbody tr").first.evaluate("r => r.getBoundingClientRect().width")
    card_width = page.locator("section:has(#feat-h)").evaluate("s => s.clientWidth")
    assert row_width >= table_width - 2 and table_width >= card_width - 2
