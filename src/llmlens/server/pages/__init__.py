"""The dashboard pages: each has an HTML path, a JSON twin under /api/v1 and one context builder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._params import PageParams
from .._state import AppState
from ._analytics import (
    cost_context,
    feedback_context,
    latency_context,
    overview_context,
    prompt_context,
    prompts_context,
    tools_context,
)
from ._debugging import (
    session_context,
    sessions_context,
    sql_context,
    trace_context,
    traces_context,
)

ContextBuilder = Callable[[AppState, PageParams, dict[str, str]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Page:
    name: str
    title: str
    path: str  # Starlette path of the HTML page
    api_path: str | None  # its JSON twin
    template: str
    build: ContextBuilder
    nav: bool = True


PAGES: tuple[Page, ...] = (
    Page("overview", "Overview", "/", "/api/v1/overview", "overview.html", overview_context),
    Page("cost", "Cost", "/cost", "/api/v1/cost", "cost.html", cost_context),
    Page("latency", "Latency", "/latency", "/api/v1/latency", "latency.html", latency_context),
    Page("prompts", "Prompts", "/prompts", "/api/v1/prompts", "prompts.html", prompts_context),
    Page(
        "prompt",
        "Prompt template",
        "/prompts/{template_id:path}",
        "/api/v1/prompts/{template_id:path}",
        "prompt.html",
        prompt_context,
        nav=False,
    ),
    Page("tools", "Tools", "/tools", "/api/v1/tools", "tools.html", tools_context),
    Page("feedback", "Feedback", "/feedback", "/api/v1/feedback", "feedback.html", feedback_context),
    Page("traces", "Traces", "/traces", "/api/v1/traces", "traces.html", traces_context),
    Page("trace", "Trace", "/traces/{trace_id}", "/api/v1/traces/{trace_id}", "trace.html", trace_context, nav=False),
    Page("sessions", "Sessions", "/sessions", "/api/v1/sessions", "sessions.html", sessions_context),
    Page(
        "session",
        "Session",
        "/sessions/{session_id:path}",
        "/api/v1/sessions/{session_id:path}",
        "session.html",
        session_context,
        nav=False,
    ),
    # The console's JSON twin is POST /api/v1/sql (routes/sql.py).
    Page("sql", "SQL", "/sql", None, "sql.html", sql_context),
)

__all__ = ["PAGES", "ContextBuilder", "Page"]
