"""What the trace list can be narrowed and ordered by, and the SQL conditions those filters compile to."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

PAGE_SIZE = 50
SORT_KEYS = ("time", "latency", "cost", "tokens")
SORTS = tuple(s for key in SORT_KEYS for s in (key, f"-{key}"))
DEFAULT_SORT = "-time"
FEEDBACK_ANY = "any"
FEEDBACK_NONE = "none"
# A child span may start a little before its root (clock skew between services): conditions on the
# spans of a trace look this far before the roots they are checked for.
CHILD_LEAD = dt.timedelta(hours=1)
_FEEDBACK_TYPE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class FilterError(ValueError):
    """A filter or sort value that cannot be used; the message names the URL parameter."""


_SCORE_FILTER = re.compile(r"^\s*([A-Za-z0-9_.:-]{1,200})\s*(<=|>=|<|>|=)\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True, slots=True)
class ScoreFilter:
    """`name<0.5`: calls with a score of that name compared so (`<`, `<=`, `>`, `>=`, `=`)."""

    name: str
    op: str
    value: float

    def condition(self, project: str) -> tuple[str, list[Any]]:
        """`span_id IN (...)` over the `scores` view (stored scores and thumbs)."""
        return (
            f"span_id IN (SELECT span_id FROM scores WHERE project = ? AND name = ? AND value {self.op} ?)",
            [project, self.name, self.value],
        )


def parse_score_filter(text: str) -> ScoreFilter:
    match = _SCORE_FILTER.match(text)
    if match is None:
        raise FilterError(f"score must be NAME<VALUE (or <=, >, >=, =), e.g. helpfulness<0.5, got {text!r}")
    return ScoreFilter(match.group(1), match.group(2), float(match.group(3)))


@dataclass(frozen=True, slots=True)
class TraceSort:
    key: str  # time | latency | cost | tokens
    descending: bool

    @property
    def name(self) -> str:
        return f"-{self.key}" if self.descending else self.key


def parse_sort(text: str | None) -> TraceSort:
    value = (text or DEFAULT_SORT).strip()
    if value not in SORTS:
        raise FilterError(f"sort must be one of {', '.join(SORTS)}, got {value!r}")
    return TraceSort(key=value.lstrip("-"), descending=value.startswith("-"))


@dataclass(frozen=True, slots=True)
class TraceFilters:
    """Every filter narrows to traces with at least one span (in the window) matching it."""

    model: str | None = None  # a known model exactly, else every model containing it (any case)
    user_id: str | None = None  # the same rule as model
    session_id: str | None = None
    feature: str | None = None
    template_id: str | None = None
    template_version: str | None = None  # with template_id: a version of that template
    tool: str | None = None  # a tool call of this tool
    error_type: str | None = None
    status: str | None = None  # "ok" or "error" (any span of the trace failed)
    feedback: str | None = None  # a feedback type (thumbs_down, ...), `any` or `none`
    min_cost_usd: float | None = None  # the trace's LLM calls together cost at least this
    min_latency_ms: float | None = None  # of the root span
    text: str | None = None  # in an LLM call's prompt or response
    score: str | None = None  # `name<0.5`: a call of the trace has such a score (`ScoreFilter`)
    sort: str = DEFAULT_SORT
    limit: int = PAGE_SIZE

    def check(self) -> None:
        """FilterError naming the parameter of the first unusable value."""
        parse_sort(self.sort)
        if self.score is not None:
            parse_score_filter(self.score)
        if self.status not in (None, "ok", "error"):
            raise FilterError(f"status must be ok or error, got {self.status!r}")
        if self.feedback is not None and not _FEEDBACK_TYPE.match(self.feedback):
            raise FilterError(
                f"feedback must be a feedback type (thumbs_up, thumbs_down, ...), any or none, got {self.feedback!r}"
            )
        for name, number in (("min_cost", self.min_cost_usd), ("min_latency_ms", self.min_latency_ms)):
            if number is not None and not number >= 0:
                raise FilterError(f"{name} must be a number of at least 0, got {number!r}")


@dataclass(frozen=True, slots=True)
class KnownValues:
    """Models and users seen in the window: the filters' suggestions, and what makes a match exact."""

    models: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SpanCondition:
    """`r.trace_id [NOT] IN (SELECT trace_id FROM spans WHERE <time bounds> AND where [GROUP BY ... HAVING])`."""

    where: str
    params: list[Any]
    negate: bool = False
    having: str | None = None  # over the trace's matching spans, e.g. SUM(cost_usd) >= ?
    having_params: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class Conditions:
    """WHERE parts over the root spans `r`: `roots` test the root itself, `spans` look at its trace's spans
    (their time bounds are given per query: the whole window, or a slice of it)."""

    project: str
    roots: list[str] = field(default_factory=list)
    root_params: list[Any] = field(default_factory=list)
    spans: list[SpanCondition] = field(default_factory=list)

    def sql(self, since: dt.datetime, until: dt.datetime) -> tuple[list[str], list[Any]]:
        """The root conditions, then the span conditions over spans starting in [since, until)."""
        where, params = list(self.roots), list(self.root_params)
        for c in self.spans:
            grouped = f" GROUP BY trace_id HAVING {c.having}" if c.having else ""
            where.append(
                f"r.trace_id {'NOT IN' if c.negate else 'IN'} (SELECT trace_id FROM spans "
                f"WHERE project = ? AND timestamp >= ? AND timestamp < ? AND {c.where}{grouped})"
            )
            params += [self.project, since, until, *c.params, *c.having_params]
        return where, params


