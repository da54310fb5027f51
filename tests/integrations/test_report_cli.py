"""`llmlens report cost|latency|tools` and `llmlens tail`, run as a user runs them, on the demo data."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO, Any

import pytest
from tests.integrations._sent_calls import (
    TIER_BUDGETS,
    SentServer,
    SentTool,
    assert_near_percentile,
    assert_printed,
    month_start,
    ms_from_cell,
    percentile_cont,
    serve_sent_calls,
    sums,
    table_rows,
)
from tests.support.llmlens_server import LLMLensServer


def llmlens(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmlens.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    with LLMLensServer(tmp_path_factory.mktemp("report-demo"), demo=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def sent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentServer]:
    """A server with only the calls of tests/integrations/_sent_calls.py: every figure is known."""
    with serve_sent_calls(tmp_path_factory.mktemp("report-sent")) as server:
        yield server


def _report(sent: SentServer, *args: str) -> tuple[str, dict[str, Any]]:
    """The report over the last two hours, printed as a table and as JSON."""
    table = llmlens("report", *args, "--window", "2h", "--url", sent.srv.url)
    assert table.returncode == 0, table.stderr
    as_json = llmlens("report", *args, "--window", "2h", "--url", sent.srv.url, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    doc: dict[str, Any] = json.loads(as_json.stdout)
    return table.stdout, doc


def test_cost_by_user_is_what_each_user_spent(sent: SentServer) -> None:
    table, doc = _report(sent, "cost", "--by", "user")
    users = sums(sent.calls, lambda c: c.user_id)
    total = sum(c.cost_usd for c in sent.calls)
    assert doc["total_usd"] == pytest.approx(total, rel=1e-9) and doc["calls"] == len(sent.calls)
    assert [u["user_id"] for u in doc["top_users"]] == list(users)
    rows = table_rows(table)
    since = month_start(sent.now)
    for got in doc["top_users"]:
        user = got["user_id"]
        cost, n = users[user]
        tier = next(c.tier for c in sent.calls if c.user_id == user)
        month_to_date = sum(c.cost_usd for c in sent.calls if c.user_id == user and c.timestamp >= since)
        budget = TIER_BUDGETS[tier] if tier else None
        used = month_to_date / budget if budget else None
        assert (got["calls"], got["tier"], got["monthly_budget_usd"]) == (n, tier, budget), user
        assert got["cost_usd"] == pytest.approx(cost, rel=1e-9), user
        assert got["month_to_date_usd"] == pytest.approx(month_to_date, rel=1e-9), user
        assert got["budget_used"] == (None if used is None else pytest.approx(used, rel=1e-9)), user
        cells = rows[user]
        assert cells[:3] == [user, tier or "—", str(n)]
        for cell, value in zip(cells[3:], (cost, month_to_date, budget, used), strict=True):
            assert_printed(cell, value, f"{user} table")
    printed_total = re.search(r"Total (\S+) over (\d+) calls\.", table)
    assert printed_total is not None and printed_total[2] == str(len(sent.calls))
    assert_printed(printed_total[1], total, "total")


def test_cost_by_model_and_feature_are_the_sums_of_the_calls(sent: SentServer) -> None:
    total = sum(c.cost_usd for c in sent.calls)
    table, doc = _report(sent, "cost", "--by", "model")
    models = sums(sent.calls, lambda c: c.model)
    assert [m["model"] for m in doc["by_model"]] == list(models)
    rows = table_rows(table)
    for got in doc["by_model"]:
        cost, n = models[got["model"]]
        assert got["calls"] == n and got["cost_usd"] == pytest.approx(cost, rel=1e-9), got["model"]
        cells = rows[got["model"]]
        assert cells[:2] == [got["model"], str(n)]
        assert_printed(cells[2], cost, got["model"])
        assert_printed(cells[3], cost / total, got["model"] + " share")

    table, doc = _report(sent, "cost", "--by", "feature")
    features = sums(sent.calls, lambda c: c.feature)
    cheapest = min(cost / n for cost, n in features.values())
    assert [f["feature"] for f in doc["by_feature"]] == list(features)
    rows = table_rows(table)
    for got in doc["by_feature"]:
        feature = got["feature"]
        cost, n = features[feature]
        assert got["calls"] == n and got["cost_usd"] == pytest.approx(cost, rel=1e-9), feature
        assert got["cost_per_call_usd"] == pytest.approx(cost / n, rel=1e-9), feature
        assert got["times_cheapest"] == pytest.approx(cost / n / cheapest, rel=1e-9), feature
        cells = rows[feature]
        assert cells[:2] == [feature, str(n)]
        for cell, value in zip(cells[2:], (cost, cost / n, cost / n / cheapest), strict=True):
            assert_printed(cell, value, feature)


def test_latency_percentiles_are_those_of_the_calls(sent: SentServer) -> None:
    table, doc = _report(sent, "latency")
    by_model: dict[str, list[tuple[float, float]]] = {}
    for c in sent.calls:
        by_model.setdefault(c.model, []).append((c.latency_ms, c.ttft_ms))
    p95 = {m: percentile_cont([latency for latency, _ in runs], 0.95) for m, runs in by_model.items()}
    assert [m["model"] for m in doc["by_model"]] == sorted(by_model, key=lambda m: -p95[m])  # slowest first
    rows = table_rows(table)
    for got in doc["by_model"]:
        model = got["model"]
        latencies = [latency for latency, _ in by_model[model]]
        ttfts = [ttft for _, ttft in by_model[model]]
        exact = {
            "p50_ms": percentile_cont(latencies, 0.5),
            "p95_ms": percentile_cont(latencies, 0.95),
            "p99_ms": percentile_cont(latencies, 0.99),
            "ttft_p50_ms": percentile_cont(ttfts, 0.5),
            "ttft_p95_ms": percentile_cont(ttfts, 0.95),
        }
        assert got["calls"] == len(latencies), model
        for key, value in exact.items():
            assert_near_percentile(got[key], value, 0.05, f"{model} {key} in JSON")  # rounded to 0.1 ms
        cells = rows[model]
        assert cells[:2] == [model, str(len(latencies))]
        for cell, key in zip(cells[2:7], exact, strict=True):
            printed, rounding = ms_from_cell(cell)
            assert_near_percentile(printed, exact[key], rounding, f"{model} {key} in the table")


def test_tool_success_rates_and_latencies_are_those_of_the_calls(sent: SentServer) -> None:
    table, doc = _report(sent, "tools")
    by_tool: dict[str, list[SentTool]] = {}
    for t in sent.tools:
        by_tool.setdefault(t.tool_name, []).append(t)
    success = {name: sum(t.success for t in runs) / len(runs) for name, runs in by_tool.items()}
    assert [t["tool_name"] for t in doc["tools"]] == sorted(by_tool, key=lambda n: (success[n], -len(by_tool[n])))
    rows = table_rows(table)
    for got in doc["tools"]:
        name = got["tool_name"]
        latencies = [t.latency_ms for t in by_tool[name]]
        failures = sum(not t.success for t in by_tool[name])
        assert (got["calls"], got["failures"]) == (len(latencies), failures), name
        assert got["success_rate"] == pytest.approx(success[name], rel=1e-12), name
        # The mean is exact; the percentiles come from the tool rollups' sketches (documented within 1 %).
        figures = (sum(latencies) / len(latencies), percentile_cont(latencies, 0.5), percentile_cont(latencies, 0.95))
        assert got["avg_ms"] == round(figures[0], 1), name
        assert_near_percentile(got["p50_ms"], figures[1], 0.05, f"{name} p50 in JSON")
        assert_near_percentile(got["p95_ms"], figures[2], 0.05, f"{name} p95 in JSON")
        cells = rows[name]
        assert cells[:3] == [name, str(len(latencies)), str(failures)]
        assert_printed(cells[3], success[name], name + " success")
        printed_avg, rounding = ms_from_cell(cells[4])
        assert abs(printed_avg - figures[0]) <= rounding, f"{name}: printed {cells[4]}, exact {figures[0]}"
        for cell, value in zip(cells[5:7], figures[1:], strict=True):
            printed, rounding = ms_from_cell(cell)
            assert_near_percentile(printed, value, rounding, f"{name}: printed {cell}")
    assert "upstream timed out" in table  # the failures are listed with their error


@pytest.mark.parametrize(
    "by, expected", [("model", "gpt-4o"), ("feature", "× cheapest"), ("template", "support_answer")]
)
def test_cost_by_model_feature_template(demo: LLMLensServer, by: str, expected: str) -> None:
    result = llmlens("report", "cost", "--by", by, "--window", "14d", "--url", demo.url)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert "Total $" in result.stdout


def test_latency_and_tools_reports(demo: LLMLensServer) -> None:
    latency = llmlens("report", "latency", "--window", "7d", "--url", demo.url)
    assert latency.returncode == 0, latency.stderr
    assert "Latency by model" in latency.stdout and "TTFT p50" in latency.stdout and "Slowest calls" in latency.stdout
    tools = llmlens("report", "tools", "--window", "7d", "--url", demo.url)
    assert tools.returncode == 0, tools.stderr
    assert "search_web" in tools.stdout and "Recent failures" in tools.stdout
    doc = json.loads(llmlens("report", "tools", "--window", "7d", "--url", demo.url, "--format", "json").stdout)
    assert doc["tools"][0]["tool_name"] == "search_web"  # the failing tool comes first
    assert doc["tools"][0]["failures"] > 0


def test_bad_window_is_one_clear_line(demo: LLMLensServer) -> None:
    result = llmlens("report", "cost", "--window", "a fortnight", "--url", demo.url)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "llmlens report: --window must be a relative time like 30m, 12h, 7d or 2w (that long ago), "
        "an ISO 8601 time like 2026-03-01T12:00:00Z, or epoch seconds, got 'a fortnight'"
    )


def _lines_of(stream: IO[str]) -> tuple[queue.Queue[str], threading.Thread]:
    """The lines of a child's output as they come, read by a thread (so waits can have a deadline)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    return lines, reader


