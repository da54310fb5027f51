"""Every example under examples/ runs against the provider stand-in and a real llmlens, and its calls are stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer
from tests.support.prices import CUSTOM_RATES, assert_cost, write_price_file

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


# What the stand-in provider reports for every call (cache reads and reasoning inside the totals, as
# OpenAI counts them), so each stored cost can be worked out here from the test's own price file.
USAGE = {"input_tokens": 64, "output_tokens": 9, "cached_tokens": 24, "reasoning_tokens": 3}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeProvider, LLMLensServer]]:
    data = tmp_path_factory.mktemp("examples")
    args = ["--price-file", str(write_price_file(data))]
    with FakeProvider(usage=USAGE) as provider, LLMLensServer(data, args=args) as server:
        yield provider, server


def assert_priced(call: dict[str, object], *, cached: bool, reasoning: bool) -> None:
    """The call's tokens are the provider's and its cost is theirs at the test's gpt-4o-mini rates; token
    details the framework does not pass on are billed at the plain input or output rate."""
    assert (call["prompt_tokens"], call["completion_tokens"]) == (USAGE["input_tokens"], USAGE["output_tokens"])
    expected = CUSTOM_RATES["gpt-4o-mini"].openai_cost(
        USAGE["input_tokens"],
        USAGE["output_tokens"],
        cached_tokens=USAGE["cached_tokens"] if cached else 0,
        reasoning_tokens=USAGE["reasoning_tokens"] if reasoning else 0,
    )
    assert_cost(call["cost_usd"], expected)


def run_example(name: str, stack: tuple[FakeProvider, LLMLensServer]) -> str:
    provider, server = stack
    env = {
        **os.environ,
        "LLMLENS_URL": server.url,
        "OPENAI_BASE_URL": provider.openai_base_url,
        "OPENAI_API_KEY": "sk-test",
        # LiteLLM would fetch its price list from the internet at import.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=180, env=env, cwd=REPO
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def spans_of(server: LLMLensServer, service: str) -> list[dict[str, object]]:
    return server.sql(
        "SELECT kind, name, model, response_model, provider, prompt_tokens, completion_tokens, cached_tokens, "
        "reasoning_tokens, cost_usd, user_id, "
        "session_id, feature, environment, prompt, response, attributes, parent_span_id, trace_id "
        f"FROM spans WHERE service = '{service}' ORDER BY timestamp"
    )


def test_every_example_has_a_test() -> None:
    examples = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert examples == ["langchain_openinference.py", "litellm_otel.py", "llamaindex_openinference.py"]
    readme = (EXAMPLES / "README.md").read_text()
    for name in examples:
        assert name in readme


def test_langchain_through_openinference(stack: tuple[FakeProvider, LLMLensServer]) -> None:
    out = run_example("langchain_openinference.py", stack)
    assert "Fake reply to: What is the refund window?" in out
    spans = spans_of(stack[1], "langchain-example")
    llm = [s for s in spans if s["kind"] == "llm"]
    assert len(llm) == 1
    call = llm[0]
    assert call["model"] == "gpt-4o-mini" and call["provider"] == "openai"
    assert_priced(call, cached=True, reasoning=True)
    assert call["user_id"] == "user-langchain" and call["session_id"] == "session-langchain"
    assert call["feature"] == "faq" and call["environment"] == "dev"
    assert "What is the refund window?" in str(call["prompt"])
    assert call["response"] == "Fake reply to: What is the refund window?"
    # The chain is one trace: the LLM call sits under the RunnableSequence root.
    assert {s["trace_id"] for s in spans} == {call["trace_id"]}
    root = [s for s in spans if s["parent_span_id"] is None]
    assert [s["name"] for s in root] == ["RunnableSequence"]
    rows = stack[1].sql("SELECT model, feature, user_id FROM llm_logs WHERE user_id = 'user-langchain'")
    assert rows == [{"model": "gpt-4o-mini", "feature": "faq", "user_id": "user-langchain"}]


def test_llamaindex_through_openinference(stack: tuple[FakeProvider, LLMLensServer]) -> None:
    out = run_example("llamaindex_openinference.py", stack)
    assert "Fake reply to: Which plan includes SSO?" in out
    llm = [s for s in spans_of(stack[1], "llamaindex-example") if s["kind"] == "llm"]
    assert len(llm) == 1
    call = llm[0]
    # OpenInference's LlamaIndex spans name the model only as the response's model.
    assert (call["model"] or call["response_model"] or "").startswith("gpt-4o-mini")
    assert call["provider"] == "openai"
    assert_priced(call, cached=True, reasoning=True)
    assert call["user_id"] == "user-llamaindex" and call["feature"] == "search"
    assert call["response"] == "Fake reply to: Which plan includes SSO?"


def test_litellm_through_its_otel_callback(stack: tuple[FakeProvider, LLMLensServer]) -> None:
    out = run_example("litellm_otel.py", stack)
    assert "Fake reply to: How do I rotate an API key?" in out
    llm = [s for s in spans_of(stack[1], "litellm-example") if s["kind"] == "llm"]
    assert len(llm) == 1
    call = llm[0]
    assert call["model"] == "gpt-4o-mini" and call["provider"] == "openai"
    # LiteLLM's callback exports the usage details only as a Python repr in `metadata.usage_object`, not as
    # token attributes: its cache reads and reasoning are billed at the plain input and output rates.
    assert_priced(call, cached=False, reasoning=False)
    assert call["user_id"] == "user-litellm" and call["environment"] == "dev"
    assert call["response"] == "Fake reply to: How do I rotate an API key?"
    attributes = json.loads(str(call["attributes"]))
    assert attributes["otel.scope.name"] == "litellm"