def _matching(column: str, value: str, known: Collection[str]) -> tuple[str, list[Any]]:
    """`column` equal to a known value, else containing the text in any case (`%` and `_` typed by the user
    act as wildcards: harmless over-matching, and portable SQL)."""
    if value in known:
        return f"{column} = ?", [value]
    return f"{column} ILIKE ?", [f"%{value}%"]


def trace_conditions(project: str, filters: TraceFilters, known: KnownValues) -> Conditions:
    """The filters as conditions on the roots of one project's traces and on their spans."""
    c = Conditions(project)
    spans = c.spans
    if filters.model:
        model, params = _matching("model", filters.model, known.models)
        response_model, more = _matching("response_model", filters.model, known.models)
        spans.append(SpanCondition(f"kind = 'llm' AND ({model} OR {response_model})", params + more))
    if filters.user_id:
        spans.append(SpanCondition(*_matching("user_id", filters.user_id, known.users)))
    for column, value in (
        ("session_id", filters.session_id),
        ("feature", filters.feature),
        ("error_type", filters.error_type),
    ):
        if value:
            spans.append(SpanCondition(f"{column} = ?", [value]))
    if filters.template_version:
        # A version belongs to its template: both on the same span when both are given.
        named = [filters.template_id] if filters.template_id else []
        where = "template_version = ?" + (" AND template_id = ?" if named else "")
        spans.append(SpanCondition(where, [filters.template_version, *named]))
    elif filters.template_id:
        spans.append(SpanCondition("template_id = ?", [filters.template_id]))
    if filters.tool:
        spans.append(SpanCondition("kind = 'tool' AND tool_name = ?", [filters.tool]))
    if filters.text:
        spans.append(SpanCondition("kind = 'llm' AND (prompt ILIKE ? OR response ILIKE ?)", [f"%{filters.text}%"] * 2))
    if filters.status:
        # The root is one of its trace's spans, so this covers a failed root too.
        spans.append(SpanCondition("status = 'error'", [], negate=filters.status == "ok"))
    if filters.feedback:
        typed = filters.feedback not in (FEEDBACK_ANY, FEEDBACK_NONE)
        rated = "SELECT message_id FROM store.feedback WHERE project = ?" + (" AND feedback_type = ?" if typed else "")
        spans.append(
            SpanCondition(
                f"message_id IN ({rated})",
                [project, *([filters.feedback] if typed else [])],
                negate=filters.feedback == FEEDBACK_NONE,
            )
        )
    if filters.score:
        spans.append(SpanCondition(*parse_score_filter(filters.score).condition(project)))
    if filters.min_cost_usd is not None:
        spans.append(
            SpanCondition("kind = 'llm'", [], having="SUM(cost_usd) >= ?", having_params=[filters.min_cost_usd])
        )
    if filters.min_latency_ms is not None:
        c.roots.append("r.latency_ms >= ?")
        c.root_params.append(filters.min_latency_ms)
    return c
