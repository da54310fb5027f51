"""A template version's recent calls: one filled prompt to show, and the template's text behind them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from llmlens.store import Store

from ._common import Scope, rows
from ._prompt_template import fill_back, recorded_template, recover_template

SAMPLE_CALLS = 20  # recent calls read per version
PROMPT_CHARS = 8000  # of each prompt: enough to see a template, not a 60,000-token context
_FIRST_SLICE = dt.timedelta(hours=1)
_NO_VERSION = "(none)"


@dataclass(slots=True)
class PromptSample:
    """One recent call of the version, with its filled prompt."""

    trace_id: str
    span_id: str
    timestamp: dt.datetime
    prompt: str  # cut at PROMPT_CHARS
    cut: bool  # the prompt is longer than shown


@dataclass(slots=True)
class TemplateText:
    text: str
    source: str  # "recorded": the instrumentation sent it; "recovered": rebuilt from the filled prompts
    calls: int  # how many calls it was read or rebuilt from


def version_samples(
    store: Store, scope: Scope, template_id: str, version: str, last_seen: dt.datetime | None
) -> tuple[PromptSample | None, TemplateText | None]:
    """(a recent filled prompt, the template's text) of one version, from its newest calls in the window."""
    found = _recent_calls(store, scope, template_id, version, last_seen)
    if not found:
        return None, None
    filled = [(r, fill_back(str(r["prompt"]), r["variables"])) for r in found]
    # A call that fills the template (its variables occur in the prompt) shows it best; follow-up calls
    # under the same template (tool results, retries) do not.
    sample_row = next((r for r, text in filled if text is not None), found[0])
    sample = PromptSample(
        trace_id=str(sample_row["trace_id"]),
        span_id=str(sample_row["span_id"]),
        timestamp=sample_row["timestamp"],
        prompt=str(sample_row["prompt"]),
        cut=len(str(sample_row["prompt"])) >= PROMPT_CHARS,
    )
    recorded = [t for r in found if (t := recorded_template(r["attributes"])) is not None]
    if recorded:
        newest = recorded[0]
        return sample, TemplateText(newest, "recorded", sum(1 for t in recorded if t == newest))
    texts = [text for _, text in filled if text is not None] or [str(r["prompt"]) for r in found]
    return sample, TemplateText(recover_template(texts), "recovered", len(texts))


def _recent_calls(
    store: Store, scope: Scope, template_id: str, version: str, last_seen: dt.datetime | None
) -> list[dict[str, Any]]:
    """The version's newest SAMPLE_CALLS calls with a prompt, read from ever wider slices of the window that
    end at its last call (an old version's calls are not next to the window's end)."""
    window = scope.window
    top = min(window.end, last_seen + dt.timedelta(seconds=1)) if last_seen else window.end
    versioned = "template_version IS NULL" if version == _NO_VERSION else "template_version = ?"
    params: list[Any] = [] if version == _NO_VERSION else [version]
    width = _FIRST_SLICE
    while True:
        lo = max(window.start, top - width)
        found = rows(
            store,
            f"SELECT trace_id, span_id, timestamp, substr(prompt, 1, {PROMPT_CHARS}) AS prompt, variables, attributes "
            f"FROM spans WHERE project = ? AND timestamp >= ? AND timestamp < ? AND kind = 'llm' "
            f"AND template_id = ? AND {versioned} AND prompt IS NOT NULL "
            f"ORDER BY timestamp DESC, span_id DESC LIMIT {SAMPLE_CALLS}",
            [scope.project, lo, top, template_id, *params],
        )
        if len(found) >= SAMPLE_CALLS or lo <= window.start:
            return found
        width *= 4
