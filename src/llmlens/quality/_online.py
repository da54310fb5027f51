"""Online evaluator rules, run in a background thread of the server on newly stored calls; never on the
ingest path (ingest only commits, as always; this thread reads what was committed).

Every `evaluator_interval_s` it looks, per project, at the spans stored since its last look (by the time
they were stored, a second after, so that a call's retrievals are there too), picks those each enabled
rule's filter matches, keeps a sample (`sample_rate`, by a hash of rule and span: the same calls on every
server), and runs the rule's evaluator. Judge spend per rule and UTC day is read from the judge spans the
store holds, then added to as calls come back; a rule whose spend reached `daily_budget_usd` skips
calls until the next day ("budget reached"). It may pass its budget by what was already in flight.

Scores get ids from rule, span and name, so a call looked at twice (the overlap between two looks,
two servers sharing ClickHouse) is scored once; its judge may be paid twice in the second case.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llmlens.model import Span
from llmlens.replay.calls import read_spans
from llmlens.replay.providers import Providers
from llmlens.store import Store, confined_to

from ._evaluators import EvalContext, Evaluator
from ._judge import JudgeSettings
from ._record import RecordedScores, ScoreTransform, record_scores
from ._rule_book import RuleBook
from ._rules import EvaluatorRule, RuleError
from ._samples import EvalSample, answer_after, context_before, sample_from_span, trace_spans
from ._scoring import evaluate_sample, write_reports

logger = logging.getLogger("llmlens.quality")

SETTLE_S = 1.0  # a span is looked at once it has been stored this long
OVERLAP_S = 5.0  # each look re-reads this much before the last one (commits that straddled it)
MAX_CANDIDATES = 2_000  # per rule and look; more wait for the next look
_SEEN_KEEP_S = 600.0

RUNNING, BUDGET_REACHED, ERRORS, DISABLED = "running", "budget_reached", "errors", "disabled"


@dataclass(slots=True)
class RuleStatus:
    """What one rule of one project did: today's figures from the store, the rest since the server started."""

    rule: str
    day: str = ""
    spend_usd: float = 0.0  # judge spend today (UTC)
    judge_calls: int = 0  # today
    errors: int = 0  # today: judge failures and evaluator errors
    evaluated: int = 0  # calls evaluated since start
    sampled_out: int = 0  # calls the sample rate left out since start
    skipped_budget: int = 0  # calls skipped today because the budget was reached
    not_applicable: int = 0  # calls it could not judge (no context, no reference...) since start
    scores_written: int = 0  # since start
    last_error: str | None = None
    last_error_at: float | None = None
    last_evaluated_at: float | None = None
    failing: bool = False  # the last evaluation produced errors and no score

    def state(self, rule: EvaluatorRule) -> str:
        if not rule.enabled:
            return DISABLED
        if rule.daily_budget_usd > 0 and self.spend_usd >= rule.daily_budget_usd:
            return BUDGET_REACHED
        if self.failing:
            return ERRORS
        return RUNNING


@dataclass(slots=True)
class ServiceStats:
    scans: int = 0
    failures: int = 0
    last_error: str | None = None
    scores_written: int = 0


