"""Every finding kind and the function that finds it: one module per kind."""

from __future__ import annotations

from collections.abc import Callable

from ._cacheable_prompts import find_cacheable_prompts
from ._context import FindingContext
from ._context_growth import find_context_growth
from ._cost_outliers import find_cost_outliers
from ._max_tokens import find_max_tokens
from ._model import KINDS, Insight
from ._parallelizable_calls import find_parallelizable_calls
from ._prompt_caching import find_prompt_caching
from ._retries import find_retries
from ._smaller_model import find_smaller_model
from ._streaming import find_streaming

Finder = Callable[[FindingContext], list[Insight]]

FINDERS: dict[str, Finder] = {
    "cacheable_prompts": find_cacheable_prompts,
    "prompt_caching": find_prompt_caching,
    "context_growth": find_context_growth,
    "smaller_model": find_smaller_model,
    "parallelizable_calls": find_parallelizable_calls,
    "max_tokens": find_max_tokens,
    "streaming": find_streaming,
    "retries": find_retries,
    "cost_outliers": find_cost_outliers,
}
assert tuple(FINDERS) == KINDS
