"""The `llmlens` command as a user runs it: import, sql (server and store), reprice, demo."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from tests.support.llmlens_server import LLMLensServer

from llmlens.demo import FEATURES


def llmlens(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmlens.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        input=stdin,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )


def _log_lines() -> str:
    entry = {
        "timestamp": 1767225600,
        "model": "gpt-4o-mini",
        "prompt": "p",
        "response": "r",
        "prompt_tokens": 2000,
        "completion_tokens": 500,
        "total_tokens": 2500,
        "latency_ms": 800.0,
        "cost_usd": 0.0006,
        "metadata": {"user_id": "u7", "feature": "summarize"},
    }
    tool = {
        "timestamp": 1767225601,
        "tool_name": "calculator",
        "args": {"x": 1},
        "result": 2,
        "latency_ms": 3,
        "success": True,
        "error": None,
    }
    return "\n".join(
        [
            "INFO:llm_observability:" + json.dumps(entry),
            "2026-01-01 00:00:01,000 INFO llm_observability " + json.dumps(tool),
            "",
            "INFO:llm_observability:{broken json",
            json.dumps({**entry, "prompt_tokens": -1}),
            "just some other log line",
        ]
    )


def test_import_into_a_store_then_query_it_with_the_store_open(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(_log_lines())
    data = tmp_path / "data"
    result = llmlens("import", str(log), "--data", str(data), "--quiet")
    assert result.returncode == 1, result.stderr  # some lines were rejected
    assert "imported 2 events; rejected 3 lines" in result.stdout
    assert f"{log}:4:" in result.stdout and f"{log}:5:" in result.stdout and f"{log}:6:" in result.stdout
    assert "prompt_tokens" in result.stdout

    out = llmlens(
        "sql",
        "SELECT user_id, SUM(cost_usd) as total_cost FROM llm_logs GROUP BY user_id",
        "--data",
        str(data),
        "--format",
        "json",
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"user_id": "u7", "total_cost": 0.0006}]

    out = llmlens("sql", "SELECT tool_name, success FROM tool_logs", "--data", str(data), "--format", "csv")
    assert list(csv.reader(io.StringIO(out.stdout))) == [["tool_name", "success"], ["calculator", "True"]]

    table = llmlens("sql", "SELECT model, prompt_tokens FROM llm_logs", "--data", str(data))
    assert "gpt-4o-mini" in table.stdout and "2000" in table.stdout and "1 row" in table.stdout

    again = llmlens("import", str(log), "--data", str(data), "--quiet")
    assert "imported 2 events" in again.stdout
    count = llmlens("sql", "SELECT count(*) AS n FROM llm_logs", "--data", str(data), "--format", "json")
    assert json.loads(count.stdout) == [{"n": 1}], "re-importing the same file must not duplicate calls"


def test_sql_errors_are_one_clear_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    llmlens("import", "-", "--data", str(data), "--quiet", stdin=_log_lines().splitlines()[0])
    refused = llmlens("sql", "DROP TABLE llm_logs", "--data", str(data))
    assert refused.returncode == 1 and "only read-only SELECT" in refused.stderr
    assert "Traceback" not in refused.stderr
    bad = llmlens("sql", "SELECT nope FROM llm_logs", "--data", str(data))
    assert bad.returncode == 1 and "nope" in bad.stderr and "Traceback" not in bad.stderr


def test_import_and_sql_through_a_running_server(server: LLMLensServer, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(_log_lines())
    result = llmlens("import", str(log), "--url", server.url, "--quiet")
    assert "imported 2 events; rejected 3 lines" in result.stdout
    out = llmlens(
        "sql",
        "SELECT feature, COUNT(*) as calls FROM llm_logs WHERE user_id = 'u7' GROUP BY feature",
        "--url",
        server.url,
        "--format",
        "json",
    )
    assert json.loads(out.stdout) == [{"feature": "summarize", "calls": 1}]


def test_reprice_applies_a_new_custom_price(tmp_path: Path) -> None:
    data = tmp_path / "data"
    event = {
        "timestamp": 1767225600,
        "model": "my-llama",
        "provider": "vllm",
        "prompt": "p",
        "response": "r",
        "prompt_tokens": 1_000_000,
        "completion_tokens": 2_000_000,
        "latency_ms": 5,
    }
    llmlens("import", "-", "--data", str(data), "--quiet", stdin=json.dumps(event))
    before = llmlens("sql", "SELECT cost_usd, cost_source FROM llm_logs", "--data", str(data), "--format", "json")
    assert json.loads(before.stdout) == [{"cost_usd": None, "cost_source": "unpriced"}]
    prices = tmp_path / "prices.toml"
    prices.write_text('[[models]]\nmatch = "my-llama"\ninput_per_mtok = 0.5\noutput_per_mtok = 1.5\n')
    out = llmlens("reprice", "--data", str(data), "--price-file", str(prices))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("repriced 1 calls with prices custom:"), out.stdout
    after = llmlens(
        "sql", "SELECT cost_usd, cost_source, price_version FROM llm_logs", "--data", str(data), "--format", "json"
    )
    row = json.loads(after.stdout)[0]
    assert (
        row["cost_usd"] == 0.5 + 3.0 and row["cost_source"] == "custom" and row["price_version"].startswith("custom:")
    )


def test_demo_fills_a_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = llmlens("demo", "--data", str(data), "--days", "2")
    assert out.returncode == 0, out.stderr
    rows = json.loads(
        llmlens(
            "sql",
            "SELECT count(DISTINCT model) AS models, count(DISTINCT feature) AS features, "
            "count(DISTINCT template_version) AS versions FROM llm_logs",
            "--data",
            str(data),
            "--format",
            "json",
        ).stdout
    )[0]
    assert rows["models"] >= 5 and rows["versions"] >= 4
    features = json.loads(
        llmlens("sql", "SELECT DISTINCT feature FROM llm_logs", "--data", str(data), "--format", "json").stdout
    )
    # The four main features, plus those of the scenes planted for the Insights page.
    assert set(FEATURES) <= {r["feature"] for r in features}
