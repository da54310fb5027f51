"""Annotation queues: calls picked by a filter for people to score one at a time, with progress per reviewer.

A queue keeps the calls its filter matched when it was made (up to `MAX_QUEUE_ITEMS`), the score it asks
for (a number on a scale, good/bad, or one of a few labels) and how many people should review each call.
A review is a score with source `human`, the queue and the reviewer (the logged-in user, the API key, or
`anonymous` when auth is off) in its metadata: progress is read from the scores, so it is the same on every
server. A reviewer's skipped calls are kept per reviewer, so they do not come back to them.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from llmlens.model import Score, ScoreSource, now_us
from llmlens.state import SharedSettings
from llmlens.store import Store

QUEUE_KIND = "annotation_queue"
SKIP_KIND = "annotation_skip"
MAX_QUEUE_ITEMS = 500
SCORE_TYPES = ("numeric", "boolean", "categorical")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
_SCORE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


class QueueError(ValueError):
    """A queue or a review that cannot be used; names the field."""


@dataclass(slots=True)
class ScoreScale:
    """What reviewers give: `numeric` from `min` to `max` (whole steps on the page), `boolean` good (1) or
    bad (0), or one of `labels`."""

    name: str = "quality"
    type: str = "numeric"
    min: int = 1
    max: int = 5
    labels: list[str] = field(default_factory=list)

    def choices(self) -> list[tuple[str, str]]:
        """(value sent by the button, its caption), in keyboard-shortcut order."""
        if self.type == "boolean":
            return [("1", "good"), ("0", "bad")]
        if self.type == "categorical":
            return [(label, label) for label in self.labels]
        return [(str(v), str(v)) for v in range(self.min, self.max + 1)]


@dataclass(slots=True)
class AnnotationQueue:
    project: str
    name: str
    items: list[str]  # span ids, in review order
    score: ScoreScale
    description: str = ""
    filter: dict[str, Any] = field(default_factory=dict)
    reviews_per_item: int = 1
    created_at: float = 0.0
    created_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_scale(doc: Any) -> ScoreScale:
    if doc is None:
        return ScoreScale()
    if not isinstance(doc, Mapping):
        raise QueueError("score must be an object: {name, type (numeric, boolean, categorical), min, max, labels}")
    scale = ScoreScale()
    name = doc.get("name", scale.name)
    if not isinstance(name, str) or not _SCORE_NAME.match(name):
        raise QueueError(f"score.name must be 1-100 letters, digits or _.:- , got {name!r}")
    scale.name = name
    kind = doc.get("type", "numeric")
    if kind not in SCORE_TYPES:
        raise QueueError(f"score.type must be one of {', '.join(SCORE_TYPES)}, got {kind!r}")
    scale.type = kind
    if kind == "numeric":
        low, high = doc.get("min", 1), doc.get("max", 5)
        if isinstance(low, bool) or isinstance(high, bool) or not isinstance(low, int) or not isinstance(high, int):
            raise QueueError("score.min and score.max must be whole numbers")
        if not 0 <= low < high or high - low > 9:
            raise QueueError("score.min and score.max must span 2 to 10 whole steps, from 0 up (one key each)")
        scale.min, scale.max = low, high
    if kind == "categorical":
        labels = doc.get("labels")
        if (
            not isinstance(labels, list)
            or not 2 <= len(labels) <= 9
            or not all(isinstance(v, str) and v for v in labels)
        ):
            raise QueueError("score.labels must list 2 to 9 category names (one key each)")
        scale.labels = [str(v) for v in labels]
    return scale


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise QueueError(f"a queue name is 1-80 letters, digits and _.- , got {name!r}")
    return name


def review_value(scale: ScoreScale, raw: Any) -> tuple[str, float | None, str | None]:
    """(data type, value, label) of one review; QueueError says what the queue takes."""
    if scale.type == "categorical":
        if raw not in scale.labels:
            raise QueueError(f"value must be one of {', '.join(scale.labels)}, got {raw!r}")
        return "categorical", None, str(raw)
    if scale.type == "boolean":
        if raw in (True, 1, "1", "true", "good"):
            return "boolean", 1.0, None
        if raw in (False, 0, "0", "false", "bad"):
            return "boolean", 0.0, None
        raise QueueError(f"value must be good (1) or bad (0), got {raw!r}")
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise QueueError(f"value must be a number from {scale.min} to {scale.max}, got {raw!r}") from None
    if not scale.min <= number <= scale.max:
        raise QueueError(f"value must be from {scale.min} to {scale.max}, got {raw!r}")
    return "numeric", number, None


@dataclass(slots=True)
class Progress:
    total: int
    done: int  # calls with as many reviews as the queue asks
    reviews: int
    by_reviewer: list[dict[str, Any]]  # {reviewer, reviewed}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AnnotationStore:
    def __init__(self, shared: SharedSettings) -> None:
        self.shared = shared

    def queues(self, project: str) -> list[AnnotationQueue]:
        return [q for s in self.shared.list(QUEUE_KIND, project) if (q := _queue(project, s.value)) is not None]

    def get(self, project: str, name: str) -> AnnotationQueue | None:
        found = self.shared.get(project, QUEUE_KIND, name)
        return None if found is None else _queue(project, found.value)

    def create(self, project: str, doc: Mapping[str, Any], span_ids: Sequence[str], created_by: str) -> AnnotationQueue:
        name = check_name(doc.get("name"))
        if self.get(project, name) is not None:
            raise QueueError(f"a queue named {name!r} exists already in this project")
        reviews = doc.get("reviews_per_item", 1)
        if isinstance(reviews, bool) or not isinstance(reviews, int) or not 1 <= reviews <= 10:
            raise QueueError("reviews_per_item must be a whole number from 1 to 10")
        description = doc.get("description") or ""
        if not isinstance(description, str):
            raise QueueError("description must be a string")
        queue = AnnotationQueue(
            project=project,
            name=name,
            items=list(dict.fromkeys(span_ids))[:MAX_QUEUE_ITEMS],
            score=parse_scale(doc.get("score")),
            description=description,
            filter=dict(doc.get("filter") or {}),
            reviews_per_item=reviews,
            created_at=time.time(),
            created_by=created_by,
        )
        value = queue.to_dict()
        value.pop("project")
        self.shared.put(project, QUEUE_KIND, name, value)
        return queue

    def delete(self, project: str, name: str) -> bool:
        for setting in self.shared.list(SKIP_KIND, project):
            if setting.name.startswith(f"{name}|"):
                self.shared.delete(project, SKIP_KIND, setting.name)
        return self.shared.delete(project, QUEUE_KIND, name)

    def skipped(self, project: str, queue: str, reviewer: str) -> list[str]:
        found = self.shared.get(project, SKIP_KIND, f"{queue}|{reviewer}")
        return [str(s) for s in found.value] if found is not None and isinstance(found.value, list) else []

    def skip(self, project: str, queue: str, reviewer: str, span_id: str) -> None:
        skipped = self.skipped(project, queue, reviewer)
        if span_id not in skipped:
            self.shared.put(project, SKIP_KIND, f"{queue}|{reviewer}", [*skipped, span_id])


def _queue(project: str, value: Any) -> AnnotationQueue | None:
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        return None
    known = set(AnnotationQueue.__dataclass_fields__) - {"project", "score"}
    raw_scale = value.get("score")
    scale: Mapping[str, Any] = raw_scale if isinstance(raw_scale, Mapping) else {}
    return AnnotationQueue(
        project=project,
        score=ScoreScale(**{k: v for k, v in scale.items() if k in ScoreScale.__dataclass_fields__}),
        **{k: v for k, v in value.items() if k in known},
    )


def reviews(store: Store, queue: AnnotationQueue) -> list[tuple[str, str]]:
    """(span id, reviewer) of every review given in the queue."""
    rows = store.query(
        "SELECT span_id, json_extract_string(metadata, '$.reviewer') AS reviewer FROM scores "
        "WHERE project = ? AND source = 'human' AND name = ? AND json_extract_string(metadata, '$.queue') = ?",
        [queue.project, queue.score.name, queue.name],
    ).dicts()
    return [(str(r["span_id"]), str(r["reviewer"] or "anonymous")) for r in rows if r["span_id"]]


def progress(given: Sequence[tuple[str, str]], queue: AnnotationQueue) -> Progress:
    in_queue = set(queue.items)
    distinct = {(span, who) for span, who in given if span in in_queue}
    per_item = Counter(span for span, _ in distinct)
    per_reviewer: dict[str, int] = defaultdict(int)
    for _, who in distinct:
        per_reviewer[who] += 1
    return Progress(
        total=len(queue.items),
        done=sum(1 for span in queue.items if per_item[span] >= queue.reviews_per_item),
        reviews=len(distinct),
        by_reviewer=[{"reviewer": r, "reviewed": n} for r, n in sorted(per_reviewer.items(), key=lambda p: -p[1])],
    )


def next_item(
    given: Sequence[tuple[str, str]], queue: AnnotationQueue, reviewer: str, skipped: Sequence[str]
) -> str | None:
    """The first call of the queue that still needs reviews, that this reviewer has neither reviewed nor skipped."""
    distinct = set(given)
    per_item = Counter(span for span, _ in distinct)
    mine = {span for span, who in distinct if who == reviewer}
    passed = set(skipped)
    for span in queue.items:
        if span not in mine and span not in passed and per_item[span] < queue.reviews_per_item:
            return span
    return None


def review_score(
    queue: AnnotationQueue,
    span: Mapping[str, Any],
    reviewer: str,
    raw_value: Any,
    comment: str | None,
) -> Score:
    data_type, value, label = review_value(queue.score, raw_value)
    at = now_us()
    digest = hashlib.blake2b(
        f"{queue.project}|{queue.name}|{span.get('span_id')}|{reviewer}|{at}".encode(), digest_size=12
    ).hexdigest()
    return Score(
        score_id=f"human_{digest}",
        name=queue.score.name,
        data_type=data_type,
        timestamp_us=at,
        project=queue.project,
        value=value,
        label=label,
        source=ScoreSource.HUMAN.value,
        message_id=span.get("message_id"),
        trace_id=span.get("trace_id"),
        span_id=span.get("span_id"),
        comment=comment or None,
        metadata={"queue": queue.name, "reviewer": reviewer},
    )