def utc_day(now_s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(now_s, dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None)


def sampled(rule: str, span_id: str, rate: float) -> bool:
    """Deterministic: the same call is in or out of a rule's sample on every server and every look."""
    if rate >= 1.0:
        return True
    digest = hashlib.blake2b(f"{rule}|{span_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def spend_today(store: Store, project: str, day: dt.datetime) -> dict[str, tuple[float, int, int]]:
    """rule -> (judge spend, errors, evaluator spans) today, from the evaluator spans the store holds."""
    result = store.query(
        "SELECT json_extract_string(metadata, '$.rule') AS rule, SUM(cost_usd) AS spend, "
        "SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors, COUNT(*) AS calls FROM spans "
        "WHERE project = ? AND kind = 'evaluator' AND timestamp >= ? GROUP BY rule",
        [project, day],
    )
    return {
        str(r["rule"]): (float(r["spend"] or 0.0), int(r["errors"] or 0), int(r["calls"] or 0))
        for r in result.dicts()
        if r["rule"]
    }


def scores_today(store: Store, project: str, day: dt.datetime) -> dict[str, int]:
    result = store.query(
        "SELECT json_extract_string(metadata, '$.rule') AS rule, COUNT(*) AS n FROM scores "
        "WHERE project = ? AND source = 'evaluator' AND timestamp >= ? GROUP BY rule",
        [project, day],
    )
    return {str(r["rule"]): int(r["n"] or 0) for r in result.dicts() if r["rule"]}


def projects_with_new_spans(store: Store, since: dt.datetime) -> list[str]:
    with confined_to(None):  # the service serves every project, each then through a store scoped to it
        result = store.query("SELECT DISTINCT project FROM store.spans WHERE ingested_at >= ?", [since])
    return sorted(str(r[0]) for r in result.rows)


def candidates(store: Store, project: str, rule: EvaluatorRule, since: dt.datetime, until: dt.datetime) -> list[str]:
    """Span ids of the calls stored in [since, until) that the rule's filter matches (replays excluded)."""
    where, params = rule.filter.sql()
    result = store.query(
        "SELECT span_id FROM store.spans WHERE project = ? AND ingested_at >= ? AND ingested_at < ? "
        f"AND replay_of IS NULL{where} ORDER BY ingested_at, span_id LIMIT {MAX_CANDIDATES}",
        [project, since, until, *params],
    )
    return [str(r[0]) for r in result.rows]


RecordSync = Callable[[Sequence[Span]], None]


class OnlineEvaluatorService:
    def __init__(
        self,
        store: Store,
        book: RuleBook,
        judge: JudgeSettings,
        *,
        providers: Callable[[], Providers],
        record: RecordSync,
        transforms: Sequence[ScoreTransform] = (),
        interval_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.book = book
        self._judge = judge
        self._providers_factory = providers
        self._record = record
        self._transforms = list(transforms)
        self._interval_s = interval_s
        self._clock = clock
        self._started_at = clock()
        self._watermarks: dict[str, float] = {}
        self._seen: dict[tuple[str, str, str], float] = {}  # (project, rule, span) -> when looked at
        self._status: dict[tuple[str, str], RuleStatus] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = ServiceStats()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="llmlens-evaluators", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        providers = self._providers_factory()
        try:
            while not self._stop.is_set():
                try:
                    await self.scan_once(providers)
                except Exception as exc:  # a failed look is retried at the next interval, never kills the thread
                    self.stats.failures += 1
                    message = f"{type(exc).__name__}: {exc}"
                    if message != self.stats.last_error:
                        logger.exception("online evaluators: a look at new calls failed")
                    self.stats.last_error = message
                await asyncio.to_thread(self._stop.wait, self._interval_s)
        finally:
            await providers.aclose()

    @property
    def interval_s(self) -> float:
        return self._interval_s

    def clock(self) -> float:
        return self._clock()

    # -- status -------------------------------------------------------------------------------

    def status(self, project: str, rule: str) -> RuleStatus:
        with self._lock:
            found = self._status.get((project, rule))
            if found is None:
                found = self._status[(project, rule)] = RuleStatus(rule)
            return found

    def refresh_today(self, project: str) -> None:
        """Today's spend, errors and judge calls of the project's rules, as the store has them."""
        now = self._clock()
        day = utc_day(now)
        store = self._store.scoped(project)
        found = spend_today(store, project, day)
        with self._lock:
            for owner, name in list(self._status):
                if owner == project and name not in found:
                    found[name] = (0.0, 0, 0)
            for name, (spend, errors, calls) in found.items():
                status = self._status.setdefault((project, name), RuleStatus(name))
                if status.day != day.date().isoformat():
                    status.day = day.date().isoformat()
                    status.skipped_budget = 0
                status.spend_usd, status.errors, status.judge_calls = spend, errors, calls

    # -- one look -----------------------------------------------------------------------------

    async def scan_once(self, providers: Providers | None = None) -> int:
        """Look at every project's new calls once; returns the number of scores written."""
        own_providers = providers is None
        providers = providers or self._providers_factory()
        try:
            now = self._clock()
            until = now - SETTLE_S
            oldest = min([self._started_at, *self._watermarks.values()]) - OVERLAP_S
            projects = await asyncio.to_thread(projects_with_new_spans, self._store, _utc(oldest))
            written = 0
            for project in projects:
                if self._stop.is_set():
                    break
                rules = [r for r in self.book.rules(project) if r.enabled]
                since = self._watermarks.get(project, self._started_at) - OVERLAP_S
                if rules:
                    written += await self._scan_project(providers, project, rules, _utc(since), _utc(until))
                self._watermarks[project] = until
            self._forget_seen(now)
            self.stats.scans += 1
            self.stats.scores_written += written
            return written
        finally:
            if own_providers:
                await providers.aclose()

    def _forget_seen(self, now: float) -> None:
        cutoff = now - max(_SEEN_KEEP_S, 4 * self._interval_s)
        for key in [k for k, at in self._seen.items() if at < cutoff]:
            del self._seen[key]

    async def _scan_project(
        self, providers: Providers, project: str, rules: list[EvaluatorRule], since: dt.datetime, until: dt.datetime
    ) -> int:
        store = self._store.scoped(project)
        templates = self.book.templates(project)
        wanted: dict[str, list[str]] = {}
        evaluators: dict[str, Evaluator] = {}
        now = self._clock()
        for rule in rules:
            try:
                evaluators[rule.name] = rule.build(
                    templates, None if rule.source == "config" else self.book.allowed_functions
                )
            except RuleError as exc:
                self._failed(project, rule.name, str(exc), now)
                continue
            found = await asyncio.to_thread(candidates, store, project, rule, since, until)
            fresh = [s for s in found if (project, rule.name, s) not in self._seen]
            for span_id in fresh:
                self._seen[(project, rule.name, span_id)] = now
            status = self.status(project, rule.name)
            kept = [s for s in fresh if sampled(rule.name, s, rule.sample_rate)]
            status.sampled_out += len(fresh) - len(kept)
            if kept:
                wanted[rule.name] = kept
        if not wanted:
            return 0
        await asyncio.to_thread(self.refresh_today, project)
        ids = list(dict.fromkeys(s for spans in wanted.values() for s in spans))
        rows = {r["span_id"]: r for r in await asyncio.to_thread(load_spans, store, project, ids)}
        traces = await asyncio.to_thread(trace_spans, store, project, [str(r["trace_id"]) for r in rows.values()])
        written = 0
        slots = asyncio.Semaphore(self._judge.concurrency)
        for rule in rules:
            if rule.name in wanted:
                written += await self._run_rule(
                    providers, store, project, rule, evaluators[rule.name], wanted[rule.name], rows, traces, slots
                )
        return written

    async def _run_rule(
        self,
        providers: Providers,
        store: Store,
        project: str,
        rule: EvaluatorRule,
        evaluator: Evaluator,
        span_ids: list[str],
        rows: dict[str, dict[str, Any]],
        traces: dict[str, list[dict[str, Any]]],
        slots: asyncio.Semaphore,
    ) -> int:
        status = self.status(project, rule.name)
        metadata = {"rule": rule.name}

        async def following(sample: EvalSample) -> EvalSample | None:
            trace = traces.get(str(sample.trace_id), [])
            answer = answer_after(sample.span, trace)
            return None if answer is None else sample_from_span(answer, context_before(answer, trace))

        ctx = EvalContext(
            providers,
            self._judge,
            templates=self.book.templates(project).get,
            following_answer=following,
            judge_slots=slots,
            span_metadata=metadata,
        )

        async def record_spans(spans: Sequence[Span]) -> None:
            await asyncio.to_thread(self._record, spans)

        async def write_scores(indexed: Sequence[tuple[int, Any]]) -> RecordedScores:
            return await asyncio.to_thread(record_scores, store, indexed, self._transforms)

        written = 0
        # A judge rule checks its budget between batches of calls in flight; checks are batched for their writes.
        batch = max(1, self._judge.concurrency if evaluator.uses_judge else 256)
        for start in range(0, len(span_ids), batch):
            over = rule.daily_budget_usd > 0 and status.spend_usd >= rule.daily_budget_usd
            if over and evaluator.uses_judge:
                status.skipped_budget += len(span_ids) - start
                break
            samples = []
            for span_id in span_ids[start : start + batch]:
                row = rows.get(span_id)
                if row is None:
                    continue
                trace = traces.get(str(row["trace_id"]), [])
                context = context_before(row, trace) if row.get("kind") == "llm" else []
                samples.append(sample_from_span(row, context))
            reports = await asyncio.gather(
                *(
                    evaluate_sample(
                        [evaluator],
                        sample,
                        ctx,
                        id_prefix=f"{project}|{rule.name}",
                        metadata=metadata,
                        record_spans=record_spans,
                        write_scores=None,
                    )
                    for sample in samples
                )
            )
            await write_reports(reports, metadata, record_spans, write_scores)  # one transaction for the batch
            now = self._clock()
            for report in reports:
                status.evaluated += 1
                status.spend_usd += report.cost_usd
                status.judge_calls += report.judge_calls
                status.scores_written += len(report.scores)
                status.last_evaluated_at = now
                if report.skipped and not report.scores and not report.errors:
                    status.not_applicable += 1
                if report.errors:
                    status.errors += len(report.errors)
                    status.last_error, status.last_error_at = report.errors[-1], now
                status.failing = bool(report.errors) and not report.scores
                written += len(report.scores)
        return written

    def _failed(self, project: str, rule: str, message: str, now: float) -> None:
        status = self.status(project, rule)
        status.last_error, status.last_error_at, status.failing = message, now, True


def load_spans(store: Store, project: str, span_ids: Sequence[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for start in range(0, len(span_ids), 200):
        chunk = list(span_ids[start : start + 200])
        marks = ", ".join("?" for _ in chunk)
        out += read_spans(store, f"project = ? AND span_id IN ({marks})", [project, *chunk])
    return out


__all__ = [
    "BUDGET_REACHED",
    "DISABLED",
    "ERRORS",
    "RUNNING",
    "OnlineEvaluatorService",
    "RuleStatus",
    "load_spans",
    "sampled",
    "scores_today",
    "spend_today",
]
