"""Running experiments through the replay machinery: every item of a dataset version is sent once per
variant (`replay_call`, as Replay and Compare send calls), under a bound on concurrent calls and a cost cap,
and each output is scored by the experiment's evaluators.

Outputs are LLM spans in one trace per experiment, under the reserved feature `llmlens.experiment` (so they
are never mistaken for the app's own calls of a feature), marked with the experiment, variant and item.
Items are sent item by item, every variant of one item before the next item, so a run stopped by its cost
cap leaves whole items to compare.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from llmlens.model import ErrorType, Span, SpanKind, Status, new_span_id, new_trace_id, now_us
from llmlens.replay import ReplayOptions, ReplayService, fill_template, replay_call, resolve_targets
from llmlens.replay.providers import ProviderError
from llmlens.replay.replay import Record
from llmlens.replay.request import NotReplayable
from llmlens.replay.scorers import answer_text
from llmlens.replay.service import NotFound
from llmlens.store import Store

from ._datasets import DatasetError, DatasetItem, DatasetStore
from ._evaluators import EvalContext, Evaluator, EvaluatorSpecError, build_evaluator
from ._experiment_spec import (
    EXPERIMENT_FEATURE,
    Experiment,
    ExperimentError,
    ExperimentStore,
    Variant,
    parse_experiment,
)
from ._judge import JudgeSettings
from ._record import RecordedScores, ScoreTransform, record_scores
from ._rule_book import RuleBook
from ._samples import EvalSample, system_prompt_of
from ._scoring import evaluate_sample

logger = logging.getLogger("llmlens.quality")

ATTR_EXPERIMENT = "llmlens.experiment.id"
ATTR_VARIANT = "llmlens.experiment.variant"
ATTR_ITEM = "llmlens.experiment.item"
_SAVE_EVERY = 10


def _original(project: str, item: DatasetItem, variant: Variant) -> dict[str, Any]:
    """The item as a stored call would look, for the replay machinery to send."""
    source = item.source or {}
    params = dict(source.get("request_params") or {})
    params.update(item.params)
    return {
        "span_id": source.get("span_id") or f"item:{item.id}",
        "trace_id": source.get("trace_id"),
        "project": project,
        "kind": "llm",
        "model": source.get("model") or variant.model,
        "provider": source.get("provider"),
        "input_messages": item.messages,
        "tools": item.tools,
        "request_params": params,
        "temperature": item.params.get("temperature"),
        "max_tokens": item.params.get("max_tokens"),
        "variables": item.variables,
        "template_id": source.get("template_id"),
        "template_version": source.get("template_version"),
        "feature": EXPERIMENT_FEATURE,
        "metadata": dict(source.get("metadata") or {}),
        "response": item.expected_output or source.get("output"),
    }


def _with_prompt(messages: list[Any], prompt: str, variables: Any) -> list[Any]:
    """The item's messages with `prompt` as the system prompt (its `{{variables}}` filled from the item's)."""
    filled = fill_template([{"role": "system", "content": prompt}], variables)[0]
    rest = [m for m in messages if not (isinstance(m, dict) and m.get("role") in ("system", "developer"))]
    return [filled, *rest]


class ExperimentRunner:
    """Starts experiments as tasks of the server's event loop; answers their state while they run."""

    def __init__(
        self,
        store: Store,
        replay: ReplayService,
        record: Record,
        datasets: DatasetStore,
        experiments: ExperimentStore,
        book: RuleBook,
        judge: JudgeSettings,
        transforms: Sequence[ScoreTransform] = (),
    ) -> None:
        self.store = store
        self.replay = replay
        self._record = record
        self.datasets = datasets
        self.experiments = experiments
        self.book = book
        self.judge = judge
        self._transforms = list(transforms)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._live: dict[str, Experiment] = {}

    def running(self) -> list[str]:
        return [i for i, t in self._tasks.items() if not t.done()]

    def get(self, project: str, ident: str) -> Experiment | None:
        live = self._live.get(ident)
        if live is not None and live.project == project:
            return live
        return self.experiments.get(project, ident, running=self.running())

    def recent(self, project: str) -> list[Experiment]:
        stored = {e.id: e for e in self.experiments.experiments(project, running=self.running())}
        for ident, live in self._live.items():
            if live.project == project:
                stored[ident] = live
        return sorted(stored.values(), key=lambda e: -e.created_at)

    def evaluators(self, project: str, specs: Sequence[Any]) -> list[Evaluator]:
        templates = self.book.templates(project)
        out = []
        for i, spec in enumerate(specs):
            try:
                out.append(
                    build_evaluator(spec, known_templates=templates, allowed_functions=self.book.allowed_functions)
                )
            except EvaluatorSpecError as exc:
                raise ExperimentError(f"evaluators[{i}]: {exc}") from None
        return out

    async def start(self, project: str, doc: dict[str, Any]) -> Experiment:
        """Check the request, save the experiment and start it; ExperimentError / DatasetError say what is wrong."""
        name = doc.get("dataset")
        if isinstance(name, dict):
            name = name.get("name")
        if not isinstance(name, str) or not name:
            raise ExperimentError("dataset is required: the name of one of the project's datasets")
        dataset = await asyncio.to_thread(self.datasets.get, project, name)
        if dataset is None:
            raise DatasetError(f"no dataset {name!r} in project {project!r}")
        version = doc.get("dataset_version") or dataset.version
        if isinstance(version, bool) or not isinstance(version, int):
            raise ExperimentError("dataset_version must be a version number")
        items = await asyncio.to_thread(self.datasets.items, project, name, version)
        if not items:
            raise ExperimentError(f"dataset {name!r} version {version} has no items to run")
        experiment = parse_experiment(
            project, doc, dataset_version=version, default_concurrency=self.replay.concurrency
        )
        evaluators = self.evaluators(project, experiment.evaluators)
        for variant in experiment.variants:  # a missing key or upstream is said now, not once per item
            original = _original(project, items[0], variant)
            model = variant.model or original.get("model")
            if not model:
                raise ExperimentError(f"variant {variant.name!r} names no model and the items have no source model")
            try:
                resolve_targets(self.replay.providers, original, [str(model)])
            except (ProviderError, ValueError) as exc:
                raise ExperimentError(f"variant {variant.name!r}: {exc}") from None
        experiment.items = len(items)
        experiment.total = len(items) * len(experiment.variants)
        experiment.run_trace_id = new_trace_id()
        await asyncio.to_thread(self.experiments.save, experiment)
        self._live[experiment.id] = experiment
        task = asyncio.create_task(self._run(experiment, items, evaluators), name=f"experiment {experiment.id}")
        self._tasks[experiment.id] = task
        task.add_done_callback(functools.partial(self._finished, experiment.id))
        return experiment

    def _finished(self, ident: str, task: asyncio.Task[None]) -> None:
        self._live.pop(ident, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("experiment %s failed", ident, exc_info=task.exception())

    async def wait(self, ident: str) -> None:
        task = self._tasks.get(ident)
        if task is not None:
            await asyncio.shield(task)

    async def close(self) -> None:
        for ident, task in list(self._tasks.items()):
            if not task.done():
                task.cancel()
                experiment = self._live.get(ident)
                if experiment is not None:
                    experiment.status, experiment.error = "interrupted", "the server stopped"
                    await asyncio.to_thread(self.experiments.save, experiment)
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    # -- one run ------------------------------------------------------------------------------

    async def _run(self, experiment: Experiment, items: list[DatasetItem], evaluators: list[Evaluator]) -> None:
        experiment.status = "running"
        experiment.started_at = now_us() / 1e6
        root = Span(
            trace_id=experiment.run_trace_id,
            span_id=new_span_id(),
            kind=SpanKind.CHAIN.value,
            name=f"experiment {experiment.name}"[:200],
            project=experiment.project,
            start_us=now_us(),
            status=Status.OK.value,
            service="llmlens-experiment",
            feature=EXPERIMENT_FEATURE,
            attributes={ATTR_EXPERIMENT: experiment.id, "llmlens.replay.kind": "experiment"},
        )
        store = self.store.scoped(experiment.project)
        slots = asyncio.Semaphore(experiment.concurrency)
        judge_slots = asyncio.Semaphore(self.judge.concurrency)
        ctx = EvalContext(
            self.replay.providers,
            self.judge,
            templates=self.book.templates(experiment.project).get,
            judge_slots=judge_slots,
            span_metadata={"experiment": experiment.id},
        )

        async def write_scores(indexed: Sequence[tuple[int, Any]]) -> RecordedScores:
            return await asyncio.to_thread(record_scores, store, indexed, self._transforms)

        async def one(item: DatasetItem, variant: Variant) -> None:
            async with slots:
                if experiment.cost_usd >= experiment.max_cost_usd:
                    return
                span = await self._send(experiment, item, variant, root.span_id)
                await self._record([span])
                cost = span.cost_usd or 0.0
                if span.status != Status.ERROR.value and evaluators:
                    report = await evaluate_sample(
                        evaluators,
                        _sample(experiment.project, item, span),
                        ctx,
                        id_prefix=f"{experiment.project}|{experiment.id}",
                        metadata={"experiment": experiment.id, "variant": variant.name, "item": item.id},
                        record_spans=self._record,
                        write_scores=write_scores,
                    )
                    cost += report.cost_usd
                experiment.cost_usd = round(experiment.cost_usd + cost, 8)
                experiment.done += 1
                if experiment.done % _SAVE_EVERY == 0:
                    await asyncio.to_thread(self.experiments.save, experiment)

        try:
            await asyncio.to_thread(self.experiments.save, experiment)
            await asyncio.gather(*(one(item, variant) for item in items for variant in experiment.variants))
            if experiment.done < experiment.total and experiment.cost_usd >= experiment.max_cost_usd:
                experiment.status = "stopped"
                experiment.error = (
                    f"cost cap of ${experiment.max_cost_usd:g} reached after {experiment.done} of "
                    f"{experiment.total} calls"
                )
            else:
                experiment.status = "done"
        except asyncio.CancelledError:
            experiment.status, experiment.error = "interrupted", "the server stopped"
            raise
        except Exception as exc:
            logger.exception("experiment %s failed", experiment.id)
            experiment.status, experiment.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            experiment.finished_at = now_us() / 1e6
            root.latency_ms = round((experiment.finished_at - root.start_us / 1e6) * 1000, 3)
            root.attributes["llmlens.experiment.status"] = experiment.status
            try:
                await self._record([root])
            finally:
                await asyncio.to_thread(self.experiments.save, experiment)

    async def _send(self, experiment: Experiment, item: DatasetItem, variant: Variant, parent: str) -> Span:
        project = experiment.project
        original = _original(project, item, variant)
        model = str(variant.model or original.get("model") or "")
        options = ReplayOptions(
            temperature=variant.temperature if variant.temperature is not None else 0.0,
            params={"max_tokens": variant.max_tokens} if variant.max_tokens is not None else None,
        )
        try:
            if variant.prompt is not None:
                options = replace(options, messages=_with_prompt(item.messages, variant.prompt, item.variables))
            elif variant.template_version is not None:
                options = await self.replay.with_template(project, original, variant.template_version, options)
            target = resolve_targets(self.replay.providers, original, [model])[0]
            replayed = await replay_call(
                self.replay.providers,
                original,
                target,
                options,
                (),
                trace_id=experiment.run_trace_id,
                parent_span_id=parent,
                run_id=experiment.run_trace_id,
            )
            span = replayed.span
        except (ProviderError, NotReplayable, NotFound, ValueError) as exc:
            span = _failed_output(experiment, item, variant, model, parent, str(exc))
        span.feature = EXPERIMENT_FEATURE
        span.attributes.update({ATTR_EXPERIMENT: experiment.id, ATTR_VARIANT: variant.name, ATTR_ITEM: item.id})
        span.metadata["experiment"] = experiment.id
        return span


def _failed_output(
    experiment: Experiment, item: DatasetItem, variant: Variant, model: str, parent: str, error: str
) -> Span:
    """An output that could not be had: kept, so that the results count it as an error."""
    return Span(
        trace_id=experiment.run_trace_id,
        span_id=new_span_id(),
        kind=SpanKind.LLM.value,
        name=f"experiment {variant.name}"[:200],
        project=experiment.project,
        parent_span_id=parent,
        start_us=now_us(),
        latency_ms=0.0,
        status=Status.ERROR.value,
        error_type=ErrorType.OTHER.value,
        error_message=error,
        service="llmlens-experiment",
        model=model or None,
        input_messages=item.messages,
        replay_of=(item.source or {}).get("span_id") or f"item:{item.id}",
    )


def _sample(project: str, item: DatasetItem, span: Span) -> EvalSample:
    return EvalSample(
        project=project,
        kind="llm",
        span_id=span.span_id,
        trace_id=span.trace_id,
        message_id=span.message_id,
        question=item.question,
        answer=answer_text(span.response, span.tool_calls),
        system_prompt=system_prompt_of(span.input_messages),
        context=item.chunks(),
        reference=item.expected_output,
        model=span.model,
        span={"span_id": span.span_id, "model": span.model, "response": span.response, "metadata": span.metadata},
    )
