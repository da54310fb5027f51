"""The planted traffic on DuckDB and on ClickHouse, each behind a real server: the same findings, about the
same things, of the same size (ClickHouse 18.16 keeps whole seconds and answers medians approximately)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.insights._support import ingest, insights
from tests.insights._traffic import Traffic
from tests.support.llmlens_server import LLMLensServer

pytestmark = [pytest.mark.clickhouse, pytest.mark.slow]

PATTERNS = (
    "duplicates",
    "sequential",
    "truncation",
    "caching_break",
    "context_growth",
    "rate_limit_burst",
    "cost_outliers",
    "not_streamed",
    "smaller_model",
)


@pytest.fixture(scope="module")
def answers(clickhouse_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    traffic = Traffic(seed=3)
    traffic.clean()
    for name in PATTERNS:
        getattr(traffic, name)()
    ch_url = clickhouse_url.rsplit("/", 1)[0] + "/insights_e2e"
    with (
        LLMLensServer(tmp_path_factory.mktemp("insights-duckdb")) as duck,
        LLMLensServer(tmp_path_factory.mktemp("insights-ch"), args=["--store", ch_url]) as ch,
    ):
        found = {}
        for name, srv in (("duckdb", duck), ("clickhouse", ch)):
            ingest(srv, traffic.events, "shop")
            found[name] = insights(srv, "shop")
        yield found


def _by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for i in doc["insights"]}


def test_same_findings_on_both_stores(answers: dict[str, dict[str, Any]]) -> None:
    duck, ch = _by_id(answers["duckdb"]), _by_id(answers["clickhouse"])
    assert len(duck) == len(PATTERNS)
    assert {i["kind"]: i["scope"] for i in ch.values()} == {i["kind"]: i["scope"] for i in duck.values()}
    assert answers["clickhouse"]["examined"]["calls"] == answers["duckdb"]["examined"]["calls"]


def test_same_sizes_on_both_stores(answers: dict[str, dict[str, Any]]) -> None:
    duck, ch = _by_id(answers["duckdb"]), _by_id(answers["clickhouse"])
    for key, d in duck.items():
        c = ch[key]
        assert c["calls_affected"] == d["calls_affected"], d["title"]
        for field in ("saving_usd", "saving_ms_per_trace"):
            if d[field] is None:
                assert c[field] is None
            else:
                # Medians (cost outliers) and time to first token come from different estimators.
                assert c[field] == pytest.approx(d[field], rel=0.02, abs=1e-6), (d["title"], field)
        assert sorted(c["example_trace_ids"]) == sorted(d["example_trace_ids"]) or d["kind"] in (
            "cacheable_prompts",
            "context_growth",
        )
