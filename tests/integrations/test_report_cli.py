"""`llmlens report cost|latency|tools` and `llmlens tail`, run as a user runs them, on the demo data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
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


def test_cost_by_user_shows_the_spender_and_matches_the_api(demo: LLMLensServer) -> None:
    table = llmlens("report", "cost", "--by", "user", "--window", "30d", "--url", demo.url)
    assert table.returncode == 0, table.stderr
    assert "Cost by user" in table.stdout and "user-free-07" in table.stdout
    as_json = llmlens("report", "cost", "--by", "user", "--window", "30d", "--url", demo.url, "--format", "json")
    doc = json.loads(as_json.stdout)
    api = httpx.get(demo.url + "/api/v1/cost", params={"range": "30d"}).json()["cost"]
    assert doc["total_usd"] == pytest.approx(api["total_usd"])
    assert [u["user_id"] for u in doc["top_users"]] == [u["user_id"] for u in api["top_users"]]
    top = doc["top_users"][0]
    assert f"${top['cost_usd']:,.2f}" in table.stdout or f"${top['cost_usd']:.4f}" in table.stdout


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
        "llmlens report: --window must be a duration like 30m, 6h, 1d or 2w, got 'a fortnight'"
    )


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
    try:
        time.sleep(1.5)  # let it take its first look
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
        demo.ingest(calls[:1])
        time.sleep(0.5)
        demo.ingest(calls[1:])
        out, err = tail.communicate(timeout=30)
    finally:
        if tail.poll() is None:
            tail.kill()
    assert tail.returncode == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["user_id"] for r in rows] == ["tail-user-0", "tail-user-1"]
    assert rows[1]["response"] == "reply 1" and rows[0]["latency_ms"] == 120


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
