"""Every page question answered twice over one store: from the page rollups and id maps, and by the raw
SQL they replace (the same query functions over a view of the store that offers neither)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable
from typing import Any

from llmlens.query import Scope, budgets, feedback, latency, prompts, scores, tools
from llmlens.store import QueryResult

# Quantiles come from sketches on one side (within 1 % of the exact value), exactly on the other.
QUANTILE_FIELDS = ("p50", "p95", "p99", "latency_p50_ms", "latency_p95_ms", "ttft_p", "tokens_per_s")


class RawOnly:
    """A store as the query layer sees one without page rollups or id maps: every answer from raw rows."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.url = store.url
        self.has_rollups = store.has_rollups

    def query(self, sql: str, params: Any = ()) -> QueryResult:
        result: QueryResult = self._store.query(sql, params)
        return result


def reports(template: str, model: str) -> dict[str, Callable[[Any, Scope], Any]]:
    budget = budgets.Budgets(users={"u1": "pro"}, tiers={"pro": 50.0, "free": 1.0}, default_tier="free")
    return {
        "feedback": lambda s, sc: feedback.feedback_report(s, sc),
        "rated": lambda s, sc: feedback.rated_calls(s, sc, feedback.RatedCallFilters()),
        "rated_down": lambda s, sc: feedback.rated_calls(s, sc, feedback.RatedCallFilters(feedback="thumbs_down")),
        "rated_slow": lambda s, sc: feedback.rated_calls(
            s, sc, feedback.RatedCallFilters(template=template, speed="slow", model=model)
        ),
        "scores": lambda s, sc: scores.score_columns(s, sc, budget),
        "scores_model": lambda s, sc: scores.score_columns(s, sc, budget, model=model),
        "templates": lambda s, sc: prompts.templates(s, sc),
        "prompt_length": lambda s, sc: prompts.prompt_length_by_template(s, sc),
        "outliers": lambda s, sc: prompts.outliers(s, sc, min_tokens=900, min_cost_usd=0.5),
        "versions": lambda s, sc: prompts.prompt_versions(s, sc, template.partition("@")[0]),
        "tools": lambda s, sc: tools.tools_report(s, sc),
        "latency": lambda s, sc: latency.latency_report(s, sc),
        "latency_model": lambda s, sc: latency.latency_report(s, sc, model=model),
    }


def plain(value: Any) -> Any:
    """Comparable form: dataclasses as dicts, lists of rows keyed by their key (label, model, feedback id,
    ...) in order of first appearance: rows that tie on a sort value may come in either order."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [plain(v) for v in value]
        for key in ("label", "key", "model", "tool_name", "feedback_id", "span_id"):
            if items and all(isinstance(i, dict) and key in i for i in items):
                # Rows of one key (a feedback event on two calls of its message) tie: compared as a set.
                keyed: dict[str, list[Any]] = {}
                for i in items:
                    keyed.setdefault(str(i[key]), []).append(i)
                return {k: sorted(v, key=repr) for k, v in keyed.items()}
        return items
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return value


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return [] if a == b else [f"{path}: {a!r} != {b!r}"]
        quantile = any(f in path for f in QUANTILE_FIELDS)
        close = math.isclose(float(a), float(b), rel_tol=0.0101 if quantile else 1e-9, abs_tol=1e-9)
        return [] if close else [f"{path}: {a!r} != {b!r}"]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(map(str, a))} != {sorted(map(str, b))}"]
        return [d for k in a for d in differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def assert_rollups_equal_raw(store: Any, scope: Scope, template: str, model: str) -> None:
    """Every page question: the rollup answer equals the raw recount (quantiles within the sketch's 1 %)."""
    for name, question in reports(template, model).items():
        got, expected = plain(question(store, scope)), plain(question(RawOnly(store), scope))
        found = differences(got, expected, name)
        assert not found, "page rollups differ from a raw recount:\n" + "\n".join(found[:10])
