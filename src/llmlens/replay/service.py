"""What the server routes and the CLI share: find the calls in a store, replay or compare them, store the runs."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from llmlens.store import Store

from .calls import CallFilter, load_span, load_spans, load_trace, select_calls, template_sample
from .compare import KIND_ATTRIBUTE, Comparison, Progress, comparison_from_spans, run_compare
from .providers import Providers
from .replay import Record
from .request import NotReplayable, ReplayOptions, template_from_call
from .scorers import parse_scorers
from .trace_replay import TraceReplay, TraceStep, replay_trace, steps_from_spans
from .wire import as_dict


class NotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Selection:
    """The calls to compare: explicit span ids, a trace, a session, or a filter."""

    span_ids: tuple[str, ...] = ()
    trace_id: str | None = None
    session_id: str | None = None
    filter: CallFilter | None = None

    def as_filter(self) -> CallFilter | None:
        if self.filter is not None:
            return self.filter
        if self.trace_id:
            return CallFilter(trace_id=self.trace_id, limit=100, order="recent")
        if self.session_id:
            return CallFilter(session_id=self.session_id, limit=100, order="recent")
        return None


@dataclass(slots=True)
class StoredRun:
    kind: str  # compare | trace
    run_id: str
    comparison: Comparison | None = None
    original_trace_id: str | None = None
    steps: list[TraceStep] | None = None
    divergence: dict[str, Any] | None = None
    stopped: str | None = None


class ReplayService:
    def __init__(
        self,
        store: Store,
        providers: Providers,
        record: Record,
        *,
        allowed_scorers: Collection[str] | None = None,
        concurrency: int = 4,
    ) -> None:
        self.store = store
        self.providers = providers
        self.record = record
        self.allowed_scorers = allowed_scorers
        self.concurrency = concurrency

    async def _read(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, self.store, *args)

    async def with_template(
        self, project: str, span: dict[str, Any], version: str | None, options: ReplayOptions
    ) -> ReplayOptions:
        if not version:
            return options
        template_id = span.get("template_id")
        if not template_id:
            raise NotReplayable(f"span {span['span_id']} has no template_id, so it has no other template version")
        sample = await self._read(template_sample, project, template_id, version)
        if sample is None:
            raise NotFound(f"no recorded call of template {template_id} version {version} to learn its prompt from")
        return replace(options, template_messages=template_from_call(sample))

    async def select(self, project: str, selection: Selection) -> list[str]:
        spec = selection.as_filter()
        if spec is None:
            return list(selection.span_ids)
        ids: list[str] = await self._read(select_calls, project, spec)
        return ids

    async def compare(
        self,
        project: str,
        selection: Selection,
        models: Sequence[str],
        options: ReplayOptions,
        scorer_specs: Sequence[str] = (),
        *,
        template_version: str | None = None,
        progress: Progress | None = None,
        run_id: str | None = None,
        parent_span_id: str | None = None,
        group: bool = False,
    ) -> Comparison:
        scorers = parse_scorers(scorer_specs, allowed_imports=self.allowed_scorers)
        ids = await self.select(project, selection)
        if not ids:
            raise NotFound("no stored LLM call matches; nothing to replay")
        originals: list[dict[str, Any]] = await self._read(load_spans, project, ids)
        missing = [i for i in ids if i not in {o["span_id"] for o in originals}]
        if missing:
            raise NotFound(f"no span {missing[0]!r} in project {project!r}")
        not_llm = [o["span_id"] for o in originals if o.get("kind") != "llm"]
        if not_llm:
            raise NotReplayable(f"span {not_llm[0]} is not an LLM call")
        options = await self.with_template(project, originals[0], template_version, options)
        return await run_compare(
            self.providers,
            self.record,
            originals,
            models,
            options,
            scorers,
            concurrency=self.concurrency,
            progress=progress,
            run_id=run_id,
            parent_span_id=parent_span_id,
            group=group,
        )

    async def replay_trace(
        self,
        project: str,
        trace_id: str,
        model: str | None,
        options: ReplayOptions,
        template_version: str | None = None,
    ) -> TraceReplay:
        spans: list[dict[str, Any]] = await self._read(load_trace, project, trace_id)
        if not spans:
            raise NotFound(f"no trace {trace_id!r} in project {project!r}")
        first = next((s for s in spans if s.get("kind") == "llm"), None)
        if first is not None:
            options = await self.with_template(project, first, template_version, options)
        return await replay_trace(self.providers, self.record, spans, model, options)

    async def stored_run(self, project: str, run_id: str) -> StoredRun:
        spans: list[dict[str, Any]] = await self._read(load_trace, project, run_id)
        if not spans:
            raise NotFound(f"no replay run {run_id!r} in project {project!r}")
        root = next((s for s in spans if not s.get("parent_span_id")), spans[0])
        attributes = as_dict(root.get("attributes"))
        if attributes.get(KIND_ATTRIBUTE) == "trace":
            original_trace = str(attributes.get("llmlens.replay.original_trace"))
            original_spans: list[dict[str, Any]] = await self._read(load_trace, project, original_trace)
            return StoredRun(
                kind="trace",
                run_id=run_id,
                original_trace_id=original_trace,
                steps=steps_from_spans(original_spans, spans),
                divergence=attributes.get("llmlens.replay.divergence"),
                stopped=attributes.get("llmlens.replay.stopped"),
            )
        replay_ids = list(dict.fromkeys(str(s["replay_of"]) for s in spans if s.get("replay_of")))
        if not replay_ids:
            raise NotFound(f"trace {run_id!r} is not a replay run")
        originals: list[dict[str, Any]] = await self._read(load_spans, project, replay_ids)
        return StoredRun(kind="compare", run_id=run_id, comparison=comparison_from_spans(spans, originals))

    async def original(self, project: str, span_id: str) -> dict[str, Any]:
        span: dict[str, Any] | None = await self._read(load_span, project, span_id)
        if span is None:
            raise NotFound(f"no span {span_id!r} in project {project!r}")
        return span
