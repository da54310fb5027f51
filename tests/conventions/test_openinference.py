"""OpenInference conventions: kinds, flattened messages, invocation parameters, documents, tools."""

from __future__ import annotations

import json

from tests.conventions._helpers import START_NS, mapped

from llmlens.conventions import OtlpEvent


def test_llm_span() -> None:
    span = mapped(
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "azure",
            "llm.system": "openai",
            "llm.model_name": "gpt-4o-2024-08-06",
            "llm.invocation_parameters": json.dumps({"model": "gpt-4o", "temperature": 0.1, "max_tokens": 9}),
            "llm.token_count.prompt": 5,
            "llm.token_count.completion": 6,
            "llm.token_count.total": 11,
            "llm.token_count.prompt_details.cache_read": 1,
            "llm.token_count.prompt_details.cache_write": 2,
            "llm.token_count.completion_details.reasoning": 3,
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.contents.0.message_content.type": "text",
            "llm.input_messages.0.message.contents.0.message_content.text": "Hi",
            "llm.input_messages.0.message.contents.1.message_content.type": "image",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.tool_calls.0.tool_call.id": "c1",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "f",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": "not json",
            "llm.tools.0.tool.json_schema": json.dumps({"type": "function", "function": {"name": "f"}}),
            "input.value": "{}",
            "metadata": json.dumps({"feature": "search", "tenant": "a"}),
            "tag.tags": ["x"],
            "llm.prompt_template.version": "v2",
            "llm.prompt_template.variables": json.dumps({"q": 1}),
            "prompt.id": "tmpl-1",
            "session.id": "s",
            "user.id": "u",
        },
        kind=1,
    )
    assert span.kind == "llm"
    assert (span.provider, span.model, span.response_model) == ("azure", "gpt-4o", "gpt-4o-2024-08-06")
    assert (span.temperature, span.max_tokens, span.streamed) == (0.1, 9, False)
    assert (span.prompt_tokens, span.completion_tokens, span.total_tokens) == (5, 6, 11)
    assert (span.cached_tokens, span.cache_write_tokens, span.reasoning_tokens) == (1, 2, 3)
    assert span.input_messages == [{"role": "user", "content": "Hi"}]
    assert span.tool_calls == [{"id": "c1", "name": "f", "arguments": "not json"}]
    assert span.tools == [{"type": "function", "function": {"name": "f"}}]
    assert (span.feature, span.metadata["tags"]) == ("search", ["x"])
    assert (span.template_id, span.template_version, span.variables) == ("tmpl-1", "v2", {"q": 1})
    assert (span.user_id, span.session_id) == ("u", "s")
    assert "input.value" not in span.attributes


def test_raw_input_output_fallback_and_first_token_event() -> None:
    span = mapped(
        {
            "openinference.span.kind": "LLM",
            "llm.invocation_parameters": json.dumps({"model": "m", "stream": True}),
            "llm.token_count.completion": 40,
            "input.value": json.dumps({"messages": [{"role": "user", "content": "q"}], "model": "m"}),
            "output.value": json.dumps(
                {"choices": [{"message": {"role": "assistant", "content": "a"}, "finish_reason": "stop"}]}
            ),
        },
        latency_ms=500.0,
        events=[OtlpEvent("First Token Stream Event", START_NS + 100_000_000)],
    )
    assert (span.prompt, span.response, span.finish_reason) == ("user: q", "a", "stop")
    assert (span.streamed, span.ttft_ms) == (True, 100.0)
    assert span.tokens_per_second == 40 / 0.4


