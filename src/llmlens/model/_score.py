"""The score record: one judgement of one call or span (human, evaluator, SDK, feedback or inferred)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ._span import DEFAULT_PROJECT


class ScoreSource(StrEnum):
    """Who made a judgement."""

    HUMAN = "human"  # a person, through the API or the UI
    EVALUATOR = "evaluator"  # an automatic check or an LLM judge
    SDK = "sdk"  # the app itself, through `llmlens.score`
    FEEDBACK = "feedback"  # the end user's thumbs (read from the feedback table, never stored as a score)
    INFERRED = "inferred"  # implicit feedback llmlens infers from sessions (retry, edit, abandon)


class ScoreDataType(StrEnum):
    """What kind of value a score name holds; fixed by the first score of that name in a project."""

    NUMERIC = "numeric"
    BOOLEAN = "boolean"
    CATEGORICAL = "categorical"


# The name thumbs up/down take in the `scores` view (1 for up, 0 for down).
USER_FEEDBACK_SCORE = "user_feedback"
# Names of the implicit signals the inferred-feedback service writes.
INFERRED_SCORES = ("retry", "edit", "abandon")


@dataclass(slots=True)
class Score:
    """One judgement. It names the message (LLM call) or the span it is about, or both.

    `value` holds numbers and booleans (1.0 / 0.0); `label` holds the category of a categorical score.
    Trace and span of a score given by message id are resolved when it is read, so a score may arrive
    before the call it rates.
    """

    score_id: str
    name: str
    data_type: str  # ScoreDataType
    timestamp_us: int
    project: str = DEFAULT_PROJECT
    value: float | None = None
    label: str | None = None
    source: str = ScoreSource.HUMAN.value
    message_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    evaluator: str | None = None
    evaluator_version: str | None = None
    comment: str | None = None
    reasoning: str | None = None  # a judge's explanation of its verdict
    judge_cost_usd: float | None = None  # what the judge call cost (never counted as the app's spend)
    metadata: dict[str, Any] = field(default_factory=dict)
