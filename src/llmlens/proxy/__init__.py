"""The LLM gateway: forward OpenAI-compatible and Anthropic calls, record them, enforce budgets, cache."""

from ._budgets import BudgetDecision, BudgetGuard, BudgetPolicy
from ._cache import ResponseCache, cache_key, canonical_body
from ._cached_features import CACHED_FEATURES_FILE, CachedFeatures
from ._config import GatewayConfig
from ._gateway import Gateway, UpstreamBrokeOff, make_client
from ._project_budgets import BUDGETS_FILE, ProjectBudgets
from ._recorder import SpanRecorder
from ._settings_files import settings_files_in
from ._spend import MonthToDateSpend
from ._upstreams import DEFAULT_UPSTREAMS, Upstream, parse_upstreams

__all__ = [
    "BUDGETS_FILE",
    "CACHED_FEATURES_FILE",
    "DEFAULT_UPSTREAMS",
    "BudgetDecision",
    "BudgetGuard",
    "BudgetPolicy",
    "CachedFeatures",
    "Gateway",
    "GatewayConfig",
    "MonthToDateSpend",
    "ProjectBudgets",
    "ResponseCache",
    "SpanRecorder",
    "Upstream",
    "UpstreamBrokeOff",
    "cache_key",
    "canonical_body",
    "make_client",
    "parse_upstreams",
    "settings_files_in",
]
