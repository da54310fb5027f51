"""Storing scores sent by callers (API, ingest, SDK, OTLP): reserved names, redaction, rejects by index."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from llmlens.ingest import truncate_text
from llmlens.model import INFERRED_SCORES, USER_FEEDBACK_SCORE, Score, ScoreDataType, ScoreSource
from llmlens.redaction import Redactor
from llmlens.store import Store, current_project

ScoreTransform = Callable[[Score], None]

# What to send instead, by the data type a score's name already has.
_EXPECTED = {
    ScoreDataType.NUMERIC.value: "send a number as value",
    ScoreDataType.BOOLEAN.value: "send true or false as value",
    ScoreDataType.CATEGORICAL.value: "send the category as label",
}


@dataclass(slots=True)
class RecordedScores:
    """How a batch went: `rejected` holds (index in the request, reason)."""

    accepted: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    score_ids: dict[int, str] = field(default_factory=dict)


def reserved_name_error(score: Score) -> str | None:
    """Names llmlens itself writes cannot be sent by callers (their meaning and type are fixed)."""
    if score.name == USER_FEEDBACK_SCORE:
        return (
            f"score name {USER_FEEDBACK_SCORE!r} is reserved: it is made from thumbs feedback "
            "(send feedback_type thumbs_up/thumbs_down to /api/v1/ingest, or llmlens.feedback)"
        )
    if score.name in INFERRED_SCORES and score.source != ScoreSource.INFERRED.value:
        return (
            f"score name {score.name!r} is reserved for inferred feedback; send an explicit "
            f"{score.name} as feedback (feedback_type {score.name!r}) or pick another name"
        )
    return None


def type_conflict_error(score: Score, registered: str) -> str:
    given = "a category (label)" if score.data_type == ScoreDataType.CATEGORICAL.value else f"a {score.data_type} value"
    return (
        f"score {score.name!r} is {registered} in this project, got {given}: "
        f"{_EXPECTED.get(registered, 'send a value of its type')}"
    )


def record_scores(
    store: Store, indexed: Sequence[tuple[int, Score]], transforms: Sequence[ScoreTransform] = ()
) -> RecordedScores:
    """Write the valid scores; each invalid one is reported by its index, the others are kept."""
    out = RecordedScores()
    confined = current_project.get()
    candidates: list[tuple[int, Score]] = []
    for index, score in indexed:
        if confined is not None:  # a caller confined to a project writes only there
            score.project = confined
        reason = reserved_name_error(score)
        if reason is not None:
            out.rejected.append((index, reason))
            continue
        for transform in transforms:
            transform(score)
        candidates.append((index, score))
    if candidates:
        result = store.write_scores([s for _, s in candidates])
        for position, (index, score) in enumerate(candidates):
            registered = result.type_conflicts.get(position)
            if registered is not None:
                out.rejected.append((index, type_conflict_error(score, registered)))
            else:
                out.accepted += 1
                out.score_ids[index] = score.score_id
    out.rejected.sort()
    return out


_TEXT_FIELDS = (
    "score_id",
    "name",
    "label",
    "source",
    "message_id",
    "evaluator",
    "evaluator_version",
    "comment",
    "reasoning",
)


def _encodable(text: str) -> str:
    """Lone surrogates (valid JSON escapes, not text) would fail the store's insert: replace them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def _encodable_value(value: object) -> object:
    """Text made encodable, and numbers no JSON column takes (NaN, infinities, giant ints) dropped."""
    if isinstance(value, str):
        return _encodable(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 63:
        return None
    if isinstance(value, dict):
        return {_encodable(str(k)): _encodable_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encodable_value(v) for v in value]
    return value


def score_content_transforms(redactor: Redactor | None, max_field_chars: int) -> list[ScoreTransform]:
    """What every stored score goes through, as spans do: redaction of its free text, then limits."""

    def redact(score: Score) -> None:
        assert redactor is not None
        if redactor.mode == "metadata_only":
            score.comment = score.reasoning = None
            return
        if score.comment:
            score.comment = redactor.redact_text(score.comment)
        if score.reasoning:
            score.reasoning = redactor.redact_text(score.reasoning)
        if score.metadata:
            score.metadata = redactor.redact_value(score.metadata)

    def limit(score: Score) -> None:
        for name in _TEXT_FIELDS:
            text = getattr(score, name)
            if text:
                setattr(score, name, truncate_text(_encodable(text), max_field_chars))
        if score.metadata:
            score.metadata = _encodable_value(score.metadata)  # type: ignore[assignment]

    transforms: list[ScoreTransform] = []
    if redactor is not None and redactor.active:
        transforms.append(redact)
    transforms.append(limit)
    return transforms
