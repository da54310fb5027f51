"""What the OTLP/HTTP and gRPC receivers share: project assignment (spans, log content), rejection messages."""

from __future__ import annotations

from dataclasses import replace

from llmlens.codec.otlp import LogContent
from llmlens.model import DEFAULT_PROJECT, Span
from llmlens.store import current_project

_MAX_REASONS = 5


def rejection_message(rejected: list[tuple[int, str]]) -> str:
    """The first few reasons, for `partial_success.error_message`."""
    reasons = [reason for _, reason in rejected[:_MAX_REASONS]]
    if len(rejected) > _MAX_REASONS:
        reasons.append(f"and {len(rejected) - _MAX_REASONS} more")
    return "; ".join(reasons)


def assign_project(spans: list[Span], requested: str | None, default: str) -> None:
    """The caller's confined project wins, then X-LLMLens-Project, then the resource's, then the default."""
    forced = current_project.get() or requested
    for span in spans:
        if forced:
            span.project = forced
        elif span.project == DEFAULT_PROJECT and default != DEFAULT_PROJECT:
            span.project = default


def assign_log_project(contents: list[LogContent], requested: str | None, default: str) -> list[LogContent]:
    """`assign_project` for log content: it joins only the spans of the project it ends up in."""
    forced = current_project.get() or requested
    out = []
    for content in contents:
        project = forced or (default if content.project == DEFAULT_PROJECT else content.project)
        out.append(content if content.project == project else replace(content, project=project))
    return out
