"""Build decoded OTLP spans for convention tests."""

from __future__ import annotations

from typing import Any

from llmlens.conventions import OtlpEvent, OtlpSpanData, span_from_otlp
from llmlens.model import Span

START_NS = 1_700_000_000_000_000_000


def otlp_span(
    attributes: dict[str, Any] | None = None,
    *,
    kind: int = 3,
    latency_ms: float = 1000.0,
    status_code: int = 0,
    status_message: str = "",
    events: list[OtlpEvent] | None = None,
    resource: dict[str, Any] | None = None,
) -> OtlpSpanData:
    return OtlpSpanData(
        trace_id="5b8efff798038103d269b633813fc60c",
        span_id="eee19b7ec3c1b174",
        name="span",
        start_ns=START_NS,
        end_ns=START_NS + int(latency_ms * 1e6),
        kind=kind,
        status_code=status_code,
        status_message=status_message,
        attributes=dict(attributes or {}),
        events=events or [],
        resource=resource or {},
    )


def mapped(attributes: dict[str, Any] | None = None, **kwargs: Any) -> Span:
    return span_from_otlp(otlp_span(attributes, **kwargs))
