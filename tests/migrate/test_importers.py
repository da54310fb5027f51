"""`llmlens import --from langfuse|phoenix FILE`: history from the peers' export files, as the native import.

The files under fixtures/ are written by fixtures/make_exports.py in the layouts the peers document.
Each is imported into a real server (and one into a store opened by the command), checked field by
field, imported again to show nothing is stored twice, and its one bad record is reported by line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.migrate._support import llmlens
from tests.migrate.fixtures import make_exports as fx
from tests.support.llmlens_server import LLMLensServer
from tests.support.prices import CUSTOM_RATES, assert_cost, write_price_file

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MINI, CLAUDE = CUSTOM_RATES["gpt-4o-mini"], CUSTOM_RATES["claude-3-5-haiku"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    data = tmp_path_factory.mktemp("imports")
    with LLMLensServer(data, args=["--price-file", str(write_price_file(data))]) as srv:
        yield srv


def _import(server: LLMLensServer, source: str, *files: str) -> tuple[int, str]:
    paths = [str(FIXTURES / name) for name in files]
    done = llmlens("import", "--from", source, *paths, "--url", server.url)
    return done.returncode, done.stdout + done.stderr


def _by_span(server: LLMLensServer, trace_id: str) -> dict[str, dict[str, Any]]:
    return {r["span_id"]: r for r in server.sql(f"SELECT * FROM spans WHERE trace_id = '{trace_id}'")}


@pytest.fixture(scope="module")
def langfuse_import(server: LLMLensServer) -> str:
    code, out = _import(
        server, "langfuse", "langfuse-traces.jsonl", "langfuse-observations.jsonl", "langfuse-scores.jsonl"
    )
    assert code == 1, out  # two records are refused, so the command says so in its exit code
    return out


def test_langfuse_blob_export_is_stored_field_by_field(server: LLMLensServer, langfuse_import: str) -> None:
    spans = _by_span(server, fx.LF_TRACE)
    assert set(spans) == {fx.LF_ROOT, fx.LF_GEN, fx.LF_GEN_PAID, fx.LF_FAILED, fx.LF_TOOL, fx.LF_CLAUDE}
    for row in spans.values():
        # The trace record's user, session, tags and metadata reach every observation of its trace.
        assert (row["user_id"], row["session_id"], row["feature"]) == (
            "lf-import-user",
            "lf-import-session",
            "checkout",
        )
        metadata = json.loads(row["metadata"])
        assert metadata["tags"] == ["imported", "checkout"] and metadata["release"] == "r42"
        assert metadata["trace_name"] == "checkout-help" and metadata["plan"] == "team"
        assert row["environment"] == "production"
    root = spans[fx.LF_ROOT]
    assert (root["kind"], root["parent_span_id"], root["latency_ms"]) == ("chain", None, 2500.0)
    assert root["timestamp"].startswith("2026-11-20T10:00:00")

    gen = spans[fx.LF_GEN]
    assert (gen["kind"], gen["model"], gen["parent_span_id"]) == ("llm", "gpt-4o-mini", fx.LF_ROOT)
    assert (gen["prompt_tokens"], gen["completion_tokens"], gen["total_tokens"]) == (40, 12, 52)
    assert (gen["cached_tokens"], gen["reasoning_tokens"]) == (16, 5)
    assert (gen["latency_ms"], gen["ttft_ms"], gen["streamed"]) == (1000.0, 300.0, True)
    assert (gen["temperature"], gen["max_tokens"]) == (0.2, 100)
    assert (gen["template_id"], gen["template_version"]) == ("checkout-answer", "2")
    assert gen["prompt"] == "system: You help with orders.\nuser: Where is A1?"
    assert gen["response"] == "A1 ships tomorrow."
    assert json.loads(gen["metadata"])["channel"] == "email"
    # No cost in the export: computed from the price file.
    assert gen["cost_source"] == "custom"
    assert_cost(gen["cost_usd"], MINI.openai_cost(40, 12, cached_tokens=16, reasoning_tokens=5))

    paid = spans[fx.LF_GEN_PAID]
    assert paid["cost_usd"] == 0.0007 and paid["cost_source"] == "caller"
    assert_cost(paid["computed_cost_usd"], CUSTOM_RATES["gpt-4o"].openai_cost(100, 20))
    assert (paid["prompt"], paid["response"]) == ("Summarise the order history", "Two orders, both shipped.")

    failed = spans[fx.LF_FAILED]
    assert (failed["status"], failed["error_type"], failed["error_message"]) == (
        "error",
        "timeout",
        "Request timed out",
    )

    tool = spans[fx.LF_TOOL]
    assert (tool["kind"], tool["name"]) == ("tool", "lookup_order")
    tools = server.sql(f"SELECT * FROM tool_logs WHERE span_id = '{fx.LF_TOOL}'")
    assert tools[0]["tool_name"] == "lookup_order"
    assert json.loads(tools[0]["args"]) == {"order_id": "A1"}
    assert json.loads(tools[0]["result"]) == {"status": "shipped"}

    claude = spans[fx.LF_CLAUDE]
    # Langfuse's input leaves the cache reads out, as Anthropic does; stored and priced that way.
    assert (claude["prompt_tokens"], claude["cached_tokens"], claude["completion_tokens"]) == (30, 10, 8)
    assert_cost(claude["cost_usd"], CLAUDE.anthropic_cost(30, 8, cache_read_tokens=10))


def test_langfuse_scores_and_rejects(server: LLMLensServer, langfuse_import: str) -> None:
    rows = server.sql(f"SELECT * FROM scores WHERE trace_id = '{fx.LF_TRACE}' ORDER BY name")
    by_name = {row["name"]: row for row in rows}
    assert set(by_name) == {"accuracy", "tone"}
    assert (by_name["accuracy"]["value"], by_name["accuracy"]["span_id"]) == (0.9, fx.LF_GEN)
    assert (by_name["accuracy"]["comment"], by_name["accuracy"]["source"]) == ("checked by hand", "sdk")
    assert (by_name["tone"]["label"], by_name["tone"]["source"]) == ("friendly", "human")
    assert "imported 8 events; rejected 2 lines" in langfuse_import
    assert "langfuse-observations.jsonl:7: start_time (or startTime) is required" in langfuse_import
    assert "langfuse-scores.jsonl:3: only scores of an observation are imported" in langfuse_import


def test_langfuse_import_again_stores_nothing_twice(server: LLMLensServer, langfuse_import: str) -> None:
    before = server.sql("SELECT count(*) AS n FROM spans")[0]["n"]
    scores = server.sql("SELECT count(*) AS n FROM scores")[0]["n"]
    code, out = _import(
        server, "langfuse", "langfuse-traces.jsonl", "langfuse-observations.jsonl", "langfuse-scores.jsonl"
    )
    assert code == 1, out
    assert server.sql("SELECT count(*) AS n FROM spans")[0]["n"] == before
    assert server.sql("SELECT count(*) AS n FROM scores")[0]["n"] == scores


def test_langfuse_ui_csv_export(tmp_path: Path) -> None:
    """The UI's CSV (camelCase columns, a cell over three lines), imported into a store the command opens."""
    data = tmp_path / "store"
    write_price_file(tmp_path)
    done = llmlens(
        "import",
        "--from",
        "langfuse",
        str(FIXTURES / "langfuse-observations.csv"),
        "--data",
        str(data),
        "--quiet",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "imported 2 events; rejected 1 lines" in done.stdout
    assert "langfuse-observations.csv:6: start_time is not a time: 'yesterday'" in done.stdout
    sql = llmlens(
        "sql", "--data", str(data), "--format", "json", f"SELECT * FROM spans WHERE trace_id = '{fx.LF_CSV_TRACE}'"
    )
    assert sql.returncode == 0, sql.stderr
    rows = {row["span_id"]: row for row in json.loads(sql.stdout)}
    gen = rows["c1c1c1c1c1c1c1c1"]
    assert (gen["kind"], gen["model"], gen["user_id"], gen["feature"]) == ("llm", "gpt-4o-mini", "csv-user", "refunds")
    assert (gen["prompt_tokens"], gen["completion_tokens"], gen["ttft_ms"]) == (60, 10, 200.0)
    assert gen["prompt"] == "Refund order B7?\nIt arrived broken.\nThanks"
    assert gen["response"] == "Refund issued." and gen["parent_span_id"] == "c0c0c0c0c0c0c0c0"
    assert json.loads(gen["metadata"])["trace_name"] == "refund-flow"
    assert gen["cost_usd"] is not None and gen["cost_source"] == "library"  # no price file here: genai-prices


def test_phoenix_parquet_export(server: LLMLensServer) -> None:
    code, out = _import(server, "phoenix", "phoenix-spans.parquet")
    assert code == 1, out
    assert "imported 5 events; rejected 1 lines" in out
    assert "phoenix-spans.parquet record:6: context.span_id is required" in out
    spans = _by_span(server, fx.PHX_TRACE)
    assert set(spans) == {fx.PHX_ROOT, fx.PHX_LLM, fx.PHX_STREAM, fx.PHX_RETRIEVER, fx.PHX_FAILED}
    for row in spans.values():
        # Set on the root span only; its calls inherit them, as the live receiver does.
        assert (row["user_id"], row["session_id"]) == ("phx-import-user", "phx-import-session")
    llm = spans[fx.PHX_LLM]
    assert (llm["kind"], llm["model"], llm["provider"]) == ("llm", "gpt-4o-mini", "openai")
    assert (llm["prompt_tokens"], llm["completion_tokens"], llm["cached_tokens"], llm["reasoning_tokens"]) == (
        40,
        12,
        16,
        5,
    )
    assert (llm["temperature"], llm["template_version"], llm["message_id"]) == (0.1, "v4", "chatcmpl-phx-1")
    assert (llm["prompt"], llm["response"]) == ("user: Capital of France?", "Paris.")
    assert_cost(llm["cost_usd"], MINI.openai_cost(40, 12, cached_tokens=16, reasoning_tokens=5))
    stream = spans[fx.PHX_STREAM]
    assert (stream["streamed"], stream["ttft_ms"]) == (True, 200.0)
    assert_cost(stream["cost_usd"], MINI.openai_cost(30, 6))
    root = spans[fx.PHX_ROOT]
    assert root["kind"] == "chain" and json.loads(root["metadata"]) == {"feature": "geo_chat", "tier": "pro"}
    assert root["feature"] == "geo_chat"
    docs = server.sql(f"SELECT * FROM retrieval_logs WHERE span_id = '{fx.PHX_RETRIEVER}'")
    assert docs[0]["query"] == "capitals of europe"
    (doc,) = json.loads(docs[0]["documents"])
    assert (doc["id"], doc["content"], doc["score"]) == ("doc-1", "Paris is the capital of France.", 0.92)
    failed = spans[fx.PHX_FAILED]
    assert (failed["status"], failed["error_type"]) == ("error", "rate_limit")
    # Imported again: nothing new.
    before = server.sql("SELECT count(*) AS n FROM spans")[0]["n"]
    assert _import(server, "phoenix", "phoenix-spans.parquet")[0] == 1
    assert server.sql("SELECT count(*) AS n FROM spans")[0]["n"] == before


def test_phoenix_otlp_json(server: LLMLensServer) -> None:
    code, out = _import(server, "phoenix", "phoenix-spans.otlp.json")
    assert code == 0, out
    assert "imported 1 events; rejected 0 lines" in out
    (row,) = server.sql(f"SELECT * FROM llm_logs WHERE trace_id = '{fx.OTLP_TRACE}'")
    assert (row["span_id"], row["model"], row["user_id"]) == (fx.OTLP_SPAN, "gpt-4o", "otlp-user")
    assert (row["prompt_tokens"], row["completion_tokens"], row["latency_ms"]) == (20, 4, 700.0)
    assert (row["prompt"], row["response"]) == ("user: Hello from OTLP JSON", "Hello back.")
    assert_cost(row["cost_usd"], CUSTOM_RATES["gpt-4o"].openai_cost(20, 4))
