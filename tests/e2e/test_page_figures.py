"""Every figure of every dashboard page agrees with its JSON twin: on a real `--demo` server, for every
page and every time range, each number of the page's `/api/v1` JSON that the page displays (tokens,
costs, latencies, counts, rates) appears on the rendered page in its formatted form, in the row of the
thing it belongs to. A formatter or a template that disagrees with the data fails here.

FIGURES says, per page, which JSON figures are shown and how; NOT_SHOWN names the numbers a page does
not display, with why. A numeric JSON value that neither covers fails the test, so a figure cannot be
added to a page's data without deciding how the page shows it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from tests.support.llmlens_server import LLMLensServer

from llmlens.query import RANGES
from llmlens.server.routes._formatting import cost_or_unpriced, count, ms, pct, rate, usd

pytestmark = pytest.mark.slow  # every page over every range: a couple of minutes on a small machine

# -- how a page shows a figure ------------------------------------------------------------------------


@dataclass(frozen=True)
class At:
    """Where a value sits in the JSON: the object holding it, the list items on its path (outer to
    inner), the keys of maps (`*` in a path) on its path, and the whole document."""

    parent: dict[str, Any]
    items: tuple[dict[str, Any], ...]
    keys: tuple[str, ...]
    root: dict[str, Any]


Shown = Callable[[Any, At], "str | None"]  # the text the page shows for the value; None: nothing, by design
RowKey = Callable[[At], tuple[str, ...]]  # texts that together name the figure's row (table row or list item)


@dataclass(frozen=True)
class Figure:
    path: str  # e.g. `cost.by_model[].calls`: `[]` is any list item, `*` any key of a map
    shown: Shown
    row: RowKey | None = None  # None: anywhere on the page (tiles, headings, facts)


def item(*names: str) -> RowKey:
    """The row named by fields of the innermost list item."""
    return lambda at: tuple(str(at.items[-1][n]) for n in names)


def first_item(*names: str) -> RowKey:
    """The row named by fields of the outermost list item (a score table's row holds several cells)."""
    return lambda at: tuple(str(at.items[0][n]) for n in names)


def map_key(at: At) -> tuple[str, ...]:
    return (at.keys[-1],)


def fmt(formatter: Callable[[Any], str]) -> Shown:
    return lambda value, at: formatter(value)


def text(value: Any, at: At) -> str:
    return str(value)


def cost_of_row(value: Any, at: At) -> str:
    """A cost cell: `unpriced` or `$x + unpriced` for calls without a price, never a silent $0."""
    return cost_or_unpriced(value, at.parent.get("unpriced_calls"))


def unpriced_note(value: Any, at: At) -> str | None:
    return "unpriced" if value else None


def if_history(formatter: Callable[[Any], str]) -> Shown:
    """The forecast's interval is shown when the forecast has days of history to fit."""
    return lambda value, at: formatter(value) if at.parent["days_of_history"] else None


def days_of_history(value: Any, at: At) -> str:
    return f"{value} day{'' if value == 1 else 's'} of history"


def interval(value: Any, at: At) -> str | None:
    return f"{round(value * 100)} % interval" if at.parent["days_of_history"] else None


def proportion(name: str) -> Shown:
    """_macros.ci: `rate [low–high] n=N`, or `no data` without a rate."""

    def shown(value: Any, at: At) -> str:
        if at.parent["rate"] is None:
            return "no data"
        return f"n={value}" if name == "n" else pct(value)

    return shown


INFERRED_SCORES = ("retry", "edit", "abandon")  # shown as a share of calls


def score_cell(name: str) -> Shown:
    """_scores.score_cell: `mean [low–high] n=count` with 3 significant digits, `n=count` without a mean,
    `—` for no scored call; an inferred signal as its share of calls, `12.5 % of calls, n=count`."""

    def shown(value: Any, at: At) -> str | None:
        cell = at.parent
        if not cell["count"]:
            return "—" if name == "count" else None
        if name == "count":
            return f"n={value}"
        as_share = cell["name"] in INFERRED_SCORES and cell.get("per_call") is not None
        if name == "per_call":
            return f"{pct(value)} of calls" if as_share else None
        if as_share:
            return None
        return None if value is None else f"{value:.3g}"

    return shown


def score_value(value: Any, at: At) -> str:
    """_scores.score_value: a score's label, true/false, or its value to 4 significant digits."""
    score = at.parent
    if score.get("label") is not None:
        return str(score["label"])
    if score.get("data_type") == "boolean":
        return "true" if value else "false"
    return f"{value:.4g}"


def change(value: Any, at: At) -> str:
    """prompts.html: a version's change from the one before, `+102 %` (flagged ⚑ when large)."""
    return "—" if value is None else f"{value * 100:+.0f} %"


def recovered_from(value: Any, at: At) -> str | None:
    """prompt.html: the template texts of the two versions compared say where they come from; a text
    recovered from the calls says from how many."""
    comparison = at.root["comparison"]
    compared = at.items[-1]["template_version"] in (comparison["a"], comparison["b"]) and comparison["a"]
    if not compared or at.parent.get("source") != "recovered":
        return None
    return f"recovered from the filled prompts of {value} of its latest calls"


def times_cheapest(value: Any, at: At) -> str:
    return f"×{value:.1f}" if value else "—"


def budget_used(value: Any, at: At) -> str:
    return pct(value, 0) if value is not None else "no budget"


def per_month(value: Any, at: At) -> str | None:
    return f"{usd(value)}/mo" if value is not None else None


def optional_count(value: Any, at: At) -> str | None:
    return str(value) if value else None


def feedback_chip(value: Any, at: At) -> str:
    """sessions.html: a chip per feedback kind, `×n` when there is more than one."""
    label = at.keys[-1].replace("thumbs_", "").replace("_", " ")
    return f"{label} ×{value}" if value > 1 else label


def in_cache_tile(formatter: Callable[[Any], str]) -> Shown:
    return lambda value, at: formatter(value) if at.parent["hits"] else None


def scores_figures(groups: tuple[str, ...]) -> list[Figure]:
    """_scores.score_section: one table per breakdown in `groups`, a row per key, a cell per score."""
    return [
        Figure(f"scores.by_{g}[].scores[].{name}", score_cell(name), first_item("key"))
        for g in groups
        for name in ("mean", "ci_low", "ci_high", "count", "per_call")
    ] + [Figure(f"scores.by_{g}[].calls", fmt(count), first_item("key")) for g in groups]


def scores_not_shown(groups: tuple[str, ...]) -> list[str]:
    hidden = [g for g in ("feature", "model", "template_version", "user_tier", "speed") if g not in groups]
    return [
        "scores.overall[]",  # the score tables show the breakdowns only
        "scores.calls",
        "scores.by_*[].calls_scored",  # each cell carries its own count
        *(f"scores.by_{g}[]" for g in hidden),  # this page does not show that breakdown
    ]


def forecast_figures(prefix: str) -> list[Figure]:
    """The month-end forecast tile (_macros.forecast_tile), the same on the Overview and the Cost page."""
    return [
        Figure(f"{prefix}.projected_usd", fmt(usd)),
        Figure(f"{prefix}.low_usd", if_history(usd)),
        Figure(f"{prefix}.high_usd", if_history(usd)),
        Figure(f"{prefix}.interval", interval),
        Figure(f"{prefix}.days_of_history", days_of_history),
        Figure(f"{prefix}.month_to_date_usd", fmt(usd)),
        Figure(f"{prefix}.spend_today_usd", fmt(usd)),
    ]


FORECAST_NOT_SHOWN = ["month.trend_usd_per_day", "month.daily[]"]  # behind the figure, not on the page

FIGURES: dict[str, list[Figure]] = {
    "overview": [
        Figure("overview.totals.requests_per_s", fmt(rate)),
        Figure("overview.totals.requests", lambda v, at: f"{count(v)} requests"),
        Figure("overview.totals.llm_calls", lambda v, at: f"{count(v)} LLM calls"),
        Figure("overview.totals.error_rate", lambda v, at: pct(v, 2)),
        Figure("overview.totals.llm_errors", lambda v, at: f"{count(v)} failed calls"),
        Figure("overview.totals.http_4xx", lambda v, at: f"4xx: {count(v)}"),
        Figure("overview.totals.http_5xx", lambda v, at: f"5xx: {count(v)}"),
        Figure("overview.totals.cost_usd", fmt(usd)),
        Figure("overview.totals.latency_p50_ms", fmt(ms)),
        Figure("overview.totals.latency_p95_ms", fmt(ms)),
        Figure("overview.totals.latency_p99_ms", fmt(ms)),
        Figure("overview.totals.total_tokens", fmt(count)),
        Figure("overview.totals.prompt_tokens", lambda v, at: f"prompt {count(v)}"),
        Figure("overview.totals.completion_tokens", lambda v, at: f"completion {count(v)}"),
        Figure("overview.errors_by_type.*", fmt(count), map_key),
        *forecast_figures("overview.month"),
    ],
    "cost": [
        Figure("cost.total_usd", cost_of_row),
        Figure("cost.calls", lambda v, at: f"{count(v)} calls"),
        Figure("cost.unpriced_calls", lambda v, at: f"{count(v)} without a price" if v else None),
        *forecast_figures("cost.month"),
        Figure("cost.unpriced[].calls", fmt(count), item("model")),
        Figure("cost.unpriced[].prompt_tokens", fmt(count), item("model")),
        Figure("cost.unpriced[].completion_tokens", fmt(count), item("model")),
        Figure("cost.by_model[].cost_usd", cost_of_row, item("model")),
        Figure("cost.by_model[].calls", fmt(count), item("model")),
        Figure(
            "cost.by_model[].unpriced_calls",
            lambda v, at: f"{count(v)} calls without a price" if v else None,
            item("model"),
        ),
        Figure("cost.by_feature[].cost_usd", cost_of_row, item("feature")),
        Figure("cost.by_feature[].calls", fmt(count), item("feature")),
        Figure("cost.by_feature[].unpriced_calls", unpriced_note, item("feature")),
        Figure("cost.by_feature[].cost_per_call_usd", fmt(usd), item("feature")),
        Figure("cost.by_feature[].times_cheapest", times_cheapest, item("feature")),
        Figure("cost.by_template_version[].cost_usd", cost_of_row, item("template_id", "template_version")),
        Figure("cost.by_template_version[].calls", fmt(count), item("template_id", "template_version")),
        Figure("cost.by_template_version[].unpriced_calls", unpriced_note, item("template_id", "template_version")),
        Figure("cost.by_template_version[].cost_per_call_usd", fmt(usd), item("template_id", "template_version")),
        Figure("cost.top_users[].cost_usd", fmt(usd), item("user_id")),
        Figure("cost.top_users[].month_to_date_usd", fmt(usd), item("user_id")),
        Figure("cost.top_users[].monthly_budget_usd", per_month, item("user_id")),
        Figure("cost.top_users[].budget_used", budget_used, item("user_id")),
        *(
            Figure(f"forecast.{group}[].{name}", fmt(usd), item("name"))
            for group in ("by_feature", "by_user")
            for name in ("month_to_date_usd", "projected_usd", "low_usd", "high_usd")
        ),
        Figure("cache.hits", in_cache_tile(lambda v: f"{count(v)} cache hits")),
        Figure("cache.saved_usd", in_cache_tile(usd)),
    ],
    "latency": [
        Figure("latency.by_model[].calls", fmt(count), item("model")),
        *(
            Figure(f"latency.by_model[].{name}", fmt(ms), item("model"))
            for name in ("p50_ms", "p95_ms", "p99_ms", "ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms")
        ),
        Figure("latency.by_model[].tokens_per_s_p50", lambda v, at: "—" if v is None else f"{v:.1f}", item("model")),
        Figure("latency.slowest[].latency_ms", fmt(ms), item("span_id")),
        Figure("latency.slowest[].ttft_ms", fmt(ms), item("span_id")),
        Figure(
            "latency.slowest[].prompt_tokens",
            lambda v, at: f"{count(v)} / {count(at.parent['completion_tokens'])}",
            item("span_id"),
        ),
        Figure("latency.slowest[].completion_tokens", lambda v, at: f"/ {count(v)}", item("span_id")),
        *scores_figures(("model", "speed", "feature", "template_version", "user_tier")),
    ],
    "prompts": [
        Figure("templates[].calls", lambda v, at: f"{count(v)} calls", item("template_id")),
        Figure("templates[].versions[].calls", fmt(count), item("template_version")),
        Figure("templates[].versions[].avg_prompt_tokens", fmt(count), item("template_version")),
        Figure("templates[].versions[].cost_usd", fmt(usd), item("template_version")),
        Figure("templates[].versions[].cost_per_call_usd", fmt(usd), item("template_version")),
        Figure("templates[].versions[].change.prompt_tokens", change, item("template_version")),
        Figure("templates[].versions[].change.cost_per_call", change, item("template_version")),
        Figure("templates[].versions[].error_rate", fmt(pct), item("template_version")),
        Figure("outliers[].prompt_tokens", fmt(count), item("span_id")),
        Figure("outliers[].cost_usd", fmt(usd), item("span_id")),
        *scores_figures(("template_version", "model", "feature", "user_tier")),
    ],
    "prompt": [
        Figure("comparison.versions[].calls", fmt(count), item("template_version")),
        Figure("comparison.versions[].avg_prompt_tokens", lambda v, at: f"{count(v)} /", item("template_version")),
        Figure("comparison.versions[].avg_completion_tokens", lambda v, at: f"/ {count(v)}", item("template_version")),
        Figure("comparison.versions[].cost_usd", fmt(usd), item("template_version")),
        Figure("comparison.versions[].cost_per_call_usd", fmt(usd), item("template_version")),
        Figure("comparison.versions[].change.prompt_tokens", change, item("template_version")),
        Figure("comparison.versions[].change.cost_per_call", change, item("template_version")),
        Figure("comparison.change.prompt_tokens", change),
        Figure("comparison.change.cost_per_call", change),
        Figure("comparison.versions[].template.calls", recovered_from),
        Figure("comparison.versions[].latency_p50_ms", lambda v, at: f"{ms(v)} /", item("template_version")),
        Figure("comparison.versions[].latency_p95_ms", lambda v, at: f"/ {ms(v)}", item("template_version")),
        *(
            Figure(f"comparison.versions[].{group}.{name}", proportion(name), item("template_version"))
            for group in ("errors", "satisfaction")
            for name in ("rate", "ci_low", "ci_high", "n")
        ),
    ],
    "tools": [
        Figure("tools.tools[].calls", fmt(count), item("tool_name")),
        Figure("tools.tools[].failures", fmt(count), item("tool_name")),
        Figure("tools.tools[].success_rate", fmt(pct), item("tool_name")),
        *(Figure(f"tools.tools[].{n}", fmt(ms), item("tool_name")) for n in ("avg_ms", "p50_ms", "p95_ms", "p99_ms")),
    ],
    "feedback": [
        Figure("feedback.total", fmt(count)),
        Figure("feedback.explicit", fmt(count)),
        Figure("feedback.implicit", fmt(count)),
        Figure("feedback.by_type.*", fmt(count)),
        *(
            Figure(f"feedback.{group}[].satisfaction.{name}", proportion(name), item("key"))
            for group in ("by_speed", "by_feature", "by_model", "by_template_version")
            for name in ("rate", "ci_low", "ci_high", "n")
        ),
        *(
            Figure(f"feedback.{group}[].{name}", fmt(count), item("key"))
            for group in ("by_speed", "by_feature", "by_model", "by_template_version")
            for name in ("feedback", "thumbs_down")
        ),
        Figure("rated.total", lambda v, at: f"{count(v)} feedback event{'' if v == 1 else 's'}"),
        Figure("rated.calls[].latency_ms", fmt(ms), item("feedback_id")),
        *scores_figures(("feature", "model", "template_version", "user_tier")),
    ],
    "traces": [
        Figure("total", lambda v, at: f"{v:,}"),
        Figure("traces[].total_tokens", fmt(count), item("trace_id")),
        Figure("traces[].cost_usd", fmt(usd), item("trace_id")),
        Figure("traces[].latency_ms", fmt(ms), item("trace_id")),
    ],
    "trace": [
        Figure("trace.cost_usd", fmt(usd)),
        Figure("trace.duration_ms", fmt(ms)),
        Figure("trace.total_tokens", fmt(count)),
        Figure("trace.axis[].offset_ms", fmt(ms)),
        Figure("trace.spans[].span.latency_ms", fmt(ms), lambda at: (str(at.items[-1]["span"]["span_id"]),)),
        Figure("scores.all[].value", score_value, item("name", "source")),
        Figure("scores.all[].judge_cost_usd", lambda v, at: f"judge {usd(v)}", item("name", "source")),
    ],
    "sessions": [
        Figure("total", lambda v, at: f"{v:,}"),
        Figure("sessions[].cost_usd", fmt(usd), item("session_id")),
        Figure("sessions[].duration_ms", fmt(ms), item("session_id")),
        Figure("sessions[].turns", text, item("session_id")),
        Figure("sessions[].llm_calls", text, item("session_id")),
        Figure("sessions[].errors", optional_count, item("session_id")),
        Figure("sessions[].feedback.*", feedback_chip, item("session_id")),
    ],
    "session": [
        Figure("session.cost_usd", fmt(usd)),
        Figure("session.turns[].cost_usd", fmt(usd), item("trace_id")),
        Figure("session.turns[].latency_ms", fmt(ms), item("trace_id")),
        Figure("session.turns[].prompt_tokens", lambda v, at: f"{count(v)} →", item("trace_id")),
        Figure("session.turns[].completion_tokens", lambda v, at: f"→ {count(v)} tokens", item("trace_id")),
    ],
}

NOT_SHOWN: dict[str, list[str]] = {
    "overview": [
        "overview.trends.*",  # charts: their data is the chart itself
        "overview." + FORECAST_NOT_SHOWN[0],
        "overview." + FORECAST_NOT_SHOWN[1],
        "alerts[]",  # an active alert shows its name and message, which carries its figures
    ],
    "cost": [
        "cost.by_model_over_time",  # chart
        "cost." + FORECAST_NOT_SHOWN[0],
        "cost." + FORECAST_NOT_SHOWN[1],
        "cost.top_users[].calls",  # the spenders table ranks by cost
        "budgets.*",  # the tiers' budgets show per user, as monthly_budget_usd
    ],
    "latency": [
        "latency.overall",  # charts
        "latency.p95_by_model",
        "latency.ttft_p50_by_model",
        "latency.tokens_per_s_by_model",
        "latency.histogram[]",  # drawn as the histogram chart
        *scores_not_shown(("model", "speed", "feature", "template_version", "user_tier")),
    ],
    "prompts": [
        "prompt_length",  # chart
        "thresholds.*",  # the outlier form's own inputs
        *scores_not_shown(("template_version", "model", "feature", "user_tier")),
    ],
    "prompt": [
        "comparison.prompt_length",  # chart
        "comparison.rollouts[]",  # chart markers
        "comparison.versions[].*.successes",  # the rate and n are shown
        "comparison.error_rate_test.*",  # stated in words by the verdict
        "comparison.satisfaction_test.*",
    ],
    "tools": ["tools.success_over_time"],  # chart
    "feedback": [
        "feedback.by_type_over_time",  # chart
        "feedback.by_*[].satisfaction.successes",  # the rate and n are shown
        "feedback.by_*[].thumbs_up",  # part of the feedback count and the satisfaction
        "rated.limit",  # the list's length; the page says how many of the total it shows
        *scores_not_shown(("feature", "model", "template_version", "user_tier")),
    ],
    "traces": [
        "traces[].llm_calls",  # in the tokens cell's tooltip
        "traces[].spans",
    ],
    "trace": [
        "trace.axis[].offset_pct",  # layout of the waterfall
        "trace.spans[].depth",
        "trace.spans[].offset_pct",
        "trace.spans[].width_pct",
        "trace.spans[].span.*",  # a span's details show in its panel when it is picked
        "scores.by_span.*",  # the picked span's scores, in its panel
    ],
    "sessions": [],
    "session": ["session.turns[].llm_calls"],
}

# -- reading a page ---------------------------------------------------------------------------------------

_ROW_TAGS = {"tr", "li"}
_SKIPPED = {"script", "style", "template"}


@dataclass
class _Row:
    attrs: list[str]
    parts: list[str]

    @property
    def text(self) -> str:
        return _squash("".join(self.parts))


class _PageText(HTMLParser):
    """The visible text of a page, and of each table row and list item with its attribute values."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.rows: list[_Row] = []
        self._open: list[_Row | None] = []  # one entry per open row tag
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skip += 1
        values = [v for _, v in attrs if v]
        if tag in _ROW_TAGS:
            row = _Row(values, [])
            self.rows.append(row)
            self._open.append(row)
        else:
            for row in self._open:
                if row is not None:
                    row.attrs.extend(values)
        if tag in {"td", "th", "br", "p", "div", "section", "span", "small", "dd", "dt"}:
            self._data(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip = max(self._skip - 1, 0)
        if tag in _ROW_TAGS and self._open:
            self._open.pop()
        if tag in {"td", "th", "p", "div", "section", "span", "small", "dd", "dt"}:
            self._data(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._data(data)

    def _data(self, data: str) -> None:
        self.parts.append(data)
        for row in self._open:
            if row is not None:
                row.parts.append(data)

    @property
    def text(self) -> str:
        return _squash("".join(self.parts))


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _contains(haystack: str, needle: str) -> bool:
    """`needle` as a whole figure: not part of a longer number or word (`$1.2` is not in `$1.23`)."""
    pattern = r"(?<![\w.,$])" + re.escape(needle) + r"(?![\w]|[.,]\d)"
    if needle[:1] in "$—×/→" or not needle[:1].isalnum():
        pattern = re.escape(needle) + r"(?![\w]|[.,]\d)"
    return re.search(pattern, haystack) is not None


def _row_named(row: _Row, names: tuple[str, ...]) -> bool:
    """A row is named by a text when it shows it as a word or carries it in an attribute: a data attribute,
    or a link that holds an id (ids are long; a short name in a link would match by chance)."""

    def named(name: str) -> bool:
        in_attrs = any(name == a or (len(name) >= 8 and name in a) for a in row.attrs)
        # A whole name: `gpt-4o` does not name the row of `gpt-4o-mini`.
        in_text = re.search(r"(?<![\w.-])" + re.escape(name) + r"(?![\w-]|[.,]\w)", row.text) is not None
        return in_attrs or in_text

    return all(named(name) for name in names)


# -- walking the JSON -------------------------------------------------------------------------------------


def _leaves(value: Any, path: str, at: At) -> Iterator[tuple[str, Any, At]]:
    """Every number (and null where a number may be) with its path, `[]` for list items."""
    if isinstance(value, dict):
        for key, child in value.items():
            child_at = At(value, at.items, at.keys, at.root)
            yield from _leaves(child, f"{path}.{key}" if path else str(key), child_at)
    elif isinstance(value, list):
        for child in value:
            child_items = (*at.items, child) if isinstance(child, dict) else at.items
            yield from _leaves(child, f"{path}[]", At(at.parent, child_items, at.keys, at.root))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield path, value, at


def _regex(pattern: str, *, under: bool) -> re.Pattern[str]:
    """`a.*[].b` as a regex over concrete paths: `*` is one map key (captured); with `under`, the pattern
    also covers every path below it."""
    body = re.escape(pattern).replace(r"\*", r"([^.\[\]]+)")
    return re.compile(f"^{body}" + (r"(?:$|[.\[])" if under else "$"))


def check_page(page: str, doc: dict[str, Any], html: str) -> list[str]:
    """Every displayed figure of `doc` on the page, in its row; every number either displayed or
    declared not shown. Returns what is wrong."""
    parsed = _PageText()
    parsed.feed(html)
    parsed.close()
    page_text = parsed.text
    figures = [(_regex(fig.path, under=False), fig) for fig in FIGURES[page]]
    hidden = [_regex(p, under=True) for p in NOT_SHOWN[page]]
    problems: list[str] = []
    for path, value, at in _leaves(doc, "", At({}, (), (), doc)):
        matched = next(((m, fig) for regex, fig in figures if (m := regex.match(path))), None)
        if matched is None:
            if not any(h.match(path) for h in hidden):
                problems.append(
                    f"{path} = {value!r} is in the JSON but neither in FIGURES (shown, and how) nor in NOT_SHOWN"
                )
            continue
        found, figure = matched
        located = At(at.parent, at.items, tuple(found.groups()), doc)
        expected = figure.shown(value, located)
        if expected is None:
            continue
        if figure.row is None:
            if not _contains(page_text, expected):
                problems.append(f"{path} = {value!r} should show as {expected!r}; not on the page")
            continue
        names = figure.row(located)
        rows = [r for r in parsed.rows if _row_named(r, names)]
        if not rows:
            problems.append(f"{path} = {value!r}: no row of the page names {names}")
        elif not any(_contains(r.text, expected) for r in rows):
            shown = " | ".join(r.text[:200] for r in rows[:3])
            problems.append(
                f"{path} = {value!r} should show as {expected!r} in the row of {names}; the row reads: {shown}"
            )
    return problems


# -- the test ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    with LLMLensServer(tmp_path_factory.mktemp("figures-data"), demo=True) as srv:
        yield srv


def _window(client: httpx.Client, length: str) -> dict[str, str]:
    """The range as explicit from/to times, so the page and its JSON read the very same window even when
    a minute turns between the two requests."""
    window = client.get("/api/v1/overview", params={"range": length}).json()["window"]
    end = datetime.fromisoformat(window["end"].removesuffix("Z"))
    return {"from": (end - RANGES[length]).isoformat() + "Z", "to": end.isoformat() + "Z"}


def _paths(client: httpx.Client, page: str, window: dict[str, str]) -> list[str]:
    """The page's paths under /api/v1 for this window: item pages for a trace, a session, two templates."""
    if page == "overview":
        return ["/overview"]
    if page == "trace":
        found = client.get("/api/v1/traces", params={**window, "sort": "-cost"}).json()["traces"]
        return [f"/traces/{t['trace_id']}" for t in found[:2]]
    if page == "session":
        found = client.get("/api/v1/sessions", params=window).json()["sessions"]
        return [f"/sessions/{s['session_id']}" for s in found[:2]]
    if page == "prompt":
        found = client.get("/api/v1/prompts", params=window).json()["templates"]
        ids = [t["template_id"] for t in found]
        return [f"/prompts/{i}" for i in dict.fromkeys(ids[:1] + [i for i in ids if i == "support_answer"])]
    return [f"/{page}"]


@pytest.mark.parametrize("page", list(FIGURES))
def test_every_figure_on_the_page_matches_its_json(demo: LLMLensServer, page: str) -> None:
    checked = 0
    with demo.client() as client:
        for length in RANGES:
            window = _window(client, length)
            for path in _paths(client, page, window):
                doc = client.get("/api/v1" + path, params=window)
                assert doc.status_code == 200, f"{path} {length}: {doc.text[:300]}"
                html = client.get("/" if path == "/overview" else path, params=window)
                assert html.status_code == 200, f"{path} {length}: {html.text[:300]}"
                problems = check_page(page, doc.json(), html.text)
                assert problems == [], f"{page} ({path}, range {length}):\n" + "\n".join(problems[:25])
                checked += 1
    assert checked >= len(RANGES)  # the item pages found an item in every range
