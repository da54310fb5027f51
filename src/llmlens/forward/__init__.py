"""Forwarding: fan out every committed span as OTLP/HTTP to other collectors or vendors."""

from __future__ import annotations

from collections.abc import Sequence

from llmlens.model import Feedback, Span

from ._encode import any_value, export_request, otel_messages, otlp_span, span_attributes
from ._forwarder import ForwarderStats, SpanForwarder
from ._target import ForwardConfigError, ForwardTarget, targets_from_settings

__all__ = [
    "ForwardConfigError",
    "ForwardTarget",
    "ForwarderStats",
    "Forwarders",
    "SpanForwarder",
    "any_value",
    "export_request",
    "otel_messages",
    "otlp_span",
    "span_attributes",
    "targets_from_settings",
]


class Forwarders:
    """Every configured target; one write listener feeds them all."""

    def __init__(self, forwarders: Sequence[SpanForwarder]) -> None:
        self.forwarders = list(forwarders)

    def on_write(self, spans: Sequence[Span], feedback: Sequence[Feedback]) -> None:
        for forwarder in self.forwarders:
            forwarder.on_write(spans, feedback)

    def start(self) -> None:
        for forwarder in self.forwarders:
            forwarder.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        for forwarder in self.forwarders:
            forwarder.stop(timeout_s)

    def stats(self) -> list[ForwarderStats]:
        return [f.stats() for f in self.forwarders]
