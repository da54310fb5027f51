"""HTTP semantic conventions: SERVER spans become `request` spans with method, route, status and sizes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmlens.model import Span

from ._record import SPAN_KIND_SERVER
from ._values import as_count, as_str, set_if_none, take


def detect(attrs: Mapping[str, Any]) -> bool:
    return "http.request.method" in attrs or "http.method" in attrs


def is_request(attrs: Mapping[str, Any], otlp_kind: int) -> bool:
    """An HTTP SERVER span: the request layer that wraps the LLM calls beneath it."""
    return otlp_kind == SPAN_KIND_SERVER and detect(attrs)


def apply(span: Span, attrs: Mapping[str, Any], consumed: set[str]) -> None:
    set_if_none(span, "http_method", as_str(take(attrs, consumed, "http.request.method", "http.method")))
    route = as_str(take(attrs, consumed, "http.route"))
    if route is None:
        # Not consumed: the full path or target may carry ids, the route is what we group by.
        target = as_str(attrs.get("url.path") or attrs.get("http.target"))
        route = target.split("?", 1)[0] if target else None
    set_if_none(span, "http_route", route)
    status = as_count(take(attrs, consumed, "http.response.status_code", "http.status_code"))
    if status is not None and 100 <= status <= 999:
        set_if_none(span, "http_status", status)
    set_if_none(
        span,
        "http_request_bytes",
        as_count(take(attrs, consumed, "http.request.body.size", "http.request_content_length")),
    )
    set_if_none(
        span,
        "http_response_bytes",
        as_count(take(attrs, consumed, "http.response.body.size", "http.response_content_length")),
    )
