"""The inferred-feedback service: a background thread that scans ended sessions and stores retry, edit
and abandon scores. It reads the store beside ingest and never sits in an ingest request's path.

Each scan looks, per project, at the sessions that got spans stored since the last scan (by ingestion
time, so late and imported spans count) and keeps those still going until they have had no span for
`session_idle_s`; an ended session's calls then go through the rules. Scores have ids derived from the
call and the signal, so a session read twice (new spans, a restart, two servers on one ClickHouse)
writes nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from llmlens.model import Score, ScoreDataType, ScoreSource
from llmlens.store import Store

from ._inference import Signal, conversational_features, infer_signals, split_visits
from ._sessions import (
    VISIT_LOOKBACK_S,
    last_activity,
    projects_with_new_sessions,
    rated_messages,
    session_records,
    sessions_stored_since,
)
from ._settings import QualitySettings

logger = logging.getLogger("llmlens.quality")

EVALUATOR = "llmlens.inferred_feedback"
EVALUATOR_VERSION = "1"
# Each scan re-reads spans stored this long before the watermark (a commit that straddled the last scan).
_OVERLAP_S = 60.0
_MAX_PENDING = 100_000
_BATCH = 200  # ended sessions read and scored at a time (tests/quality: 400 sessions end in one scan)
# A session is read once no span of it has been stored for this long (or two scan intervals, if longer).
_SETTLE_S = 5.0


@dataclass(slots=True)
class ServiceStats:
    scans: int = 0
    pending: int = 0  # sessions with new spans, waiting to end
    sessions: int = 0
    scores_written: int = 0
    failures: int = 0
    last_error: str | None = None


def score_of(signal: Signal, project: str) -> Score:
    turn = signal.turn
    digest = hashlib.blake2b(f"{project}|{turn.span_id}|{signal.name}".encode(), digest_size=12).hexdigest()
    return Score(
        score_id=f"inferred_{digest}",
        name=signal.name,
        data_type=ScoreDataType.BOOLEAN.value,
        timestamp_us=int(signal.at_s * 1_000_000),
        project=project,
        value=1.0,
        source=ScoreSource.INFERRED.value,
        message_id=turn.message_id,
        trace_id=turn.trace_id,
        span_id=turn.span_id,
        evaluator=EVALUATOR,
        evaluator_version=EVALUATOR_VERSION,
        comment=f"{signal.name} ({signal.rule}): {signal.comment}",
        metadata={"rule": signal.rule, **signal.detail},
    )


class InferredFeedbackService:
    """`start()` runs `scan()` every `scan_interval_s` in a daemon thread; `stop()` ends it."""

    def __init__(self, store: Store, settings: QualitySettings, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._started_at = clock()
        # project -> stored spans were looked at up to this time (the server's clock, by ingestion)
        self._watermarks: dict[str, float] = {}
        # project -> sessions with new spans that had not ended yet when last looked at (insertion-ordered)
        self._pending: dict[str, dict[str, None]] = {}
        # project -> session -> when its latest span was stored, for the sessions read in the last few minutes
        self._done: dict[str, dict[str, float]] = {}
        # project -> features seen sending the conversation with each call (see `infer_signals`)
        self._conversational: dict[str, set[str]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = ServiceStats()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="llmlens-inferred-feedback", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan()
            except Exception as exc:  # a failed scan is retried at the next interval, never kills the thread
                self.stats.failures += 1
                message = f"{type(exc).__name__}: {exc}"
                if message != self.stats.last_error:
                    logger.exception("inferred feedback scan failed")
                self.stats.last_error = message
            self._stop.wait(self._settings.scan_interval_s)

    def scan(self) -> int:
        """One pass over every project; returns the number of scores written."""
        now = self._clock()
        first = self._started_at - self._settings.lookback_s
        oldest = min([first, *self._watermarks.values()])
        projects = set(projects_with_new_sessions(self._store, oldest - _OVERLAP_S))
        written = 0
        for project in sorted(projects | {p for p, pending in self._pending.items() if pending}):
            if self._stop.is_set():
                break
            since = self._watermarks.get(project, first) - _OVERLAP_S
            written += self._scan_project(project, since, now)
            self._watermarks[project] = now
        self.stats.scans += 1
        self.stats.pending = sum(len(p) for p in self._pending.values())
        self.stats.scores_written += written
        return written

    def _scan_project(self, project: str, since: float, now: float) -> int:
        store = self._store.scoped(project)
        pending = self._pending.setdefault(project, {})
        for session_id in sessions_stored_since(store, project, since, limit=_MAX_PENDING):
            pending[session_id] = None
        if not pending:
            return 0
        # Ended: quiet for session_idle_s (by its spans' times), and no span of it stored lately (an import or
        # a replayed spool sends old sessions in several requests: read them whole).
        ended_before = now - self._settings.session_idle_s
        settled_before = now - max(2 * self._settings.scan_interval_s, _SETTLE_S)
        last = last_activity(store, project, list(pending))
        done = self._done.setdefault(project, {})
        for session_id in [sid for sid in pending if sid in last and done.get(sid) == last[sid][1]]:
            del pending[session_id]  # read already, and nothing stored for it since (seen again in the overlap)
        ended = [
            sid for sid in pending if sid not in last or (last[sid][0] < ended_before and last[sid][1] < settled_before)
        ]
        for session_id in ended:
            del pending[session_id]
            if session_id in last:
                done[session_id] = last[session_id][1]
        for session_id in [sid for sid, stored in done.items() if stored < now - 4 * _OVERLAP_S]:
            del done[session_id]  # past the overlap: it cannot be seen again without new spans
        while len(pending) > _MAX_PENDING:  # sessions that never pause: the oldest are looked at no more
            del pending[next(iter(pending))]
        # In batches: after an import, tens of thousands of sessions end at once, each read with its prompts.
        return sum(
            self._infer(store, project, ended[start : start + _BATCH], last, now)
            for start in range(0, len(ended), _BATCH)
        )

    def _infer(
        self, store: Store, project: str, ended: list[str], last: dict[str, tuple[float, float]], now: float
    ) -> int:
        """Scores inferred from the ended sessions `ended` (read whole, with their latest visit's context)."""
        oldest = min((last[sid][0] for sid in ended if sid in last), default=now)
        records = session_records(store, project, ended, oldest - VISIT_LOOKBACK_S)
        visits = [
            visit
            for session_id, rec in records.items()
            for visit in split_visits(session_id, rec.turns, rec.activity_ends, self._settings.session_idle_s)
        ]
        rated = rated_messages(store, project, [v.turns[-1].message_id for v in visits if v.turns[-1].message_id])
        conversational = self._conversational.setdefault(project, set())
        conversational.update(conversational_features(visits))
        scores: list[Score] = []
        for visit in visits:
            if visit.turns[-1].message_id in rated:
                visit.turns[-1] = replace(visit.turns[-1], rated=True)
            signals = infer_signals(visit, self._settings, now, conversational)
            scores.extend(score_of(s, project) for s in signals)
        self.stats.sessions += len(records)
        if not scores:
            return 0
        result = store.write_scores(scores)
        if result.type_conflicts:
            position, registered = next(iter(result.type_conflicts.items()))
            logger.warning(
                "project %s: %d inferred scores not stored: score %r already has type %s there",
                project,
                len(result.type_conflicts),
                scores[position].name,
                registered,
            )
        return result.written