def _next_line(lines: queue.Queue[str], what: str, timeout_s: float = 30) -> str:
    try:
        return lines.get(timeout=timeout_s)
    except queue.Empty:
        raise AssertionError(f"llmlens tail printed no {what} within {timeout_s:.0f} s") from None


def test_tail_streams_new_calls(demo: LLMLensServer) -> None:
    tail = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llmlens.cli",
            "tail",
            "--url",
            demo.url,
            "--since",
            "0",
            "--interval",
            "0.2",
            "--limit",
            "2",
            "--format",
            "json",
            "--feature",
            "tail-test",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert tail.stdout is not None and tail.stderr is not None
    (out, out_reader), (err, err_reader) = _lines_of(tail.stdout), _lines_of(tail.stderr)
    calls: list[dict[str, Any]] = [
        {
            "type": "llm",
            "model": "gpt-4o-mini",
            "feature": "tail-test",
            "user_id": f"tail-user-{i}",
            "prompt": "q",
            "response": f"reply {i}",
            "latency_ms": 120 + i,
            "prompt_tokens": 5,
            "completion_tokens": 3,
        }
        for i in range(2)
    ]
    try:
        # It has taken its first look: calls stamped from now on are its to show.
        assert _next_line(err, "line on stderr").startswith("Watching for LLM calls from ")
        demo.ingest(calls[:1])
        rows = [json.loads(_next_line(out, "first call"))]
        # The second arrives only once the first was shown: it must come in a later poll.
        demo.ingest(calls[1:])
        rows.append(json.loads(_next_line(out, "second call")))
        assert tail.wait(timeout=30) == 0  # --limit 2 reached
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()
    assert [r["user_id"] for r in rows] == ["tail-user-0", "tail-user-1"]
    assert rows[1]["response"] == "reply 1" and rows[0]["latency_ms"] == 120
    out_reader.join(10)
    err_reader.join(10)
    assert (list(out.queue), list(err.queue)) == ([], [])  # nothing else printed


