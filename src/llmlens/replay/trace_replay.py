"""Whole-trace replay: re-run a multi-step agent trace against another model or prompt version.

Tool calls are not executed: when the new run calls a tool with arguments equivalent to a recorded
call, the recorded result is fed back. While the new run acts like the original, each step is sent
the original step's own messages (the agent's context exactly as it was); from the first step where
it acts differently (another tool, other arguments, or a final answer at another step) the run
continues from its own history, and stops when it needs a tool result that was never recorded.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from llmlens.model import Span, SpanKind, Status, new_span_id, new_trace_id, now_us

from .compare import KIND_ATTRIBUTE
from .providers import Providers
from .replay import RUN_ATTRIBUTE, Record, replay_call, resolve_targets
from .request import ReplayOptions, fill_template, recorded_messages
from .simulated import SIMULATED_ATTRIBUTE
from .wire import as_dict

EXTRA_STEPS = 3
MAX_STEPS = 25
DIVERGED_ATTRIBUTE = "llmlens.replay.diverged"
STEP_ATTRIBUTE = "llmlens.replay.step"


class NothingToReplay(ValueError):
    pass


@dataclass(slots=True)
class StepAction:
    """What one LLM step did: tool calls (name, canonical arguments) or a final answer."""

    span_id: str | None
    model: str | None
    tool_calls: list[dict[str, Any]]
    response: str | None
    error: str | None = None

    @property
    def calls(self) -> list[tuple[str, str]]:
        return [(str(c.get("name")), canonical(c.get("arguments"))) for c in self.tool_calls]


@dataclass(slots=True)
class TraceStep:
    index: int
    original: StepAction | None
    replay: StepAction | None
    diverged: str | None = None  # set on the step where the new run first acts differently
    fed_results: list[dict[str, Any]] = field(default_factory=list)  # recorded results given back


@dataclass(slots=True)
class TraceReplay:
    original_trace_id: str
    run_id: str
    root_span_id: str
    model: str
    steps: list[TraceStep]
    divergence: dict[str, Any] | None
    stopped: str | None  # why the run ended early, if it did


def canonical(arguments: Any) -> str:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return str(arguments).strip()
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Recorded:
    name: str
    arguments: str
    result: Any
    span_id: str | None


def recorded_tool_results(spans: Sequence[Mapping[str, Any]]) -> list[Recorded]:
    """Tool results of the trace: tool spans, and tool messages answering calls in the LLM inputs."""
    out = [
        Recorded(str(s["tool_name"]), canonical(s.get("tool_args")), s.get("tool_result"), str(s["span_id"]))
        for s in spans
        if s.get("kind") == SpanKind.TOOL.value and s.get("tool_name") and s.get("tool_success") is not False
    ]
    for s in spans:
        messages = s.get("input_messages") if s.get("kind") == SpanKind.LLM.value else None
        if not isinstance(messages, list):
            continue
        calls: dict[str, tuple[str, str]] = {}
        for m in messages:
            if not isinstance(m, dict):
                continue
            for c in m.get("tool_calls") or []:
                if isinstance(c, dict):
                    fn = as_dict(c.get("function")) or c
                    calls[str(c.get("id"))] = (str(fn.get("name")), canonical(fn.get("arguments")))
            if m.get("role") == "tool" and str(m.get("tool_call_id")) in calls:
                name, args = calls[str(m.get("tool_call_id"))]
                out.append(Recorded(name, args, m.get("content"), None))
    return out


def _find(recorded: Sequence[Recorded], name: str, arguments: str) -> Recorded | None:
    return next((r for r in recorded if r.name == name and r.arguments == arguments), None)


def divergence_reason(original: StepAction | None, new: StepAction) -> str | None:
    if new.error:
        return "error"
    if original is None:
        return "final answer at another step" if not new.tool_calls else "more steps than the original"
    before, after = original.calls, new.calls
    if not before and not after:
        return None
    if bool(before) != bool(after):
        return "final answer at another step"
    if Counter(n for n, _ in before) != Counter(n for n, _ in after):
        return "different tool"
    if Counter(before) != Counter(after):
        return "different arguments"
    return None


def _action(span: Mapping[str, Any]) -> StepAction:
    error = None
    if span.get("status") == Status.ERROR.value:
        error = f"{span.get('error_type') or 'error'}: {span.get('error_message') or ''}"
    raw = span.get("tool_calls")
    calls: list[dict[str, Any]] = [c for c in raw if isinstance(c, dict)] if isinstance(raw, list) else []
    return StepAction(str(span.get("span_id")), span.get("model"), calls, span.get("response"), error)


def _tool_message(call: Mapping[str, Any], result: Any) -> dict[str, Any]:
    content = result if isinstance(result, str) else json.dumps(result)
    return {"role": "tool", "tool_call_id": call.get("id"), "content": content}


async def replay_trace(
    providers: Providers,
    record: Record,
    spans: Sequence[dict[str, Any]],
    model: str | None,
    options: ReplayOptions = ReplayOptions(),
) -> TraceReplay:
    steps_original = [s for s in spans if s.get("kind") == SpanKind.LLM.value and not s.get("replay_of")]
    if not steps_original:
        raise NothingToReplay("this trace has no LLM call to replay")
    first = steps_original[0]
    target = resolve_targets(providers, first, [model] if model else [])[0]
    recorded = recorded_tool_results(spans)
    run_id = new_trace_id()
    roots = [s for s in spans if not s.get("parent_span_id")]
    root = Span(
        trace_id=run_id,
        span_id=new_span_id(),
        kind=SpanKind.AGENT.value,
        name=f"trace replay × {target.label}",
        project=str(first.get("project") or "default"),
        start_us=now_us(),
        status=Status.OK.value,
        service="llmlens-replay",
        replay_of=str(roots[0]["span_id"]) if roots else None,
        attributes={KIND_ATTRIBUTE: "trace", "llmlens.replay.original_trace": first.get("trace_id")},
    )
    if target.upstream.simulated:
        root.attributes[SIMULATED_ATTRIBUTE] = True
    new_spans: list[Span] = [root]
    steps: list[TraceStep] = []
    divergence: dict[str, Any] | None = None
    stopped: str | None = None
    edited = options.messages is not None or options.template_messages is not None
    history: list[Any] | None = None
    for index in range(min(len(steps_original) + EXTRA_STEPS, MAX_STEPS)):
        original = steps_original[index] if index < len(steps_original) else None
        base = original if original is not None else steps_original[-1]
        if history is None and (not edited or index == 0):
            step_options = options if index == 0 else replace(options, messages=None, template_messages=None)
            messages = (
                options.messages
                if index == 0 and options.messages is not None
                else fill_template(options.template_messages, base.get("variables"))
                if index == 0 and options.template_messages is not None
                else recorded_messages(base)
            )
        else:
            messages = history or []
            step_options = replace(options, template_messages=None)
        result = await replay_call(
            providers,
            base,
            target,
            replace(step_options, messages=messages),
            trace_id=run_id,
            parent_span_id=root.span_id,
            run_id=run_id,
        )
        span = result.span
        span.replay_of = str(original["span_id"]) if original is not None else None
        span.attributes[STEP_ATTRIBUTE] = index
        new_spans.append(span)
        new_action = _action({**_columns(span)})
        step = TraceStep(index, _action(original) if original is not None else None, new_action)
        steps.append(step)
        if divergence is None:
            reason = divergence_reason(step.original, new_action)
            if reason is not None:
                divergence = {"step": index, "reason": reason, "span_id": span.span_id}
                step.diverged = reason
                span.attributes[DIVERGED_ATTRIBUTE] = reason
        if new_action.error or not new_action.tool_calls:
            break
        tool_messages: list[dict[str, Any]] = []
        for call in new_action.tool_calls:
            found = _find(recorded, str(call.get("name")), canonical(call.get("arguments")))
            if found is None:
                stopped = f"no recorded result for {call.get('name')}({canonical(call.get('arguments'))})"
                break
            tool_messages.append(_tool_message(call, found.result))
            step.fed_results.append({"name": found.name, "arguments": found.arguments, "result": found.result})
            new_spans.append(_tool_span(root, span, found))
        if stopped:
            break
        if divergence is not None or edited or index + 1 >= len(steps_original):
            assistant: dict[str, Any] = {"role": "assistant", "content": new_action.response or None}
            assistant["tool_calls"] = new_action.tool_calls
            history = [*messages, assistant, *tool_messages]
    root.latency_ms = round((now_us() - root.start_us) / 1000, 3)
    root.attributes["llmlens.replay.divergence"] = divergence
    if stopped:
        root.attributes["llmlens.replay.stopped"] = stopped
    root.attributes[RUN_ATTRIBUTE] = run_id
    await record(new_spans)
    return TraceReplay(
        original_trace_id=str(first.get("trace_id")),
        run_id=run_id,
        root_span_id=root.span_id,
        model=target.label,
        steps=steps,
        divergence=divergence,
        stopped=stopped,
    )


def _columns(span: Span) -> dict[str, Any]:
    return {
        "span_id": span.span_id,
        "model": span.model,
        "tool_calls": span.tool_calls,
        "response": span.response,
        "status": span.status,
        "error_type": span.error_type,
        "error_message": span.error_message,
    }


def _tool_span(root: Span, llm: Span, found: Recorded) -> Span:
    return Span(
        trace_id=root.trace_id,
        span_id=new_span_id(),
        kind=SpanKind.TOOL.value,
        name=found.name,
        project=root.project,
        parent_span_id=root.span_id,
        start_us=llm.start_us + round((llm.latency_ms or 0) * 1000) + 1,
        latency_ms=0.0,
        status=Status.OK.value,
        service="llmlens-replay",
        tool_name=found.name,
        tool_args=json.loads(found.arguments) if found.arguments.startswith(("{", "[")) else found.arguments,
        tool_result=found.result,
        tool_success=True,
        replay_of=found.span_id,
        attributes={"llmlens.replay.recorded_result": True},
    )


def steps_from_spans(original_spans: Sequence[dict[str, Any]], run_spans: Sequence[dict[str, Any]]) -> list[TraceStep]:
    """The side-by-side steps of a stored trace replay (for its page)."""
    originals = [s for s in original_spans if s.get("kind") == SpanKind.LLM.value and not s.get("replay_of")]
    news = sorted(
        (s for s in run_spans if s.get("kind") == SpanKind.LLM.value),
        key=lambda s: int((s.get("attributes") or {}).get(STEP_ATTRIBUTE, 0)),
    )
    steps: list[TraceStep] = []
    for i in range(max(len(originals), len(news))):
        new = news[i] if i < len(news) else None
        attrs = (new.get("attributes") or {}) if new else {}
        steps.append(
            TraceStep(
                i,
                _action(originals[i]) if i < len(originals) else None,
                _action(new) if new else None,
                diverged=attrs.get(DIVERGED_ATTRIBUTE),
            )
        )
    return steps
