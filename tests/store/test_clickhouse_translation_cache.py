"""The ClickHouse store keeps each trusted query's translation as a template and puts later values back
into it: what a kept template gives must be what translating afresh gives, for awkward strings, floats,
times and a second project; a query whose translation depends on a value is not kept, and answers right."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.store.test_id_lookups import HOUR_US, NOW, NOW_US, _span

from llmlens.store import open_store
from llmlens.store._scoping import current_project
from llmlens.store.clickhouse import ClickHouseStore
from llmlens.store.clickhouse import _translation_cache as cache

pytestmark = pytest.mark.clickhouse

T = f"{0xC:032x}"
AWKWARD = ["it's", "back\\slash", "two''quotes", "llmlens_x_0", "%_like", "", "é ünïcode", "a\nb"]


@pytest.fixture
def store(clickhouse_url: str, tmp_path: Path) -> Iterator[ClickHouseStore]:
    url = clickhouse_url.rsplit("/", 1)[0] + f"/translations_{tmp_path.name[-8:].replace('-', '_')}"
    opened = open_store(url, tmp_path)
    assert isinstance(opened, ClickHouseStore)
    spans = []
    for i, feature in enumerate(AWKWARD):
        for project in ("default", "other"):
            span = _span(0x100 + i, i + 0.5, trace=T, project=project)
            span.feature = feature
            span.cost_usd = 0.001 * (i + 1)
            span.metadata = {"tier": f"t{i % 2}", "team": f"team{i % 3}"}
            spans.append(span)
    opened.write(spans, [])
    yield opened
    opened.close()


def _fresh(store: ClickHouseStore, sql: str, params: Any, project: str | None = None) -> str:
    return store._translated(sql, params, project)


QUERIES: list[tuple[str, list[list[Any]]]] = [
    (
        "SELECT feature, COUNT(*) AS n FROM llm_logs WHERE project = ? AND feature = ? GROUP BY feature",
        [["default", value] for value in AWKWARD],
    ),
    (
        "SELECT COUNT(*) FROM spans WHERE project = ? AND cost_usd > ? AND timestamp >= ? AND timestamp < ?",
        [
            ["default", 0.0025, NOW - dt.timedelta(days=1), NOW],
            ["default", 1e-9, NOW - dt.timedelta(hours=3, minutes=7, seconds=5), NOW + dt.timedelta(hours=1)],
            ["other", -0.5, dt.datetime(2020, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1)],
        ],
    ),
    (
        "SELECT feature FROM spans WHERE project = $p AND feature ILIKE $f ORDER BY feature LIMIT 5",
        [{"p": "default", "f": "%a%"}, {"p": "other", "f": "it%"}, {"p": "default", "f": "%'%"}],
    ),
]


@pytest.mark.parametrize(("sql", "calls"), QUERIES)
def test_a_kept_template_gives_the_fresh_translation(store: ClickHouseStore, sql: str, calls: list[Any]) -> None:
    for params in calls:
        assert store.translate(sql, params) == _fresh(store, sql, params)
        assert store.translate(sql, params, "other") == _fresh(store, sql, params, "other")
    kept = [v for k, v in store._translations._kept.items() if k[1] == sql]
    assert kept and all(isinstance(v, cache._Template) for v in kept), "the query should be kept as a template"


def test_answers_follow_each_value(store: ClickHouseStore) -> None:
    sql = "SELECT COUNT(*), SUM(cost_usd) FROM llm_logs WHERE project = ? AND feature = ?"
    for i, feature in enumerate(AWKWARD):
        count, cost = store.query(sql, ["default", feature]).rows[0]
        assert count == 1, feature
        assert cost == pytest.approx(0.001 * (i + 1))
    window = "SELECT COUNT(*) FROM spans WHERE project = ? AND timestamp >= ? AND timestamp < ?"
    for hours in (1, 3, 8):
        start = dt.datetime.fromtimestamp((NOW_US - hours * HOUR_US) / 1e6, dt.UTC)
        assert store.query(window, ["default", start, NOW + dt.timedelta(hours=1)]).rows[0][0] == hours


def test_a_second_project_gets_its_own_rows(store: ClickHouseStore) -> None:
    sql = "SELECT project, COUNT(*) FROM spans WHERE feature = ? GROUP BY project"
    for project in ("default", "other", "default"):
        token = current_project.set(project)  # a request confined to the project, as the server runs it
        try:
            assert [tuple(r) for r in store.query(sql, ["it's"]).rows] == [(project, 1)]
        finally:
            current_project.reset(token)
    scopes = {k[0] for k in store._translations._kept if k[1] == sql}
    assert scopes == {("trusted", "default"), ("trusted", "other")}


def test_a_query_whose_translation_depends_on_a_value_is_not_kept(store: ClickHouseStore) -> None:
    sql = "SELECT json_extract_string(metadata, ?) AS v, COUNT(*) FROM spans WHERE project = ? GROUP BY v ORDER BY v"
    tiers = store.query(sql, ["$.tier", "default"]).rows
    teams = store.query(sql, ["$.team", "default"]).rows
    assert [tuple(r) for r in tiers] == [("t0", 4), ("t1", 4)]
    assert [tuple(r) for r in teams] == [("team0", 3), ("team1", 3), ("team2", 2)]
    assert store._translations._kept[(("trusted", None), sql, ((0, "s"), (1, "s")))] is cache._NOT_KEPT


def test_large_ints_are_translated_every_time(store: ClickHouseStore) -> None:
    sql = "SELECT COUNT(*) FROM spans WHERE project = ? AND toUnixTimestamp(timestamp) < ?"
    for hours in (0, 2):
        before = (NOW_US - hours * HOUR_US) // 1_000_000
        assert store.query(sql, ["default", before]).rows[0][0] == len(AWKWARD) - hours
    assert not [k for k in store._translations._kept if k[1] == sql]


def test_a_query_with_many_values_is_translated_every_time(store: ClickHouseStore) -> None:
    ids = [f"{0x100 + i:016x}" for i in range(70)]
    sql = f"SELECT COUNT(*) FROM spans WHERE project = ? AND span_id IN ({', '.join('?' for _ in ids)})"
    assert store.query(sql, ["default", *ids]).rows[0][0] == len(AWKWARD)
    assert not [k for k in store._translations._kept if k[1] == sql]


def test_the_kept_templates_are_bounded() -> None:
    kept = cache.TranslationCache(size=3)
    for i in range(10):
        assert kept.translated(("trusted", None), f"q{i}", ["v"], lambda v, i=i: f"sql{i} '{v[0]}'") == f"sql{i} 'v'"
    assert len(kept._kept) == 3
