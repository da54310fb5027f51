"""ClickHouse rollups equal a raw recount of the stored spans, on 18.16 (a real server) and on 26 (chdb):
after ingest, late context (update_span_fields), reprice (update_costs), retention, a DELETE and a rebuild."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.support.chdb_adapter import ChdbEngine

from llmlens.ingest.retention import enforce_retention
from llmlens.model import Span
from llmlens.pricing import PriceBook
from llmlens.store.clickhouse import ClickHouseStore
from llmlens.store.rollups import MEASURES, ROLLUP_KEYS, ROLLUP_KINDS, SKETCH_KEYS, SKETCHED_METRICS, index_sql

pytestmark = [pytest.mark.clickhouse, pytest.mark.slow]

HOUR_US = 3_600_000_000
NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
NOW_US = int((NOW - dt.datetime(1970, 1, 1)).total_seconds() * 1_000_000)
MODELS = ["gpt-4o", "gpt-4o-mini", None, "llama-3-8b"]  # llama has no price: unpriced calls


def _spans(project: str, count: int) -> list[Span]:
    """LLM calls and requests over ~10 days: NULL keys, unpriced and failed calls, zero and NaN latencies."""
    prices = PriceBook.load(None)
    out = []
    for i in range(count):
        start = NOW_US - (i * 7919 % (240 * 60)) * 60_000_000 - i  # spread over 10 days, distinct µs
        model = MODELS[i % 4]
        latency = 0.0 if i % 17 == 0 else float("nan") if i % 23 == 0 else 50.0 + (i * 37) % 4000
        llm = Span(
            trace_id=f"{project}{i:030x}"[-32:],
            span_id=f"{i * 2 + 1:016x}",
            kind="llm",
            name="chat",
            project=project,
            model=model,
            provider=None if model is None else "openai",
            start_us=start,
            latency_ms=latency,
            ttft_ms=None if i % 3 else latency / 4,
            tokens_per_second=None if i % 5 else 20.0 + i % 50,
            prompt_tokens=None if i % 11 == 0 else 100 + i,
            completion_tokens=10 + i % 90,
            status="error" if i % 13 == 0 else "ok",
            error_type="rate_limit" if i % 13 == 0 else None,
            feature=[None, "chat", "search"][i % 3],
            environment="prod" if i % 2 else None,
            template_id="answer" if i % 4 else None,
            template_version="v1" if i % 8 < 4 else "v2",
            user_id=None if i % 7 == 0 else f"u{i % 5}",
            metadata={"tier": "pro"} if i % 5 == 1 else ({} if i % 2 else None),
        )
        prices.price_span(llm)
        request = Span(
            trace_id=llm.trace_id,
            span_id=f"{i * 2 + 2:016x}",
            kind="request",
            name="POST /chat",
            project=project,
            start_us=start - 1000,
            latency_ms=latency + 5,
            http_status=[200, 200, 404, 503][i % 4],
            status="error" if i % 4 == 3 else "ok",
            feature=llm.feature,
        )
        out += [llm, request]
    return out


def _normal(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return value


def _keyed(rows: list[list[Any]], n_keys: int) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {tuple(map(_normal, r[:n_keys])): tuple(map(_normal, r[n_keys:])) for r in rows}


def _rolled_and_raw(store: ClickHouseStore) -> Iterator[tuple[str, dict[Any, Any], dict[Any, Any]]]:
    """(relation, rollup rows, raw recount) for every rollup relation, keyed by project, bucket and keys."""
    kinds = ", ".join(f"'{k}'" for k in ROLLUP_KINDS)
    names = [m for m, _, _ in MEASURES]
    for grain in ("hour", "day"):
        keys = ["project", "bucket", *ROLLUP_KEYS]
        rolled = store.query(
            f"SELECT {', '.join(keys)}, {', '.join(f'SUM({m}) AS {m}' for m in names)} FROM store.rollup_{grain} "
            "GROUP BY ALL HAVING SUM(calls) <> 0"
        ).rows
        raw = store.query(
            f"SELECT project, date_trunc('{grain}', timestamp) AS bucket, {', '.join(ROLLUP_KEYS)}, "
            f"{', '.join(f'{expr} AS {m}' for m, _, expr in MEASURES)} FROM store.spans "
            f"WHERE kind IN ({kinds}) GROUP BY ALL"
        ).rows
        yield f"rollup_{grain}", _keyed(rolled, len(keys)), _keyed(raw, len(keys))

        sketch_keys = ["project", "bucket", *SKETCH_KEYS, "metric", "idx"]
        rolled = store.query(
            f"SELECT {', '.join(sketch_keys)}, SUM(n) AS n FROM store.sketch_{grain} GROUP BY ALL HAVING SUM(n) <> 0"
        ).rows
        raw = []
        for metric, metric_id in SKETCHED_METRICS.items():
            raw += store.query(
                f"SELECT project, date_trunc('{grain}', timestamp) AS bucket, {', '.join(SKETCH_KEYS)}, "
                f"{metric_id} AS metric, {index_sql(metric)} AS idx, COUNT(*) AS n FROM store.spans "
                f"WHERE kind = 'llm' AND {index_sql(metric)} IS NOT NULL GROUP BY ALL"
            ).rows
        yield f"sketch_{grain}", _keyed(rolled, len(sketch_keys)), _keyed(raw, len(sketch_keys))

    rolled = store.query(
        "SELECT project, bucket, user_id, SUM(calls) AS calls, SUM(cost_usd) AS cost_usd, SUM(priced) AS priced, "
        "MAX(tier) AS tier FROM store.user_day GROUP BY ALL HAVING SUM(calls) <> 0"
    ).rows
    raw = store.query(
        "SELECT project, date_trunc('day', timestamp) AS bucket, user_id, COUNT(*) AS calls, SUM(cost_usd) AS cost_usd, "
        "COUNT(cost_usd) AS priced, MAX(json_extract_string(metadata, '$.tier')) AS tier FROM store.spans "
        "WHERE kind = 'llm' AND user_id IS NOT NULL GROUP BY ALL"
    ).rows
    yield "user_day", _keyed(rolled, 3), _keyed(raw, 3)


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Counts and keys exactly; sums of floats up to the order they were added in.

    A sum over no values is NULL in a recount but 0 in a rollup once a moved or deleted call's delta has been
    folded into its row (-x + x); both mean "no tokens known" and the pages show them alike."""
    return len(a) == len(b) and all(
        math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
        if isinstance(x, float) and isinstance(y, float)
        else x == y or {x, y} == {None, 0}
        for x, y in zip(a, b, strict=True)
    )


