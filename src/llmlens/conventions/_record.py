"""The decoded, encoding-neutral view of one OTLP span that the convention mappers read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# OTLP SpanKind values.
SPAN_KIND_UNSPECIFIED = 0
SPAN_KIND_INTERNAL = 1
SPAN_KIND_SERVER = 2
SPAN_KIND_CLIENT = 3
SPAN_KIND_PRODUCER = 4
SPAN_KIND_CONSUMER = 5

# OTLP Status.code values.
STATUS_UNSET = 0
STATUS_OK = 1
STATUS_ERROR = 2


@dataclass(slots=True)
class OtlpEvent:
    """A span event: name, time and attributes already turned into plain Python values."""

    name: str
    time_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class OtlpSpanData:
    """One OTLP span with validated hex ids and attributes as plain Python values.

    Both the protobuf and the JSON decoders build this, so the convention mappers never see
    either wire format.
    """

    trace_id: str
    span_id: str
    name: str
    start_ns: int
    end_ns: int
    parent_span_id: str | None = None
    kind: int = SPAN_KIND_UNSPECIFIED
    status_code: int = STATUS_UNSET
    status_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[OtlpEvent] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    scope_name: str = ""
    # Why a value was clipped or dropped while decoding; kept on the span.
    notes: list[str] = field(default_factory=list)
    # Position of the span in its export request (for partial-success reporting).
    index: int = -1
