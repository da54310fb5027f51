"""Quality: scores (one kind of data for every judgement), implicit feedback inferred from sessions, online
evaluators (checks, LLM judges, RAG relevance, Python functions), datasets, experiments and annotation queues."""

from ._annotations import (
    AnnotationQueue,
    AnnotationStore,
    QueueError,
    ScoreScale,
    next_item,
    progress,
    review_score,
    reviews,
)
from ._dataset_sources import items_from_calls
from ._dataset_upload import UploadError, parse_upload
from ._datasets import Dataset, DatasetError, DatasetItem, DatasetStore, ItemError, item_from_call, item_from_doc
from ._evaluators import EvaluatorSpecError, build_evaluator, catalogue
from ._experiment_results import Results, experiment_results
from ._experiment_runner import ExperimentRunner
from ._experiment_spec import EXPERIMENT_FEATURE, Experiment, ExperimentError, ExperimentStore, parse_variant_text
from ._inference import (
    Call,
    Signal,
    Turn,
    Visit,
    conversational_features,
    infer_signals,
    similarity,
    split_visits,
    turns_from_calls,
    user_message,
)
from ._judge import JUDGE_FEATURE, JudgeSettings, JudgeSettingsError, judge_settings, parse_verdict
from ._judge_templates import BUILTIN_TEMPLATES, JudgeTemplate
from ._online import OnlineEvaluatorService, RuleStatus, load_spans, scores_today, spend_today, utc_day
from ._otlp import scores_from_spans
from ._queue import ScoreQueue
from ._record import RecordedScores, record_scores, reserved_name_error, score_content_transforms
from ._retrieval_view import retrieval_view
from ._rule_book import RuleBook, TemplateError
from ._rules import EvaluatorRule, RuleError, config_rules, parse_rule
from ._samples import context_before, trace_spans
from ._selection import CallSelection, SelectionError, parse_selection, select_calls
from ._service import EVALUATOR as INFERRED_EVALUATOR
from ._service import InferredFeedbackService, score_of
from ._settings import QualitySettings, quality_settings

__all__ = [
    "BUILTIN_TEMPLATES",
    "EXPERIMENT_FEATURE",
    "INFERRED_EVALUATOR",
    "JUDGE_FEATURE",
    "AnnotationQueue",
    "AnnotationStore",
    "Call",
    "CallSelection",
    "Dataset",
    "DatasetError",
    "DatasetItem",
    "DatasetStore",
    "EvaluatorRule",
    "EvaluatorSpecError",
    "Experiment",
    "ExperimentError",
    "ExperimentRunner",
    "ExperimentStore",
    "InferredFeedbackService",
    "ItemError",
    "JudgeSettings",
    "JudgeSettingsError",
    "JudgeTemplate",
    "OnlineEvaluatorService",
    "QualitySettings",
    "QueueError",
    "RecordedScores",
    "Results",
    "RuleBook",
    "RuleError",
    "RuleStatus",
    "ScoreQueue",
    "ScoreScale",
    "SelectionError",
    "Signal",
    "TemplateError",
    "Turn",
    "UploadError",
    "Visit",
    "build_evaluator",
    "catalogue",
    "config_rules",
    "context_before",
    "conversational_features",
    "experiment_results",
    "infer_signals",
    "item_from_call",
    "item_from_doc",
    "items_from_calls",
    "judge_settings",
    "load_spans",
    "next_item",
    "parse_rule",
    "parse_selection",
    "parse_upload",
    "parse_variant_text",
    "parse_verdict",
    "progress",
    "quality_settings",
    "record_scores",
    "reserved_name_error",
    "retrieval_view",
    "review_score",
    "reviews",
    "score_content_transforms",
    "score_of",
    "scores_from_spans",
    "scores_today",
    "select_calls",
    "similarity",
    "spend_today",
    "split_visits",
    "trace_spans",
    "turns_from_calls",
    "user_message",
    "utc_day",
]
