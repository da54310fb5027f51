"""What the quality routes share, built once at start-up: evaluator rules and judge templates, datasets,
experiments, annotation queues (all kept per project in the shared settings store), the online evaluator
service and the experiment runner.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass

from llmlens.model import Span
from llmlens.quality import (
    AnnotationStore,
    DatasetStore,
    ExperimentRunner,
    ExperimentStore,
    JudgeSettings,
    OnlineEvaluatorService,
    RuleBook,
    config_rules,
    judge_settings,
    quality_settings,
)
from llmlens.replay import KeySource, Providers, ReplayService
from llmlens.replay.providers import DEFAULT_UPSTREAMS
from llmlens.replay.simulated import SimulatedTransport, simulated_upstreams
from llmlens.settings import SettingsError

from ._http import HttpError
from ._shared_state import state_backend
from ._state import AppState

SERVICE = "quality.tools"


@dataclass(slots=True)
class QualityTools:
    book: RuleBook
    judge: JudgeSettings
    datasets: DatasetStore
    experiments: ExperimentStore
    queues: AnnotationStore
    online: OnlineEvaluatorService
    runner: ExperimentRunner | None  # None when replay is not running (no providers)


def quality_tools(state: AppState) -> QualityTools:
    tools = state.services.get(SERVICE)
    if not isinstance(tools, QualityTools):
        raise HttpError(503, "the quality services are not running")
    return tools


def judge_providers(state: AppState, judge: JudgeSettings) -> Providers:
    """Upstreams for judges, as replay's (the demo's stand-in answers judges too when it is on)."""
    from .routes.replay import simulated_provider_on

    stand_in = simulated_provider_on(state.settings)
    upstreams = state.settings.upstreams
    return Providers(
        simulated_upstreams(upstreams, DEFAULT_UPSTREAMS) if stand_in else upstreams,
        os.environ,  # read at the edge, once per service: keys for the upstreams
        timeout_s=judge.timeout_s,
        key_source=KeySource.server(os.getpid()),
        transport=SimulatedTransport() if stand_in else None,
        stand_in=stand_in,
    )


async def start_quality_tools(state: AppState) -> QualityTools:
    from .routes.scores import score_transforms

    settings = state.settings
    try:
        judge = judge_settings(settings.judge)
        quality = quality_settings(settings.quality)
        configured = config_rules(settings.evaluators)
    except ValueError as exc:  # stops start-up, naming the setting
        raise SettingsError(str(exc)) from None
    shared = state_backend(state).shared_settings()
    allowed = [str(s) for s in settings.replay.get("scorers", [])]
    book = RuleBook(configured, shared, judge, allowed)
    transforms = score_transforms(state)

    def record(spans: Sequence[Span]) -> None:
        """From the evaluator thread: priced and redacted as ingest does, committed before it returns."""
        state.pipeline.prepare(spans)
        state.writer.submit(spans, []).result(timeout=120)

    online = OnlineEvaluatorService(
        state.store,
        book,
        judge,
        providers=lambda: judge_providers(state, judge),
        record=record,
        transforms=transforms,
        interval_s=quality.evaluator_interval_s,
    )
    datasets = DatasetStore(shared)
    experiments = ExperimentStore(shared)
    replay = state.services.get("replay")
    runner = None
    if isinstance(replay, ReplayService):

        async def record_async(spans: Sequence[Span]) -> None:
            await state.pipeline.ingest(spans, [])

        runner = ExperimentRunner(state.store, replay, record_async, datasets, experiments, book, judge, transforms)
    tools = QualityTools(book, judge, datasets, experiments, AnnotationStore(shared), online, runner)
    state.services[SERVICE] = tools
    online.start()
    return tools


async def stop_quality_tools(state: AppState) -> None:
    tools = state.services.pop(SERVICE, None)
    if not isinstance(tools, QualityTools):
        return
    if tools.runner is not None:
        await tools.runner.close()
    await asyncio.to_thread(tools.online.stop, 5.0)
