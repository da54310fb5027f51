"""Insights: optimisation advice computed from a project's own traffic, in dollars and seconds.

One module per finding kind (`_cacheable_prompts.py`, ...), a registry of them, a runner that runs them
over one project and window, and the service that keeps their results cached per project and window.
"""

from ._context import FindingContext, Prices, TokenRates
from ._embeddings import Embeddings, EmbeddingStore, open_embeddings
from ._model import KINDS, Action, Chart, Examined, Insight, InsightsReport, rank
from ._registry import FINDERS
from ._runner import DEFAULT_MAX_CALLS, compute_insights
from ._service import Answer, InsightsService, WindowKey

__all__ = [
    "DEFAULT_MAX_CALLS",
    "FINDERS",
    "KINDS",
    "Action",
    "Answer",
    "Chart",
    "EmbeddingStore",
    "Embeddings",
    "Examined",
    "FindingContext",
    "Insight",
    "InsightsReport",
    "InsightsService",
    "Prices",
    "TokenRates",
    "WindowKey",
    "compute_insights",
    "open_embeddings",
    "rank",
]