def test_tool_retriever_chain_embedding_kinds() -> None:
    tool = mapped(
        {"openinference.span.kind": "TOOL", "tool.name": "calc", "input.value": '{"x": 1}', "output.value": "2"}
    )
    assert (tool.kind, tool.tool_name, tool.tool_args, tool.tool_result) == ("tool", "calc", {"x": 1}, "2")
    retriever = mapped(
        {
            "openinference.span.kind": "RETRIEVER",
            "input.value": "what is x",
            "retrieval.documents.1.document.id": "b",
            "retrieval.documents.0.document.id": "a",
            "retrieval.documents.0.document.content": "text",
            "retrieval.documents.0.document.score": 0.5,
            "retrieval.documents.0.document.metadata": '{"src": "wiki"}',
        }
    )
    assert retriever.kind == "retrieval" and retriever.retrieval_query == "what is x"
    assert retriever.documents[0] == {"id": "a", "content": "text", "score": 0.5, "metadata": {"src": "wiki"}}
    assert [d["id"] for d in retriever.documents] == ["a", "b"]
    chain = mapped({"openinference.span.kind": "CHAIN", "input.value": "in", "output.value": "out"})
    assert (chain.kind, chain.prompt, chain.response) == ("chain", "in", "out")
    emb = mapped(
        {
            "openinference.span.kind": "EMBEDDING",
            "embedding.model_name": "text-embedding-3-small",
            "embedding.embeddings.0.embedding.text": "hello",
            "embedding.embeddings.0.embedding.vector": [0.1] * 1536,
        }
    )
    assert (emb.kind, emb.model, emb.prompt) == ("embedding", "text-embedding-3-small", "hello")
    assert not any(k.startswith("embedding.") for k in emb.attributes)
    assert mapped({"openinference.span.kind": "GUARDRAIL"}).kind == "other"


def test_exception_event_classifies_the_error() -> None:
    span = mapped(
        {"openinference.span.kind": "LLM"},
        status_code=2,
        status_message="",
        events=[
            OtlpEvent(
                "exception",
                START_NS,
                {
                    "exception.type": "openai.RateLimitError",
                    "exception.message": "Error code: 429",
                    "exception.stacktrace": "tb",
                },
            )
        ],
    )
    assert (span.status, span.error_type, span.error_message) == ("error", "rate_limit", "Error code: 429")
    assert span.attributes["exception.stacktrace"] == "tb"


def test_the_provider_response_id_in_the_raw_output_is_the_message_id() -> None:
    # OpenInference records the answer's id only inside the raw response; feedback refers to calls by it.
    chat = {"id": "chatcmpl-1", "object": "chat.completion", "choices": []}
    anthropic = {"id": "msg_01abc", "type": "message", "content": [{"type": "text", "text": "Hi"}]}
    responses = {"id": "resp_9", "object": "response", "output": []}
    langchain = {"generations": [[{"text": "Hi"}]], "llm_output": {"id": "chatcmpl-lc", "model_name": "gpt-4o"}}
    embedding = {"data": [{"embedding": [0.1]}], "id": "not-an-answer"}
    for raw, expected in (
        (chat, "chatcmpl-1"),
        (anthropic, "msg_01abc"),
        (responses, "resp_9"),
        (langchain, "chatcmpl-lc"),
        (embedding, None),
    ):
        span = mapped(
            {
                "openinference.span.kind": "LLM",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": "Hi",
                "output.value": json.dumps(raw),
                "output.mime_type": "application/json",
            }
        )
        assert span.message_id == expected, raw
    plain = mapped({"openinference.span.kind": "LLM", "output.value": "just text with an id"})
    assert plain.message_id is None and plain.response == "just text with an id"


def test_an_anthropic_call_keeps_anthropic_input_tokens() -> None:
    # OpenInference adds cache reads and writes into its prompt count; Anthropic's own count leaves them out.
    span = mapped(
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "anthropic",
            "llm.model_name": "claude-sonnet-4-5",
            "llm.token_count.prompt": 40,
            "llm.token_count.completion": 12,
            "llm.token_count.total": 52,
            "llm.token_count.prompt_details.cache_read": 16,
            "llm.token_count.prompt_details.cache_write": 6,
        }
    )
    assert (span.prompt_tokens, span.cached_tokens, span.cache_write_tokens, span.total_tokens) == (18, 16, 6, 52)
    openai = mapped(
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.token_count.prompt": 40,
            "llm.token_count.completion": 12,
            "llm.token_count.prompt_details.cache_read": 16,
        }
    )
    assert (openai.prompt_tokens, openai.cached_tokens) == (40, 16)  # OpenAI's count includes the cache
