"""Replay stored LLM calls and whole traces, compare them across models and prompt versions, and score them."""

from .calls import CallFilter, load_span, load_trace, select_calls
from .compare import CompareRow, Comparison, ModelSummary, compare_row, run_compare, summarize, word_diff
from .providers import (
    CallOutcome,
    KeySource,
    MissingKey,
    ProviderError,
    Providers,
    UnknownUpstream,
    Unreachable,
    Upstream,
)
from .replay import Replayed, ReplayTarget, replay_call, resolve_targets
from .request import NotReplayable, ReplayOptions, fill_template, replay_body, template_from_call
from .scorers import Scorer, ScorerError, ScoreSample, parse_scorer, parse_scorers, score
from .service import NotFound, ReplayService, Selection, StoredRun
from .trace_replay import NothingToReplay, TraceReplay, TraceStep, replay_trace

__all__ = [
    "CallFilter",
    "CallOutcome",
    "CompareRow",
    "Comparison",
    "KeySource",
    "MissingKey",
    "ModelSummary",
    "NotFound",
    "NotReplayable",
    "NothingToReplay",
    "ProviderError",
    "Providers",
    "ReplayOptions",
    "ReplayService",
    "ReplayTarget",
    "Replayed",
    "ScoreSample",
    "Scorer",
    "ScorerError",
    "Selection",
    "StoredRun",
    "TraceReplay",
    "TraceStep",
    "UnknownUpstream",
    "Unreachable",
    "Upstream",
    "compare_row",
    "fill_template",
    "load_span",
    "load_trace",
    "parse_scorer",
    "parse_scorers",
    "replay_body",
    "replay_call",
    "replay_trace",
    "resolve_targets",
    "run_compare",
    "score",
    "select_calls",
    "summarize",
    "template_from_call",
    "word_diff",
]
