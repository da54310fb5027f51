"""Analytics questions as typed functions over a Store: each takes a Scope (project and time
window) and returns plain dataclasses. SQL is simple and portable (read from the views, filter
`project = ?` explicitly) so other backends can translate it."""

from ._common import Scope, Series, TimeChart, rate_unit, together
from ._rollup import aggregate, rollups_enabled, user_spend
from ._times import DURATION_FORMS, TIME_FORMS, WindowError, is_duration, parse_duration, parse_time
from ._window import DEFAULT_RANGE, RANGES, TimeWindow, parse_window, utc_now
from .budgets import Budgets, budgets_from_settings
from .cost import CostReport, cost_report
from .feedback import FeedbackReport, feedback_report
from .forecast import MonthForecast, month_forecast
from .latency import LatencyReport, latency_report
from .overview import Overview, overview
from .prompts import VersionComparison, outliers, prompt_length_by_template, prompt_versions, templates
from .sessions import SessionDetail, session_detail, session_list
from .tools import ToolsReport, tools_report
from .traces import CursorError, TraceDetail, TraceFilters, TracePage, trace_detail, trace_list

__all__ = [
    "DEFAULT_RANGE",
    "DURATION_FORMS",
    "RANGES",
    "TIME_FORMS",
    "Budgets",
    "CostReport",
    "CursorError",
    "FeedbackReport",
    "LatencyReport",
    "MonthForecast",
    "Overview",
    "Scope",
    "Series",
    "SessionDetail",
    "TimeChart",
    "TimeWindow",
    "ToolsReport",
    "TraceDetail",
    "TraceFilters",
    "TracePage",
    "VersionComparison",
    "WindowError",
    "aggregate",
    "budgets_from_settings",
    "cost_report",
    "feedback_report",
    "is_duration",
    "latency_report",
    "month_forecast",
    "outliers",
    "overview",
    "parse_duration",
    "parse_time",
    "parse_window",
    "prompt_length_by_template",
    "prompt_versions",
    "rate_unit",
    "rollups_enabled",
    "session_detail",
    "session_list",
    "templates",
    "together",
    "tools_report",
    "trace_detail",
    "trace_list",
    "user_spend",
    "utc_now",
]
