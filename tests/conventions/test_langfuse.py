"""The Langfuse convention on the usage shapes and levels the end-to-end app does not send."""

from __future__ import annotations

import json

import pytest
from tests.conventions._helpers import otlp_span

from llmlens.conventions import span_from_otlp


def _generation(**attrs: object) -> dict[str, object]:
    return {"langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o", **attrs}


@pytest.mark.parametrize(
    "usage, expected",
    [
        # OpenAI Responses API, as the `langfuse.openai` drop-in passes it: cache and reasoning inside.
        (
            {
                "input_tokens": 50,
                "output_tokens": 9,
                "total_tokens": 59,
                "input_tokens_details": {"cached_tokens": 20},
                "output_tokens_details": {"reasoning_tokens": 4},
            },
            (50, 9, 59, 20, None, 4),
        ),
        # Anthropic's own usage: the cache beside input_tokens.
        (
            {"input_tokens": 30, "output_tokens": 8, "cache_read_input_tokens": 10, "cache_creation_input_tokens": 5},
            (45, 8, 53, 10, 5, None),
        ),
        # The SDK's parts, with a cache write and an audio part that count as input.
        (
            {"input": 10, "input_cache_creation": 6, "input_audio_tokens": 4, "output": 3, "total": 23},
            (20, 3, 23, None, 6, None),
        ),
    ],
)
def test_usage_shapes(usage: dict[str, object], expected: tuple[object, ...]) -> None:
    span = span_from_otlp(otlp_span(_generation(**{"langfuse.observation.usage_details": json.dumps(usage)})))
    got = (
        span.prompt_tokens,
        span.completion_tokens,
        span.total_tokens,
        span.cached_tokens,
        span.cache_write_tokens,
        span.reasoning_tokens,
    )
    assert got == expected


def test_a_warning_level_is_kept_beside_an_ok_call() -> None:
    attrs = _generation(**{"langfuse.observation.level": "WARNING", "langfuse.observation.status_message": "slow"})
    span = span_from_otlp(otlp_span(attrs))
    assert span.status == "unset" and span.error_message is None
    assert (span.metadata["level"], span.metadata["status_message"]) == ("WARNING", "slow")


def test_an_error_level_without_otel_status_is_an_error() -> None:
    attrs = _generation(**{"langfuse.observation.level": "ERROR", "langfuse.observation.status_message": "timed out"})
    span = span_from_otlp(otlp_span(attrs))
    assert (span.status, span.error_type, span.error_message) == ("error", "timeout", "timed out")


def test_retriever_and_tool_observations() -> None:
    retriever = {
        "langfuse.observation.type": "retriever",
        "langfuse.observation.input": json.dumps({"query": "refund policy"}),
        "langfuse.observation.output": json.dumps(
            [{"page_content": "30 days", "metadata": {"id": "p1", "source": "faq"}}]
        ),
    }
    span = span_from_otlp(otlp_span(retriever))
    assert (span.kind, span.retrieval_query) == ("retrieval", "refund policy")
    assert span.documents == [
        {"id": "p1", "content": "30 days", "score": None, "metadata": {"id": "p1", "source": "faq"}}
    ]
    tool = {
        "langfuse.observation.type": "tool",
        "langfuse.observation.input": '{"q": 1}',
        "langfuse.observation.output": "done",
    }
    span = span_from_otlp(otlp_span(tool))
    assert (span.kind, span.tool_name, span.tool_args, span.tool_result) == ("tool", "span", {"q": 1}, "done")
