"""Evaluators: built-in checks, LLM judges, RAG relevance and Python functions, parsed from one spec format.

A spec is a string (`json_valid`, `regex:^\\d+$`, `contains:refund`, `language:en`, `refusal`, `helpfulness`,
`judge:NAME`, `rag`, `package.module:function`) or a table with `type` and its parameters
(`{type = "json_schema", schema = {...}}`, `{type = "length", max_chars = 2000}`,
`{type = "judge", template = "groundedness", model = "anthropic:claude-3-5-haiku-latest"}`).
An evaluator turns a sample into verdicts (scores to store) and errors (counted, never raised);
judge evaluators also return the judge calls' spans for the caller to record.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmlens.replay.providers import Providers
from llmlens.replay.scorers import ScorerError, ScoreSample, parse_scorer

from . import _checks as checks
from ._judge import JudgeCall, JudgeSettings, missing_inputs, run_judge
from ._judge_templates import BUILTIN_TEMPLATES, JudgeTemplate
from ._samples import Chunk, EvalSample

CHECK_TYPES = ("json_valid", "json_schema", "regex", "contains", "length", "refusal", "language")
EVALUATOR_TYPES = (*CHECK_TYPES, "judge", "rag", "python")
RAG_MAX_CHUNKS = 10


class EvaluatorSpecError(ValueError):
    """An evaluator spec that cannot be used; the message names the parameter."""


@dataclass(slots=True)
class Verdict:
    """One score an evaluator gives, on the sample's span or on another (`target_*`)."""

    name: str
    data_type: str
    value: float | None = None
    label: str | None = None
    comment: str | None = None
    reasoning: str | None = None
    higher_is_better: bool = True
    judge_call: JudgeCall | None = None
    key: str = ""  # distinguishes verdicts of one name on one span (a chunk's index)
    target_span_id: str | None = None
    target_trace_id: str | None = None
    target_message_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    verdicts: list[Verdict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    judge_calls: list[JudgeCall] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # not applicable to this call (no context to judge...)


TemplateLookup = Callable[[str], JudgeTemplate | None]
FollowingAnswer = Callable[[EvalSample], Awaitable[EvalSample | None]]


@dataclass(slots=True)
class EvalContext:
    """What evaluators may use: the judge's upstreams and settings, the project's templates, the trace."""

    providers: Providers | None
    judge: JudgeSettings
    templates: TemplateLookup = BUILTIN_TEMPLATES.get
    following_answer: FollowingAnswer | None = None  # RAG: the LLM call a retrieval fed
    judge_slots: asyncio.Semaphore | None = None  # bounds concurrent judge calls
    span_metadata: dict[str, Any] = field(default_factory=dict)  # put on judge spans (rule, experiment)


class Evaluator:
    """Base: `name` identifies it in scores (`evaluator`), `version` its configuration."""

    name = "evaluator"
    version = "1"
    kinds: frozenset[str] = frozenset({"llm"})
    uses_judge = False

    def score_names(self) -> list[str]:
        return [self.name]

    async def evaluate(self, sample: EvalSample, ctx: EvalContext) -> Outcome:
        raise NotImplementedError


class CheckEvaluator(Evaluator):
    def __init__(
        self, name: str, score_name: str, function: checks.CheckFunction, data_type: str, *, lower_better: bool = False
    ) -> None:
        self.name = name
        self._score_name = score_name
        self._function = function
        self._data_type = data_type
        self._higher_is_better = not lower_better
        self._slow = name.startswith("language")

    def score_names(self) -> list[str]:
        return [self._score_name]

    async def evaluate(self, sample: EvalSample, ctx: EvalContext) -> Outcome:
        if self._slow:  # a language model is loaded and run: off the event loop
            result = await asyncio.to_thread(self._function, sample.answer)
        else:
            result = self._function(sample.answer)
        if result.value is None and result.label is None:
            return Outcome(skipped=[f"{self.name}: {result.comment or 'no verdict'}"])
        verdict = Verdict(
            self._score_name,
            self._data_type,
            value=result.value,
            label=result.label,
            comment=result.comment,
            higher_is_better=self._higher_is_better,
        )
        return Outcome(verdicts=[verdict])


class JudgeEvaluator(Evaluator):
    uses_judge = True

    def __init__(self, template_name: str, model: str | None = None, score_name: str | None = None) -> None:
        self.template_name = template_name
        self.model = model
        self.name = f"judge:{template_name}"
        self._score_name = score_name

    def score_names(self) -> list[str]:
        return [self._score_name or self.template_name]

    def template(self, ctx: EvalContext) -> JudgeTemplate:
        found = ctx.templates(self.template_name)
        if found is None:
            raise EvaluatorSpecError(f"no judge template {self.template_name!r}")
        return found

    async def evaluate(self, sample: EvalSample, ctx: EvalContext) -> Outcome:
        template = self.template(ctx)
        self.version = template.version
        missing = missing_inputs(template, sample)
        if missing:
            return Outcome(skipped=[f"{self.name}: the call has no {' or '.join(missing)} to judge"])
        if template.per_chunk:
            return await _per_chunk(self, template, sample, ctx, self._score_name or template.score_name)
        call = await _judge(ctx, template, sample, self.model)
        return _judged(call, template, self._score_name or template.score_name)


async def _judge(
    ctx: EvalContext, template: JudgeTemplate, sample: EvalSample, model: str | None, chunk: Chunk | None = None
) -> JudgeCall:
    if ctx.providers is None:
        raise RuntimeError("no judge upstreams: the evaluator runs without providers")
    if ctx.judge_slots is None:
        return await run_judge(
            ctx.providers, ctx.judge, template, sample, model=model, chunk=chunk, metadata=ctx.span_metadata
        )
    async with ctx.judge_slots:
        return await run_judge(
            ctx.providers, ctx.judge, template, sample, model=model, chunk=chunk, metadata=ctx.span_metadata
        )


def _judged(call: JudgeCall, template: JudgeTemplate, score_name: str, **extra: Any) -> Outcome:
    out = Outcome(judge_calls=[call])
    if call.error is not None or call.score is None:
        out.errors.append(f"judge:{template.name}: {call.error}")
        return out
    out.verdicts.append(
        Verdict(
            score_name,
            checks.NUMERIC,
            value=round(call.score, 4),
            reasoning=call.reasoning,
            higher_is_better=template.higher_is_better,
            judge_call=call,
            **extra,
        )
    )
    return out


async def _per_chunk(
    evaluator: Evaluator, template: JudgeTemplate, sample: EvalSample, ctx: EvalContext, score_name: str
) -> Outcome:
    """One judge call per chunk; their verdicts, each keyed by the chunk's position."""
    chunks = sample.context[:RAG_MAX_CHUNKS]
    model = getattr(evaluator, "model", None)
    calls = await asyncio.gather(*(_judge(ctx, template, sample, model, chunk) for chunk in chunks))
    out = Outcome()
    for index, (chunk, call) in enumerate(zip(chunks, calls, strict=True)):
        meta = {"chunk": index, **({"document_id": chunk.id} if chunk.id else {})}
        one = _judged(call, template, score_name, key=str(index), metadata=meta)
        out.verdicts += one.verdicts
        out.errors += one.errors
        out.judge_calls += one.judge_calls
    return out


class RagEvaluator(Evaluator):
    """On a retrieval span: each chunk's relevance to the query, the whole context's (their mean: the share
    of what was retrieved that helps), and the groundedness of the answer the chunks fed. On an LLM call:
    the groundedness of its answer in the chunks retrieved before it in its trace."""

    name = "rag"
    kinds = frozenset({"retrieval", "llm"})
    uses_judge = True

    def __init__(self, model: str | None = None) -> None:
        self.model = model

    def score_names(self) -> list[str]:
        return ["chunk_relevance", "context_relevance", "groundedness"]

    async def evaluate(self, sample: EvalSample, ctx: EvalContext) -> Outcome:
        relevance = ctx.templates("chunk_relevance") or BUILTIN_TEMPLATES["chunk_relevance"]
        grounded = ctx.templates("groundedness") or BUILTIN_TEMPLATES["groundedness"]
        self.version = f"{relevance.version}.{grounded.version}"
        if sample.kind == "llm":
            if not sample.context or not sample.answer:
                return Outcome(skipped=["rag: no retrieved chunks before this call in its trace"])
            return _judged(await _judge(ctx, grounded, sample, self.model), grounded, "groundedness")
        if not sample.context:
            return Outcome(skipped=["rag: the retrieval returned no documents"])
        answer = await ctx.following_answer(sample) if ctx.following_answer is not None else None
        question = sample.question or (answer.question if answer is not None else None)
        if not question:
            return Outcome(skipped=["rag: the retrieval has no query and no following LLM call to take one from"])
        asked = EvalSample(**{**_fields(sample), "question": question})
        out = await _per_chunk(self, relevance, asked, ctx, "chunk_relevance")
        scores = [v.value for v in out.verdicts if v.value is not None]
        if scores:
            out.verdicts.append(
                Verdict(
                    "context_relevance",
                    checks.NUMERIC,
                    value=round(sum(scores) / len(scores), 4),
                    comment=f"mean relevance of {len(scores)} of {len(sample.context)} chunks",
                    metadata={"chunks": len(sample.context), "judged": len(scores)},
                )
            )
        if answer is not None and answer.answer:
            fed = EvalSample(**{**_fields(answer), "context": sample.context})
            judged = _judged(
                await _judge(ctx, grounded, fed, self.model),
                grounded,
                "groundedness",
                target_span_id=answer.span_id,
                target_trace_id=answer.trace_id,
                target_message_id=answer.message_id,
                metadata={"retrieval_span_id": sample.span_id},
            )
            out.verdicts += judged.verdicts
            out.errors += judged.errors
            out.judge_calls += judged.judge_calls
        return out


def _fields(sample: EvalSample) -> dict[str, Any]:
    return {name: getattr(sample, name) for name in EvalSample.__dataclass_fields__}


class FunctionEvaluator(Evaluator):
    """A Python function by import path (as replay's scorers): called with a `ScoreSample` whose `response`
    is the answer and `original` the reference answer, if any; returns a number, a bool, a string (a
    category) or None (no verdict)."""

    def __init__(self, path: str, allowed: Collection[str] | None) -> None:
        try:
            scorer = parse_scorer(path, allowed_imports=allowed)
        except ScorerError as exc:
            raise EvaluatorSpecError(str(exc)) from None
        self.name = path
        self._function: Callable[[ScoreSample], Any] = scorer.function
        self._score_name = path.rpartition(":")[2]

    def score_names(self) -> list[str]:
        return [self._score_name]

    async def evaluate(self, sample: EvalSample, ctx: EvalContext) -> Outcome:
        scored = ScoreSample(
            original=sample.reference,
            response=sample.answer,
            model=sample.model or "",
            original_span=dict(sample.span),
            replay_span={},
        )
        try:
            value = await asyncio.to_thread(self._function, scored)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:  # the user's function failed: an error of this evaluator, never the others'
            return Outcome(errors=[f"{self.name} raised {type(exc).__name__}: {exc}"])
        if value is None:
            return Outcome()
        if isinstance(value, bool):
            return Outcome(verdicts=[Verdict(self._score_name, checks.BOOLEAN, value=1.0 if value else 0.0)])
        if isinstance(value, int | float):
            return Outcome(verdicts=[Verdict(self._score_name, checks.NUMERIC, value=float(value))])
        if isinstance(value, str) and value:
            return Outcome(verdicts=[Verdict(self._score_name, checks.CATEGORICAL, label=value[:200])])
        return Outcome(errors=[f"{self.name} returned {type(value).__name__}, not a number, bool or str"])


def _number(spec: Mapping[str, Any], key: str) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise EvaluatorSpecError(f"{key} must be a whole number of at least 0, got {value!r}")
    return value


def _string(spec: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = spec.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise EvaluatorSpecError(f"{spec.get('type')} needs `{key}`: a non-empty string")
    return value


def normalize_spec(spec: Any, known_templates: Collection[str] = BUILTIN_TEMPLATES) -> dict[str, Any]:
    """The table form of a spec; EvaluatorSpecError names what is wrong."""
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise EvaluatorSpecError("an evaluator must not be empty")
        head, sep, rest = text.partition(":")
        if text in ("json_valid", "refusal", "rag", "language", "json_schema", "length"):
            return {"type": text}
        if sep and head == "regex":
            return {"type": "regex", "pattern": rest}
        if sep and head == "contains":
            return {"type": "contains", "text": rest}
        if sep and head == "language":
            return {"type": "language", "expected": rest}
        if sep and head == "judge":
            return {"type": "judge", "template": rest}
        if text in known_templates:
            return {"type": "judge", "template": text}
        if (sep and "." in head) or (sep and rest and head.isidentifier()):
            return {"type": "python", "function": text}
        raise EvaluatorSpecError(
            f"unknown evaluator {text!r}; use one of {', '.join(CHECK_TYPES)}, a judge template "
            f"({', '.join(sorted(known_templates))}), rag, regex:PATTERN, contains:TEXT, language:CODE or "
            "module:function"
        )
    if isinstance(spec, Mapping):
        kind = spec.get("type")
        if kind not in EVALUATOR_TYPES:
            raise EvaluatorSpecError(f"evaluator type must be one of {', '.join(EVALUATOR_TYPES)}, got {kind!r}")
        return dict(spec)
    raise EvaluatorSpecError(f"an evaluator is a name or a table with `type`, got {type(spec).__name__}")


_PARAMS: dict[str, frozenset[str]] = {
    "json_valid": frozenset(),
    "json_schema": frozenset({"schema"}),
    "regex": frozenset({"pattern", "must_match"}),
    "contains": frozenset({"text", "case_sensitive"}),
    "length": frozenset({"min_chars", "max_chars"}),
    "refusal": frozenset(),
    "language": frozenset({"expected"}),
    "judge": frozenset({"template", "model"}),
    "rag": frozenset({"model"}),
    "python": frozenset({"function"}),
}


def build_evaluator(
    spec: Any,
    *,
    known_templates: Collection[str] = BUILTIN_TEMPLATES,
    allowed_functions: Collection[str] | None = None,
    score_name: str | None = None,
) -> Evaluator:
    """An evaluator from its spec. `allowed_functions` (None: any) limits import paths (API-made rules)."""
    doc = normalize_spec(spec, known_templates)
    kind = str(doc["type"])
    unknown = sorted(set(doc) - {"type"} - _PARAMS[kind])
    if unknown:
        raise EvaluatorSpecError(f"{kind} takes {', '.join(sorted(_PARAMS[kind])) or 'no parameters'}, not {unknown}")
    try:
        return _build(kind, doc, known_templates, allowed_functions, score_name)
    except checks.CheckConfigError as exc:
        raise EvaluatorSpecError(f"{kind}: {exc}") from None


def _build(
    kind: str,
    doc: Mapping[str, Any],
    known_templates: Collection[str],
    allowed_functions: Collection[str] | None,
    score_name: str | None,
) -> Evaluator:
    b, n, c = checks.BOOLEAN, checks.NUMERIC, checks.CATEGORICAL
    if kind == "json_valid":
        return CheckEvaluator(kind, score_name or kind, checks.json_valid(), b)
    if kind == "json_schema":
        return CheckEvaluator(kind, score_name or kind, checks.json_schema(doc.get("schema")), b)
    if kind == "regex":
        pattern = _string(doc, "pattern")
        assert pattern is not None
        must = doc.get("must_match", True)
        if not isinstance(must, bool):
            raise EvaluatorSpecError("regex: must_match must be true or false")
        return CheckEvaluator(
            f"regex:{pattern}", score_name or "regex_match", checks.regex(pattern, must_match=must), b
        )
    if kind == "contains":
        text = _string(doc, "text")
        assert text is not None
        case = doc.get("case_sensitive", False)
        if not isinstance(case, bool):
            raise EvaluatorSpecError("contains: case_sensitive must be true or false")
        return CheckEvaluator(
            f"contains:{text}", score_name or "contains", checks.contains(text, case_sensitive=case), b
        )
    if kind == "length":
        check = checks.length(_number(doc, "min_chars"), _number(doc, "max_chars"))
        return CheckEvaluator(kind, score_name or "length_ok", check, b)
    if kind == "refusal":
        return CheckEvaluator(kind, score_name or kind, checks.refusal(), n, lower_better=True)
    if kind == "language":
        expected = _string(doc, "expected", required=False)
        if expected:
            name = score_name or f"language_is_{expected.lower()}"
            return CheckEvaluator(f"language:{expected}", name, checks.language(expected), b)
        return CheckEvaluator(kind, score_name or kind, checks.language(), c)
    if kind == "judge":
        template = _string(doc, "template")
        assert template is not None
        if template not in known_templates:
            raise EvaluatorSpecError(f"no judge template {template!r}; known: {', '.join(sorted(known_templates))}")
        return JudgeEvaluator(template, _string(doc, "model", required=False), score_name)
    if kind == "rag":
        return RagEvaluator(_string(doc, "model", required=False))
    function = _string(doc, "function")
    assert function is not None
    return FunctionEvaluator(function, allowed_functions)


def catalogue(templates: Mapping[str, JudgeTemplate], functions: Collection[str]) -> dict[str, Any]:
    """What can be chosen, for the UI and `GET /api/v1/evaluators`."""
    return {
        "checks": [
            {"type": "json_valid", "spec": "json_valid", "what": "the answer parses as JSON"},
            {"type": "json_schema", "spec": '{type = "json_schema", schema = {...}}', "what": "it matches a schema"},
            {"type": "regex", "spec": "regex:PATTERN", "what": "it matches a regular expression"},
            {"type": "contains", "spec": "contains:TEXT", "what": "it contains a text (any case)"},
            {"type": "length", "spec": '{type = "length", min_chars = 1, max_chars = 2000}', "what": "length bounds"},
            {"type": "refusal", "spec": "refusal", "what": "it declines to help (1 = refusal)"},
            {"type": "language", "spec": "language or language:en", "what": "its language (or: is it in en)"},
        ],
        "judges": [
            {
                "name": t.name,
                "score": t.score_name,
                "description": t.description,
                "needs": list(t.needs),
                "higher_is_better": t.higher_is_better,
                "builtin": t.builtin,
                "version": t.version,
            }
            for t in templates.values()
        ],
        "rag": {"spec": "rag", "scores": ["chunk_relevance", "context_relevance", "groundedness"]},
        "functions": sorted(functions),
    }
