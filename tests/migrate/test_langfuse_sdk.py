"""An app traced with the real Langfuse SDK reaches llmlens by changing LANGFUSE_HOST only.

The app (`_langfuse_app.py`) runs in its own process with the SDK's own exporter (OTLP/HTTP protobuf to
`{LANGFUSE_HOST}/api/public/otel/v1/traces`, `Authorization: Basic`), its OpenAI drop-in and its
LangChain handler calling the stand-in provider. Costs are worked out here from the test price file.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.migrate._support import llmlens, require, run_app
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer
from tests.support.prices import CUSTOM_RATES, assert_cost, write_price_file

pytestmark = pytest.mark.slow

APP = "tests.migrate._langfuse_app"
USAGE = {"input_tokens": 40, "output_tokens": 12, "cached_tokens": 16, "reasoning_tokens": 5}
RATES = CUSTOM_RATES["gpt-4o-mini"]


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fp:
        yield fp


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    data = tmp_path_factory.mktemp("langfuse")
    with LLMLensServer(data, args=["--price-file", str(write_price_file(data))]) as srv:
        yield srv


@pytest.fixture(scope="module")
def app_run(server: LLMLensServer, provider: FakeProvider) -> dict[str, Any]:
    require("langfuse", "langfuse.langchain", "langchain_openai")
    provider.usage = USAGE
    try:
        # With auth off any key pair is accepted: these two were never issued by anyone.
        env = {"LANGFUSE_HOST": server.url, "LANGFUSE_PUBLIC_KEY": "pk-lf-anything", "LANGFUSE_SECRET_KEY": "sk-lf-x"}
        seen = run_app(APP, "--provider", provider.url.rstrip("/"), env=env)
    finally:
        provider.usage = None
    assert seen["flushed"] is True
    assert "Failed to export" not in seen["stderr"], seen["stderr"][-2000:]
    return seen


def _spans(server: LLMLensServer, trace_id: str) -> dict[str, dict[str, Any]]:
    # The SDK's flush returned after llmlens answered the export, and llmlens answers once it is stored.
    rows = server.sql(f"SELECT * FROM spans WHERE trace_id = '{trace_id}' ORDER BY timestamp")
    return {row["name"]: row for row in rows}


def test_every_observation_is_stored_field_by_field(server: LLMLensServer, app_run: dict[str, Any]) -> None:
    spans = _spans(server, app_run["trace_id"])
    root = spans["handle-request"]
    assert root["span_id"] == app_run["root_span_id"] and root["parent_span_id"] is None
    assert root["kind"] == "chain" and root["project"] == "default"
    for row in spans.values():
        assert (row["user_id"], row["session_id"], row["feature"]) == ("lf-user-7", "lf-session-7", "support_chat")
        metadata = json.loads(row["metadata"])
        assert metadata["trace_name"] == "support-request"
        assert metadata["tags"] == ["beta", "support"] and metadata["tier"] == "pro"

    manual = spans["manual-generation"]
    assert manual["span_id"] == app_run["calls"]["manual"]["span_id"]
    assert manual["parent_span_id"] == root["span_id"]
    assert (manual["kind"], manual["model"], manual["status"]) == ("llm", "gpt-4o-mini", "unset")
    # Langfuse's usage parts (input beside input_cached_tokens, output beside its reasoning) become whole counts.
    expected_tokens = (40, 12, 52, 16, 5)
    assert (
        manual["prompt_tokens"],
        manual["completion_tokens"],
        manual["total_tokens"],
        manual["cached_tokens"],
        manual["reasoning_tokens"],
    ) == expected_tokens
    assert (manual["template_id"], manual["template_version"]) == ("support-answer", "3")
    assert manual["ttft_ms"] == app_run["calls"]["manual"]["ttft_ms"] == 250.0
    assert manual["streamed"] is True
    assert (manual["temperature"], manual["max_tokens"]) == (0.3, 64)
    assert manual["prompt"] == "system: Be brief.\nuser: Where is my order?"
    assert manual["response"] == "It ships tomorrow."
    assert json.loads(manual["metadata"])["channel"] == "email"
    # The caller's cost is the call's cost; ours is kept beside it.
    assert manual["cost_usd"] == 0.0003 and manual["cost_source"] == "caller"
    assert_cost(manual["computed_cost_usd"], RATES.openai_cost(40, 12, cached_tokens=16, reasoning_tokens=5))

    failed = spans["failed-generation"]
    assert (failed["status"], failed["error_type"]) == ("error", "rate_limit")
    assert failed["error_message"] == "upstream said 429: rate limit reached"
    assert failed["prompt"] == "Summarise the ticket"


@pytest.mark.parametrize("name, call", [("wrapped-plain", "wrapped_plain"), ("wrapped-stream", "wrapped_stream")])
def test_the_openai_drop_in_is_stored(server: LLMLensServer, app_run: dict[str, Any], name: str, call: str) -> None:
    row = _spans(server, app_run["trace_id"])[name]
    saw = app_run["calls"][call]
    assert row["kind"] == "llm" and row["model"].startswith("gpt-4o-mini")
    assert (row["prompt_tokens"], row["completion_tokens"]) == (saw["prompt_tokens"], saw["completion_tokens"])
    assert (row["cached_tokens"], row["reasoning_tokens"]) == (saw["cached_tokens"], saw["reasoning_tokens"])
    assert row["response"] == saw["text"]
    assert row["cost_source"] == "custom"
    expected = RATES.openai_cost(
        saw["prompt_tokens"],
        saw["completion_tokens"],
        cached_tokens=saw["cached_tokens"],
        reasoning_tokens=saw["reasoning_tokens"],
    )
    assert_cost(row["cost_usd"], expected)
    if call == "wrapped_stream":
        assert row["streamed"] is True
        assert 0 < row["ttft_ms"] <= row["latency_ms"]
    else:
        assert row["ttft_ms"] is None


def test_the_langchain_handler_is_stored_once(server: LLMLensServer, app_run: dict[str, Any]) -> None:
    spans = _spans(server, app_run["trace_id"])
    saw = app_run["calls"]["langchain"]
    row = spans["ChatOpenAI"]
    assert row["kind"] == "llm" and row["response"] == saw["text"]
    assert row["prompt"] == "user: Name a colour."
    assert (row["prompt_tokens"], row["completion_tokens"]) == (saw["prompt_tokens"], saw["completion_tokens"])
    assert (row["cached_tokens"], row["reasoning_tokens"]) == (saw["cached_tokens"], saw["reasoning_tokens"])
    assert_cost(row["cost_usd"], RATES.openai_cost(40, 12, cached_tokens=16, reasoning_tokens=5))
    # The OpenAI drop-in also saw the call LangChain made: one call, counted once.
    priced = server.sql(
        f"SELECT count(*) AS n, sum(cost_usd) AS cost FROM llm_logs WHERE trace_id = '{app_run['trace_id']}' "
        "AND response = 'Fake reply to: Name a colour.' AND cost_usd IS NOT NULL"
    )
    assert priced[0]["n"] == 1


def test_scores_become_llmlens_scores(server: LLMLensServer, app_run: dict[str, Any]) -> None:
    rows = server.sql(f"SELECT * FROM scores WHERE trace_id = '{app_run['trace_id']}' ORDER BY name")
    by_name = {row["name"]: row for row in rows}
    assert set(by_name) == {"escalated", "helpfulness", "resolved"}
    helpful = by_name["helpfulness"]
    assert helpful["span_id"] == app_run["calls"]["manual"]["span_id"]
    assert (helpful["data_type"], helpful["value"], helpful["comment"], helpful["source"]) == (
        "numeric",
        0.75,
        "clear",
        "sdk",
    )
    assert (by_name["resolved"]["data_type"], by_name["resolved"]["label"]) == ("categorical", "yes")
    assert (by_name["escalated"]["data_type"], by_name["escalated"]["value"]) == ("boolean", 0.0)


def test_the_sdk_auth_check_passes(server: LLMLensServer) -> None:
    require("langfuse")
    with httpx.Client(base_url=server.url, auth=("pk-lf-a", "sk-lf-b")) as c:
        projects = c.get("/api/public/projects")
        assert projects.status_code == 200
        assert projects.json()["data"][0]["id"] == "default"
        assert c.get("/api/public/health").json()["status"] == "OK"


# -- auth on: Langfuse key pairs are llmlens keys ---------------------------------------------------------


def _pair(data: Path, project: str) -> dict[str, str]:
    done = llmlens("keys", "create", "--langfuse", "--project", project, "--create-project", "--data", str(data))
    assert done.returncode == 0, done.stderr
    pair = dict(line.split("=", 1) for line in done.stdout.splitlines() if line.startswith("LANGFUSE_"))
    assert pair["LANGFUSE_PUBLIC_KEY"].startswith("pk-lf-") and pair["LANGFUSE_SECRET_KEY"].startswith("sk-lf-")
    return pair


def _admin_key(data: Path, project: str) -> str:
    done = llmlens("keys", "create", "--role", "admin", "--project", project, "--data", str(data))
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[0].strip()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LLMLensServer, dict[str, Any]]]:
    data = tmp_path_factory.mktemp("langfuse-auth")
    keys = {p: {"pair": _pair(data, p), "admin": _admin_key(data, p)} for p in ("alpha", "beta")}
    with LLMLensServer(data, args=["--auth", "on"]) as srv:
        yield srv, keys


def _rows(srv: LLMLensServer, admin_key: str) -> list[dict[str, Any]]:
    return srv.sql("SELECT trace_id, project, name FROM spans", headers={"Authorization": f"Bearer {admin_key}"})


def test_each_pair_writes_into_its_own_project(guarded: tuple[LLMLensServer, dict[str, Any]]) -> None:
    require("langfuse")
    srv, keys = guarded
    seen = {}
    for project in ("alpha", "beta"):
        env = {"LANGFUSE_HOST": srv.url, **keys[project]["pair"]}
        seen[project] = run_app(APP, "--minimal", env=env)
        assert "Failed to export" not in seen[project]["stderr"], seen[project]["stderr"][-2000:]
    for project, other in (("alpha", "beta"), ("beta", "alpha")):
        rows = _rows(srv, keys[project]["admin"])
        assert {r["trace_id"] for r in rows} == {seen[project]["trace_id"]}
        assert {r["project"] for r in rows} == {project}
        assert seen[other]["trace_id"] not in {r["trace_id"] for r in rows}
    scores = srv.sql("SELECT name, project FROM scores", headers={"Authorization": f"Bearer {keys['beta']['admin']}"})
    assert scores == [{"name": "helpfulness", "project": "beta"}]


def test_a_mixed_or_unknown_pair_writes_nothing(guarded: tuple[LLMLensServer, dict[str, Any]]) -> None:
    require("langfuse")
    srv, keys = guarded
    before = {p: len(_rows(srv, keys[p]["admin"])) for p in ("alpha", "beta")}
    alpha, beta = keys["alpha"]["pair"], keys["beta"]["pair"]
    mixed = {"LANGFUSE_PUBLIC_KEY": alpha["LANGFUSE_PUBLIC_KEY"], "LANGFUSE_SECRET_KEY": beta["LANGFUSE_SECRET_KEY"]}
    unknown = {"LANGFUSE_PUBLIC_KEY": alpha["LANGFUSE_PUBLIC_KEY"], "LANGFUSE_SECRET_KEY": "sk-lf-not-issued"}
    for pair in (mixed, unknown):
        token = base64.b64encode(f"{pair['LANGFUSE_PUBLIC_KEY']}:{pair['LANGFUSE_SECRET_KEY']}".encode()).decode()
        r = httpx.post(
            srv.url + "/api/public/otel/v1/traces",
            content=b"",
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/x-protobuf"},
        )
        assert r.status_code == 401, r.text
        # The real SDK with that pair: its export is refused, and it says so.
        seen = run_app(APP, "--minimal", env={"LANGFUSE_HOST": srv.url, **pair})
        assert "401" in seen["stderr"]
    assert {p: len(_rows(srv, keys[p]["admin"])) for p in ("alpha", "beta")} == before


def test_scores_llmlens_cannot_keep_are_refused_by_name(server: LLMLensServer) -> None:
    """The answer the SDK reads: 207 with one error per refused score; the valid ones are kept."""
    trace_id = "ab" * 16
    scores = [
        {"id": "ok-1", "traceId": trace_id, "observationId": "cd" * 8, "name": "kept", "value": 2.5},
        {"id": "text-1", "traceId": trace_id, "name": "note", "value": "fine", "dataType": "TEXT"},
        {"id": "sess-1", "sessionId": "s-1", "name": "session-score", "value": 1},
    ]
    with httpx.Client(base_url=server.url, auth=("pk-lf-a", "sk-lf-b")) as c:
        r = c.post("/api/public/scores", json=scores)
        assert r.status_code == 207, r.text
        doc = r.json()
        assert (doc["accepted"], doc["rejected"]) == (1, 2)
        messages = [e["message"] for e in doc["errors"]]
        assert "TEXT has no llmlens equivalent yet" in messages[0]
        assert "scores by sessionId alone have no llmlens equivalent yet" in messages[1]
        # SDK v3 and v4 send scores as ingestion events; other event types are refused one by one.
        batch = [
            {
                "id": "e1",
                "type": "score-create",
                "timestamp": "2026-11-20T10:00:00Z",
                "body": {"id": "v3-1", "traceId": trace_id, "name": "kept", "value": 1.5},
            },
            {"id": "e2", "type": "trace-create", "timestamp": "2026-11-20T10:00:00Z", "body": {"id": "t"}},
        ]
        r = c.post("/api/public/ingestion", json={"batch": batch})
        assert r.status_code == 207, r.text
        assert r.json()["successes"] == [{"id": "e1", "status": 201}]
        assert [e["id"] for e in r.json()["errors"]] == ["e2"]
    rows = server.sql(f"SELECT name, value, span_id FROM scores WHERE trace_id = '{trace_id}' ORDER BY value")
    assert rows == [
        {"name": "kept", "value": 1.5, "span_id": None},
        {"name": "kept", "value": 2.5, "span_id": "cd" * 8},
    ]
