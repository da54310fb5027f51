"""User feedback: satisfaction by feature, template version and model; explicit vs implicit
signals; satisfaction by the article's latency buckets (fast < 1 s, medium < 3 s, slow)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from llmlens.store import Store

from ._common import Scope, TimeChart, bucket_expr, rows, time_chart
from .stats import Proportion, wilson

EXPLICIT = ("thumbs_up", "thumbs_down")
SPEED_BUCKETS = ("fast", "medium", "slow")


@dataclass(slots=True)
class Satisfaction:
    key: str
    feedback: int
    thumbs_up: int
    thumbs_down: int
    satisfaction: Proportion  # thumbs up / all feedback events, as in the article's query


@dataclass(slots=True)
class FeedbackReport:
    total: int
    by_type: dict[str, int]
    explicit: int
    implicit: int
    by_feature: list[Satisfaction]
    by_template_version: list[Satisfaction]
    by_model: list[Satisfaction]
    by_speed: list[Satisfaction]
    by_type_over_time: TimeChart


# The view `feedback_events` joins spans once more, for a `feature` unused here: reading the feedback
# table itself and only the window's calls halves the work.
_GROUPED_SQL = """
SELECT feature, template_id, template_version, model, speed, feedback_type, COUNT(*) AS n
FROM (
  SELECT
    COALESCE(s.feature, '(none)') AS feature,
    COALESCE(s.template_id, '(none)') AS template_id,
    COALESCE(s.template_version, '(none)') AS template_version,
    COALESCE(s.model, '(none)') AS model,
    CASE WHEN s.latency_ms < 1000 THEN 'fast' WHEN s.latency_ms < 3000 THEN 'medium' ELSE 'slow' END AS speed,
    f.feedback_type AS feedback_type
  FROM (SELECT message_id, feedback_type FROM store.feedback WHERE project = ?) f
  JOIN (
    SELECT message_id, feature, template_id, template_version, model, latency_ms FROM spans
    WHERE {where} AND kind = 'llm' AND message_id IS NOT NULL
  ) s ON s.message_id = f.message_id
) t
GROUP BY feature, template_id, template_version, model, speed, feedback_type
"""


def _satisfaction(counts: dict[str, dict[str, int]]) -> list[Satisfaction]:
    out = []
    for key, by_type in counts.items():
        total = sum(by_type.values())
        ups = by_type.get("thumbs_up", 0)
        out.append(Satisfaction(key, total, ups, by_type.get("thumbs_down", 0), wilson(ups, total)))
    return sorted(out, key=lambda s: (s.satisfaction.rate if s.satisfaction.rate is not None else 2.0, s.key))


def feedback_report(store: Store, scope: Scope) -> FeedbackReport:
    """Feedback on the LLM calls made in the window (joined on message_id)."""
    grouped = rows(store, _GROUPED_SQL.format(where=scope.where()), [scope.project, *scope.params()])
    dims: dict[str, dict[str, dict[str, int]]] = {
        d: defaultdict(lambda: defaultdict(int)) for d in ("feature", "version", "model", "speed")
    }
    by_type: dict[str, int] = defaultdict(int)
    for r in grouped:
        n, kind = int(r["n"]), str(r["feedback_type"])
        by_type[kind] += n
        dims["feature"][str(r["feature"])][kind] += n
        if r["template_id"] != "(none)":
            dims["version"][f"{r['template_id']}@{r['template_version']}"][kind] += n
        dims["model"][str(r["model"])][kind] += n
        dims["speed"][str(r["speed"])][kind] += n
    speed = {s.key: s for s in _satisfaction(dims["speed"])}
    bucket = bucket_expr(scope.window, "f.timestamp")
    over_time = rows(
        store,
        f"SELECT {bucket} AS bucket, f.feedback_type AS feedback_type, COUNT(*) AS n FROM store.feedback f "
        f"WHERE {scope.where('f')} GROUP BY {bucket}, f.feedback_type",
        scope.params(),
    )
    explicit = sum(n for k, n in by_type.items() if k in EXPLICIT)
    return FeedbackReport(
        total=sum(by_type.values()),
        by_type=dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
        explicit=explicit,
        implicit=sum(by_type.values()) - explicit,
        by_feature=_satisfaction(dims["feature"]),
        by_template_version=sorted(_satisfaction(dims["version"]), key=lambda s: s.key),
        by_model=_satisfaction(dims["model"]),
        by_speed=[speed[k] for k in SPEED_BUCKETS if k in speed],
        by_type_over_time=time_chart(
            scope.window,
            over_time,
            series_key="feedback_type",
            value_key="n",
            unit="events",
            labels=["thumbs_up", "thumbs_down", "retry", "edit", "abandon"],
        ),
    )
