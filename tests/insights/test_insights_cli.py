"""`llmlens insights`: the same findings as the API, from a running server (--url) or from the store (--data)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cli._run import llmlens
from tests.insights._support import ingest, insights
from tests.insights._traffic import Traffic
from tests.support.llmlens_server import LLMLensServer


def _sizes(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (i["id"], i["kind"], i["saving_usd"], i["saving_ms_per_trace"], i["calls_affected"]) for i in doc["insights"]
    ]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LLMLensServer, Path]]:
    data = tmp_path_factory.mktemp("insights-cli")
    with LLMLensServer(data) as srv:
        traffic = Traffic(seed=13)
        traffic.clean(100)
        traffic.duplicates()
        traffic.truncation()
        ingest(srv, traffic.events, "shop")
        yield srv, data


def test_json_is_the_apis_answer(served: tuple[LLMLensServer, Path]) -> None:
    srv, _ = served
    result = llmlens("insights", "--url", srv.url, "--project", "shop", "--range", "7d", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    api = insights(srv, "shop")
    assert _sizes(doc) == _sizes(api) and len(doc["insights"]) == 2


def test_table_lists_each_finding(served: tuple[LLMLensServer, Path]) -> None:
    srv, _ = served
    result = llmlens("insights", "--url", srv.url, "--project", "shop")
    assert result.returncode == 0, result.stderr
    for insight in insights(srv, "shop")["insights"]:
        assert insight["kind"] in result.stdout
        assert insight["summary"][:40] in result.stdout


def test_bad_range_is_one_clear_line(served: tuple[LLMLensServer, Path]) -> None:
    srv, _ = served
    result = llmlens("insights", "--url", srv.url, "--range", "a fortnight")
    assert result.returncode == 1
    assert result.stderr.startswith("llmlens insights: --range must be") and result.stderr.count("\n") == 1
    unknown = llmlens("insights", "--url", srv.url, "--kind", "vibes")
    assert unknown.returncode == 1 and "--kind must be one of" in unknown.stderr


def test_data_dir_computes_the_same_findings(served: tuple[LLMLensServer, Path]) -> None:
    srv, data = served
    api = insights(srv, "shop")
    srv.stop()  # the store is the server's while it runs
    try:
        result = llmlens("insights", "--data", str(data), "--project", "shop", "--format", "json")
    finally:
        srv.start()
    assert result.returncode == 0, result.stderr
    assert _sizes(json.loads(result.stdout)) == _sizes(api)
