"""llmlens: trace an LLM app in three lines, without slowing it down or breaking it.

    import llmlens
    llmlens.init(url="http://localhost:4318")
    llmlens.instrument_openai()

Everything here is cheap to import (no server, database or provider SDK) and every call is a
no-op until `init`. The server lives in `llmlens.server`; the data model in `llmlens.model`.
"""

from __future__ import annotations

from typing import Any

from .sdk._context import context, current_context
from .sdk._datasets import add_dataset_items
from .sdk._events import FeedbackEvent, feedback, log_feedback, log_llm_call, log_tool_call, score
from .sdk._logging import LoggingHandler
from .sdk._runtime import flush, init, is_enabled, shutdown, stats
from .sdk._span import NoopSpan, SpanHandle, current_span, span
from .sdk._trace import trace
from .sdk.middleware import LLMLensASGIMiddleware, LLMLensWSGIMiddleware


def instrument_openai(client: Any = None) -> None:
    """Trace every OpenAI chat/completions/responses call (of `client`, or of every client)."""
    from .sdk.integrations.openai import instrument_openai as _instrument

    _instrument(client)


def uninstrument_openai() -> None:
    from .sdk.integrations.openai import uninstrument_openai as _uninstrument

    _uninstrument()


def instrument_anthropic(client: Any = None) -> None:
    """Trace every Anthropic messages call (of `client`, or of every client)."""
    from .sdk.integrations.anthropic import instrument_anthropic as _instrument

    _instrument(client)


def uninstrument_anthropic() -> None:
    from .sdk.integrations.anthropic import uninstrument_anthropic as _uninstrument

    _uninstrument()


__all__ = [
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
