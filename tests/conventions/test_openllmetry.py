"""OpenLLMetry / Traceloop conventions."""

from __future__ import annotations

from tests.conventions._helpers import START_NS, mapped

from llmlens.conventions import OtlpEvent


def test_traceloop_llm_span() -> None:
    span = mapped(
        {
            "llm.request.type": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "llm.usage.total_tokens": 31,
            "llm.usage.reasoning_tokens": 2,
            "llm.is_streaming": False,
            "llm.frequency_penalty": 0.5,
            "llm.request.functions.0.name": "f",
            "llm.request.functions.0.parameters": '{"type": "object"}',
            "llm.headers": "{'Authorization': 'Bearer sk-secret'}",
            "traceloop.association.properties.user_id": "u1",
            "traceloop.association.properties.session_id": "s1",
            "traceloop.association.properties.tenant": "acme",
            "traceloop.prompt.key": "greeting",
            "traceloop.prompt.version": "3",
            "traceloop.prompt.template_variables": '{"name": "x"}',
        }
    )
    assert (span.kind, span.provider, span.model) == ("llm", "openai", "gpt-4o-mini")
    assert (span.total_tokens, span.reasoning_tokens, span.streamed) == (31, 2, False)
    assert span.request_params == {"frequency_penalty": 0.5}
    assert span.tools == [{"type": "function", "name": "f", "description": None, "parameters": {"type": "object"}}]
    assert (span.user_id, span.session_id, span.metadata) == ("u1", "s1", {"tenant": "acme"})
    assert (span.template_id, span.template_version, span.variables) == ("greeting", "3", {"name": "x"})
    assert "sk-secret" not in str(span.attributes)


def test_streaming_from_chunk_events_and_new_flag() -> None:
    chunks = [OtlpEvent("gen_ai.content.completion.chunk", START_NS + i) for i in range(3)]
    assert mapped({"gen_ai.operation.name": "chat"}, events=chunks).streamed is True
    assert mapped({"gen_ai.is_streaming": True}).streamed is True


def test_workflow_and_tool_spans() -> None:
    workflow = mapped({"traceloop.span.kind": "workflow", "traceloop.entity.input": '{"q": 1}'}, kind=1)
    assert (workflow.kind, workflow.prompt) == ("chain", '{"q": 1}')
    tool = mapped(
        {
            "traceloop.span.kind": "tool",
            "traceloop.entity.name": "search",
            "traceloop.entity.input": '{"args": ["x"]}',
            "traceloop.entity.output": '"found"',
        }
    )
    assert (tool.kind, tool.tool_name, tool.tool_args, tool.tool_result) == ("tool", "search", {"args": ["x"]}, "found")
    assert mapped({"traceloop.span.kind": "agent"}).kind == "agent"