def assert_rollups_equal_raw(store: ClickHouseStore, when: str) -> None:
    for relation, rolled, raw in _rolled_and_raw(store):
        assert raw, f"{when}: the recount of {relation} found spans"
        missing, extra = raw.keys() - rolled.keys(), rolled.keys() - raw.keys()
        assert not missing and not extra, f"{when}, {relation}: missing {list(missing)[:3]}, extra {list(extra)[:3]}"
        wrong = {k: (rolled[k], raw[k]) for k in raw if not _same(rolled[k], raw[k])}
        assert not wrong, f"{when}, {relation}: rollup != raw for {len(wrong)} keys, e.g. {next(iter(wrong.items()))}"


@pytest.fixture(params=["clickhouse-18.16", "chdb"])
def open_clickhouse(request: pytest.FixtureRequest) -> Iterator[Callable[[], ClickHouseStore]]:
    """Opens a store in a database of its own: on the session's clickhouse-server (18.16) or on chdb (26)."""
    opened: list[ClickHouseStore] = []

    def open_new() -> ClickHouseStore:
        database = f"rollups_{uuid.uuid4().hex[:10]}"
        if request.param == "chdb":
            engine: ChdbEngine = request.getfixturevalue("chdb_engine")
            store = engine.store(f"clickhouse://default@localhost/{database}")
        else:
            base = request.getfixturevalue("clickhouse_url").rsplit("/", 1)[0]
            store = ClickHouseStore(f"{base}/{database}")
        opened.append(store)
        return store

    yield open_new
    for store in opened:
        store.close()


def test_rollups_follow_every_change_to_stored_spans(open_clickhouse: Callable[[], ClickHouseStore]) -> None:
    store = open_clickhouse()
    assert store.has_rollups
    spans = _spans("default", 300) + _spans("other", 60)
    for start in range(0, len(spans), 250):  # several inserts: rows of one key arrive in several parts
        store.write(spans[start : start + 250], [])
    assert_rollups_equal_raw(store, "after ingest")

    # A late root span's context moves calls to another feature and user (trace_context.py).
    llm = [s for s in spans if s.kind == "llm" and s.project == "default"]
    moved = {s.span_id: {"feature": "late", "user_id": "u-late"} for s in llm[:40]}
    assert store.update_span_fields("default", moved) == 40
    assert_rollups_equal_raw(store, "after late context")
    assert store.query("SELECT SUM(calls) FROM store.rollup_day WHERE feature = 'late'").rows == [[40]]

    # Reprice: new costs for some calls, including ones that had none.
    repriced = [dataclasses.replace(s, cost_usd=0.5, cost_source="custom") for s in llm[30:80]]
    assert store.update_costs(repriced) == 50
    assert_rollups_equal_raw(store, "after reprice")

    # Retention: 4 days in `default`, 2 in `other`, in whole days (UTC) with their rollup buckets; twice, as
    # two servers may run it.
    count = "SELECT project, COUNT(*), MIN(timestamp) FROM store.spans GROUP BY project ORDER BY project"
    before = store.query(count).rows
    enforce_retention(store, 4, {"other": 2}, now=NOW)
    enforce_retention(store, 4, {"other": 2}, now=NOW)
    after = store.query(count).rows
    assert [r[0] for r in after] == ["default", "other"]
    for (project, n_before, _), (_, n_after, oldest), days in zip(before, after, (4, 2), strict=True):
        assert n_after < n_before, f"retention deleted spans of {project}"
        day = (NOW - dt.timedelta(days=days)).replace(hour=0)
        assert day <= oldest.replace(tzinfo=None) < day + dt.timedelta(days=1)
    assert_rollups_equal_raw(store, "after retention")
    assert store.query("SELECT COUNT(*) FROM store.rollup_hour WHERE calls = 0").rows == [[0]]

    store.execute("DELETE FROM store.spans WHERE project = ? AND model = ?", ["default", "gpt-4o"])
    assert_rollups_equal_raw(store, "after a delete")

    store.rebuild_rollups()
    assert_rollups_equal_raw(store, "after a rebuild")
    store.rebuild_rollups(NOW_US - 30 * HOUR_US)
    assert_rollups_equal_raw(store, "after a rebuild of the last 30 hours")
