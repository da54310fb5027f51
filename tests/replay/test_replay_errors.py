"""A replay that cannot be sent says which process lacks which key, or which upstream to add for a provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer

MESSAGES = [{"role": "user", "content": "Say hi"}]


def llm_span(provider: str, model: str) -> dict[str, Any]:
    return {
        "type": "span",
        "kind": "llm",
        "trace_id": uuid.uuid4().hex,
        "span_id": uuid.uuid4().hex[:16],
        "provider": provider,
        "model": model,
        "input_messages": MESSAGES,
        "latency_ms": 300,
    }


def cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command in a shell with no provider keys and no llmlens settings, plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LLMLENS_") and not k.endswith("_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "llmlens.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**base, "COLUMNS": "250", **(env or {})},
        timeout=120,
    )


@pytest.fixture(scope="module")
def keyless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LLMLensServer, FakeProvider]]:
    """A server without OPENAI_API_KEY, with a `groq` upstream (key set) and no `gemini` or `vllm` one."""
    with FakeProvider(api_key=None) as fp:
        args = ["--upstream", f"openai={fp.openai_base_url}", "--upstream", f"groq={fp.openai_base_url}"]
        env = {"OPENAI_API_KEY": "", "GEMINI_API_KEY": "", "VLLM_API_KEY": "", "GROQ_API_KEY": "gq-test"}
        with LLMLensServer(tmp_path_factory.mktemp("keyless"), args=args, env=env) as srv:
            yield srv, fp


def _replay(srv: LLMLensServer, span: dict[str, Any], models: list[str] | None = None) -> Any:
    srv.ingest([span])
    with srv.client() as c:
        return c.post("/api/v1/replay", json={"span_id": span["span_id"], "models": models or []})


@pytest.mark.parametrize(("provider", "model", "upstream"), [("gemini", "gemini-1.5-flash", "gemini"),
                                                               ("vLLM", "llama-3-8b-instruct", "vllm")])  # fmt: skip
def test_a_provider_without_an_upstream_names_the_upstream_to_add(
    keyless: tuple[LLMLensServer, FakeProvider], provider: str, model: str, upstream: str
) -> None:
    srv, fp = keyless
    fp.reset()
    r = _replay(srv, llm_span(provider, model))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert f"provider {upstream!r}" in error
    assert f"the llmlens server (pid {srv.proc.pid})" in error  # type: ignore[union-attr]
    assert f"--upstream {upstream}=URL" in error and "[upstreams]" in error
    assert f"{upstream.upper()}_API_KEY" in error
    assert "OPENAI_API_KEY" not in error
    assert fp.requests == []


def test_a_provider_with_its_upstream_is_replayed_there(keyless: tuple[LLMLensServer, FakeProvider]) -> None:
    srv, fp = keyless
    fp.reset()
    r = _replay(srv, llm_span("groq", "llama-3.1-8b-instant"))
    assert r.status_code == 200, r.text
    assert fp.last_request.headers["authorization"] == "Bearer gq-test"
    assert fp.last_request.json["model"] == "llama-3.1-8b-instant"


def test_a_missing_key_names_the_server_not_the_shell(keyless: tuple[LLMLensServer, FakeProvider]) -> None:
    srv, fp = keyless
    fp.reset()
    span = llm_span("gemini", "gemini-1.5-flash")
    r = _replay(srv, span, ["gpt-4o-mini"])  # an OpenAI model: the openai upstream, whose key the server lacks
    assert r.status_code == 400
    error = r.json()["error"]
    assert error.startswith(f"the llmlens server (pid {srv.proc.pid}) has no OPENAI_API_KEY in its environment")  # type: ignore[union-attr]
    assert "restart" in error
    # The user set the key in the shell running the CLI: the CLI says that shell is not the server's.
    done = cli("replay", span["span_id"], "--url", srv.url, "--model", "gpt-4o-mini", env={"OPENAI_API_KEY": "sk-in"})
    assert done.returncode == 1
    assert "has no OPENAI_API_KEY in its environment" in done.stderr
    assert f"OPENAI_API_KEY is set in this shell, but the server at {srv.url} does not read this shell" in done.stderr
    assert fp.requests == []


def test_replay_with_data_names_this_command(tmp_path: Path) -> None:
    data = tmp_path / "data"
    span = llm_span("gemini", "gemini-1.5-flash")
    done = cli("import", "-", "--data", str(data), "--quiet", stdin=json.dumps(span))
    assert done.returncode == 0, done.stdout + done.stderr
    done = cli("replay", span["span_id"], "--data", str(data))
    assert done.returncode == 1
    assert "provider 'gemini', and this llmlens command has no 'gemini' upstream" in done.stderr
    done = cli("replay", span["span_id"], "--data", str(data), "--model", "gpt-4o-mini")
    assert done.returncode == 1
    assert "this llmlens command has no OPENAI_API_KEY in its environment" in done.stderr
    assert "set OPENAI_API_KEY in this shell" in done.stderr
