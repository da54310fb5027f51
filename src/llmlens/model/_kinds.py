"""The closed vocabularies of the data model: span kinds, statuses, error types, feedback types."""

from __future__ import annotations

from enum import StrEnum


class SpanKind(StrEnum):
    """What a span observes. One wide record serves every kind."""

    REQUEST = "request"
    LLM = "llm"
    TOOL = "tool"
    RETRIEVAL = "retrieval"
    EMBEDDING = "embedding"
    CHAIN = "chain"
    AGENT = "agent"
    # An evaluation llmlens made of the app's calls (an LLM judge's call, an evaluator's failure): its own
    # kind, so that no query of the app's spend, latency or errors (they read `llm`) ever counts it.
    EVALUATOR = "evaluator"
    OTHER = "other"


class Status(StrEnum):
    OK = "ok"
    ERROR = "error"
    UNSET = "unset"


class ErrorType(StrEnum):
    """Why an observed call failed, normalised across providers and conventions."""

    RATE_LIMIT = "rate_limit"
    TIMEOUT = "timeout"
    INVALID_REQUEST = "invalid_request"
    AUTH = "auth"
    SERVER_ERROR = "server_error"
    CONNECTION_ERROR = "connection_error"  # the connection failed: refused, DNS, TLS, reset, cut off
    CONTENT_FILTER = "content_filter"
    OTHER = "other"


class FeedbackType(StrEnum):
    """Explicit (thumbs) and implicit (retry, edit, abandon) user signals."""

    THUMBS_UP = "thumbs_up"
    THUMBS_DOWN = "thumbs_down"
    RETRY = "retry"
    EDIT = "edit"
    ABANDON = "abandon"


class CostSource(StrEnum):
    """Where a stored cost came from."""

    CALLER = "caller"  # cost_usd sent with the event
    CUSTOM = "custom"  # the user's price file
    LIBRARY = "library"  # genai-prices
    UNPRICED = "unpriced"  # no price known: cost is NULL, never a silent 0


EXPLICIT_FEEDBACK = frozenset({FeedbackType.THUMBS_UP, FeedbackType.THUMBS_DOWN})