def test_tail_prints_a_table(demo: LLMLensServer) -> None:
    result = llmlens("tail", "--url", demo.url, "--since", "30d", "--limit", "3", "--interval", "0.2", timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "model" in line)
    for column in ("time", "model", "feature", "user", "status", "latency", "tokens", "cost"):
        assert column in header


def test_reports_from_a_data_directory_match_the_server(demo: LLMLensServer) -> None:
    via_url = json.loads(llmlens("report", "latency", "--window", "7d", "--url", demo.url, "--format", "json").stdout)
    demo.stop()
    try:
        result = llmlens("report", "latency", "--window", "7d", "--data", str(demo.data_dir), "--format", "json")
        assert result.returncode == 0, result.stderr
        via_data = json.loads(result.stdout)
        # Same models and calls (the window slides by the seconds between the two runs).
        calls_data = {m["model"]: m["calls"] for m in via_data["by_model"]}
        calls_url = {m["model"]: m["calls"] for m in via_url["by_model"]}
        assert set(calls_data) == set(calls_url)
        for model, calls in calls_url.items():
            assert calls_data[model] == pytest.approx(calls, rel=0.02), model
        table = llmlens("report", "cost", "--by", "feature", "--window", "7d", "--data", str(demo.data_dir))
        assert table.returncode == 0 and "Cost by feature" in table.stdout
    finally:
        demo.start()
