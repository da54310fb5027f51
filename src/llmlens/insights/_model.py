"""What a finding is: the Insight record, its evidence and action, and the report that ranks them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

Confidence = Literal["high", "medium", "low"]

# Every finding kind, in the order the docs describe them.
KINDS: tuple[str, ...] = (
    "cacheable_prompts",
    "prompt_caching",
    "context_growth",
    "smaller_model",
    "parallelizable_calls",
    "max_tokens",
    "streaming",
    "retries",
    "cost_outliers",
)

DAYS_PER_MONTH = 30.0


@dataclass(frozen=True, slots=True)
class Examined:
    """The part of the requested window the findings read: all of it, or its most recent slice when the
    window holds more LLM calls than the configured cap (then `sampled` is true)."""

    start: dt.datetime
    end: dt.datetime
    calls: int
    sampled: bool = False

    @property
    def days(self) -> float:
        return max((self.end - self.start).total_seconds(), 1.0) / 86_400.0

    def per_month(self, amount: float) -> float:
        """`amount` seen in this window, at the same rate over a 30-day month."""
        return amount * DAYS_PER_MONTH / self.days


@dataclass(slots=True)
class Chart:
    """A chart the page draws with uPlot: bars over named categories, or lines over numbered steps."""

    title: str
    categories: list[str]
    series: list[dict[str, Any]]  # [{"label": ..., "values": [...]}] aligned with categories
    unit: str = ""  # "$", "ms" or "" (counts, tokens)
    kind: Literal["bars", "line"] = "bars"

    def spec(self) -> dict[str, Any]:
        """The `data-chart` JSON of static/app.js."""
        return {
            "x": list(range(len(self.categories))),
            "categories": self.categories,
            "series": self.series,
            "unit": self.unit,
        }


@dataclass(slots=True)
class Action:
    """What the user can do about a finding, as one HTTP call (the page's button) and, where one exists,
    the CLI command that does the same."""

    kind: Literal["enable_cache", "experiment", "alert"]
    label: str
    method: str
    url: str
    body: dict[str, Any] | None = None
    command: str | None = None
    note: str = ""
    done: bool = False  # already in place (e.g. the cache is on for this feature)


@dataclass(slots=True)
class Insight:
    kind: str
    title: str
    scope: dict[str, str]
    saving_usd: float | None  # in the examined window
    saving_usd_per_month: float | None
    saving_ms_per_trace: float | None  # latency findings: what each affected trace would wait less
    calls_affected: int
    confidence: Confidence
    method: str
    example_trace_ids: list[str]
    assumptions: list[str] = field(default_factory=list)
    saving_s_per_month: float | None = None  # latency findings: user waiting time saved per month
    traces_affected: int | None = None
    summary: str = ""  # one sentence with the numbers
    chart: Chart | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)  # rows shown under the chart
    action: Action | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            key = self.kind + "|" + "|".join(f"{k}={v}" for k, v in sorted(self.scope.items()))
            self.id = hashlib.sha1(key.encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc["chart"] = (
            None if self.chart is None else {"title": self.chart.title, "kind": self.chart.kind, **self.chart.spec()}
        )
        return doc


def confidence_for(n: int, *, high: int = 100, medium: int = 20) -> Confidence:
    """From the number of observations a finding rests on."""
    if n >= high:
        return "high"
    return "medium" if n >= medium else "low"


def lower(confidence: Confidence) -> Confidence:
    return "medium" if confidence == "high" else "low"


def rank(insights: list[Insight]) -> list[Insight]:
    """Largest first, dollars and seconds on one scale: each finding's saving as a share of the largest
    saving in its unit, so the biggest cost finding and the biggest latency finding both lead."""
    top_usd = max((i.saving_usd_per_month or 0.0 for i in insights), default=0.0)
    top_s = max((i.saving_s_per_month or 0.0 for i in insights), default=0.0)

    def score(i: Insight) -> tuple[float, float, int]:
        usd = (i.saving_usd_per_month or 0.0) / top_usd if top_usd > 0 else 0.0
        secs = (i.saving_s_per_month or 0.0) / top_s if top_s > 0 else 0.0
        return (max(usd, secs), i.saving_usd_per_month or 0.0, i.calls_affected)

    return sorted(insights, key=score, reverse=True)


@dataclass(slots=True)
class InsightsReport:
    project: str
    range: str | None
    start: dt.datetime
    end: dt.datetime
    examined: Examined
    computed_at: dt.datetime
    compute_ms: float
    insights: list[Insight]
    errors: list[dict[str, str]] = field(default_factory=list)  # finders that failed: kind, error

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "range": self.range,
            "window": {"start": self.start, "end": self.end},
            "examined": {
                "start": self.examined.start,
                "end": self.examined.end,
                "calls": self.examined.calls,
                "days": round(self.examined.days, 4),
                "sampled": self.examined.sampled,
            },
            "computed_at": self.computed_at,
            "compute_ms": round(self.compute_ms, 1),
            "insights": [i.to_dict() for i in self.insights],
            "errors": self.errors,
        }
