"""The public API of `import llmlens` is pinned, and importing it stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import llmlens

EXPECTED = [
    "FeedbackEvent",
    "LLMLensASGIMiddleware",
    "LLMLensWSGIMiddleware",
    "LoggingHandler",
    "NoopSpan",
    "SpanHandle",
    "add_dataset_items",
    "context",
    "current_context",
    "current_span",
    "feedback",
    "flush",
    "init",
    "instrument_anthropic",
    "instrument_openai",
    "is_enabled",
    "log_feedback",
    "log_llm_call",
    "log_tool_call",
    "score",
    "shutdown",
    "span",
    "stats",
    "trace",
    "uninstrument_anthropic",
    "uninstrument_openai",
]


def test_all_is_pinned_and_sorted() -> None:
    assert llmlens.__all__ == EXPECTED
    assert sorted(llmlens.__all__) == llmlens.__all__
    for name in EXPECTED:
        assert hasattr(llmlens, name)


def test_import_llmlens_loads_nothing_heavy() -> None:
    heavy = ["duckdb", "starlette", "google.protobuf", "numpy", "openai", "anthropic", "httpx", "uvicorn"]
    code = f"import sys, json, llmlens\nprint(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_without_init_every_call_is_a_noop() -> None:
    assert not llmlens.is_enabled()

    @llmlens.trace(kind="tool")
    def add(a: int, b: int) -> int:
        return a + b

    assert add(1, 2) == 3
    with llmlens.span("x", kind="retrieval") as s:
        s.set_documents(["a"]).set_tokens(1, 2).set_attribute("k", "v")
    message_id = llmlens.log_llm_call("p", "r", "m", 1, 2, 3.0, 0.1)
    assert message_id.startswith("msg_")
    llmlens.log_tool_call("t", {}, None, 1.0, True)
    llmlens.feedback(message_id, "thumbs_up")
    assert llmlens.flush(0.1) is True
    assert llmlens.stats()["sent"] == 0


def test_init_without_url_stays_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMLENS_URL", raising=False)
    assert llmlens.init() is False
    assert not llmlens.is_enabled()
