"""OTel GenAI conventions: current names, structured and JSON messages, deprecated indexed names."""

from __future__ import annotations

import json

from tests.conventions._helpers import mapped

from llmlens.conventions.otel_genai import messages_from_otel


def test_current_names() -> None:
    span = mapped(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4",
            "gen_ai.response.model": "claude-sonnet-4-20250514",
            "gen_ai.request.temperature": 0.5,
            "gen_ai.request.max_tokens": 100,
            "gen_ai.request.top_p": 0.9,
            "gen_ai.request.stream": True,
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 20,
            "gen_ai.usage.cache_read.input_tokens": 4,
            "gen_ai.usage.cache_creation.input_tokens": 2,
            "gen_ai.usage.reasoning.output_tokens": 5,
            "gen_ai.response.finish_reasons": ["end_turn"],
            "gen_ai.response.time_to_first_chunk": 0.25,
            "gen_ai.conversation.id": "conv-1",
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]),
            "gen_ai.output.messages": json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": "Hello"}], "finish_reason": "stop"}]
            ),
            "gen_ai.tool.definitions": json.dumps([{"type": "function", "name": "f"}]),
            "server.address": "api.anthropic.com",
        },
        latency_ms=1250.0,
    )
    assert span.kind == "llm"
    assert (span.provider, span.model, span.response_model) == (
        "anthropic",
        "claude-sonnet-4",
        "claude-sonnet-4-20250514",
    )
    assert (span.temperature, span.max_tokens, span.streamed) == (0.5, 100, True)
    assert span.request_params == {"temperature": 0.5, "max_tokens": 100, "top_p": 0.9, "stream": True}
    # The convention's input count holds the cache tokens; an Anthropic call keeps Anthropic's own (10 - 4 - 2).
    assert (span.prompt_tokens, span.completion_tokens, span.total_tokens) == (4, 20, 30)
    assert (span.cached_tokens, span.cache_write_tokens, span.reasoning_tokens) == (4, 2, 5)
    assert span.finish_reason == "end_turn"
    assert span.ttft_ms == 250.0
    assert span.tokens_per_second == 20 / 1.0
    assert span.session_id == "conv-1"
    assert span.input_messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert span.prompt == "system: Be brief.\nuser: Hi"
    assert span.response == "Hello"
    assert span.tools == [{"type": "function", "name": "f"}]
    assert span.cost_usd is None
    # Mapped attributes are not duplicated; unknown ones are kept.
    assert span.attributes["server.address"] == "api.anthropic.com"
    assert "gen_ai.input.messages" not in span.attributes


def test_parts_tool_calls_and_responses_structured_or_json() -> None:
    messages = [
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "f", "arguments": '{"a": 1}'}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "result": {"ok": True}}]},
        {"role": "user", "parts": [{"type": "uri", "uri": "https://x/img.png"}, {"type": "text", "content": "see"}]},
    ]
    out = messages_from_otel(messages)
    assert out == [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "name": "f", "arguments": {"a": 1}}]},
        {"role": "tool", "content": '{"ok": true}', "tool_call_id": "c1"},
        {"role": "user", "content": "see", "parts": [{"type": "uri", "uri": "https://x/img.png"}]},
    ]
    assert messages_from_otel("nope") is None
    assert messages_from_otel([1, "x"]) is None


def test_deprecated_indexed_names() -> None:
    span = mapped(
        {
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.prompt_tokens": 7,
            "gen_ai.usage.completion_tokens": 3,
            "gen_ai.prompt.1.role": "user",  # indexes need not be sorted in the attribute list
            "gen_ai.prompt.1.content": "and now?",
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": "sys",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.finish_reason": "tool_calls",
            "gen_ai.completion.0.tool_calls.0.id": "call_1",
            "gen_ai.completion.0.tool_calls.0.name": "lookup",
            "gen_ai.completion.0.tool_calls.0.arguments": '{"q": "x"}',
        }
    )
    assert span.provider == "openai"
    assert (span.prompt_tokens, span.completion_tokens, span.total_tokens) == (7, 3, 10)
    assert [m["role"] for m in span.input_messages] == ["system", "user"]
    assert span.tool_calls == [{"id": "call_1", "name": "lookup", "arguments": {"q": "x"}}]
    assert span.finish_reason == "tool_calls"
    assert not any(k.startswith("gen_ai.prompt.") for k in span.attributes)


def test_oldest_single_prompt_attribute_and_tool_and_retrieval_spans() -> None:
    assert mapped({"gen_ai.prompt": "plain text prompt", "gen_ai.completion": "done"}).prompt == "plain text prompt"
    tool = mapped(
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "get_weather",
            "gen_ai.tool.call.arguments": '{"city": "Paris"}',
            "gen_ai.tool.call.result": "14C",
        },
        kind=1,
    )
    assert (tool.kind, tool.tool_name, tool.tool_args, tool.tool_result) == (
        "tool",
        "get_weather",
        {"city": "Paris"},
        "14C",
    )
    retrieval = mapped(
        {
            "gen_ai.operation.name": "retrieval",
            "gen_ai.retrieval.query.text": "paris weather",
            "gen_ai.retrieval.documents": json.dumps([{"id": "d1", "score": 0.9}]),
        }
    )
    assert (retrieval.kind, retrieval.retrieval_query) == ("retrieval", "paris weather")
    assert retrieval.documents == [{"id": "d1", "score": 0.9}]
    assert mapped({"gen_ai.operation.name": "embeddings"}).kind == "embedding"
    assert mapped({"gen_ai.operation.name": "invoke_agent"}).kind == "agent"


def test_error_type_attribute() -> None:
    span = mapped(
        {"gen_ai.operation.name": "chat", "error.type": "APITimeoutError"},
        status_code=2,
        status_message="Request timed out.",
    )
    assert (span.status, span.error_type, span.error_message) == ("error", "timeout", "Request timed out.")
    other = mapped({"error.type": "_OTHER"}, status_code=2, status_message="Error code: 503 - overloaded")
    assert other.error_type == "server_error"
