"""Findings on generated traffic where the answer is known: every planted pattern comes out once, about
what it was planted in, with its size within 10 %; traffic without the patterns has no findings; a
project sees only its own findings; the page shows the API's figures."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from markupsafe import escape
from tests.insights._support import ingest, insights, matching
from tests.insights._traffic import Traffic
from tests.support.llmlens_server import LLMLensServer

from llmlens.server.routes._formatting import count, ms, usd

# pattern -> (kind, scope the finding must be about, the planted sizes it must report)
PLANTED: dict[str, tuple[str, dict[str, str]]] = {
    "duplicates": ("cacheable_prompts", {"feature": "faq"}),
    "sequential": ("parallelizable_calls", {"trace_type": "report.build"}),
    "truncation": ("max_tokens", {"feature": "summaries", "check": "cut_off"}),
    "caching_break": ("prompt_caching", {"feature": "docs_qa", "check": "broken"}),
    "context_growth": ("context_growth", {"feature": "tutor"}),
    "rate_limit_burst": ("retries", {"model": "gpt-4.1-mini", "check": "rate_limit"}),
    "cost_outliers": ("cost_outliers", {"feature": "research"}),
    "not_streamed": ("streaming", {"feature": "chat_ui"}),
    "smaller_model": ("smaller_model", {"feature": "classify", "model": "gpt-4o", "candidate": "gpt-4o-mini"}),
}


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LLMLensServer, dict[str, dict[str, float]]]]:
    with LLMLensServer(tmp_path_factory.mktemp("insights-planted")) as srv:
        traffic = Traffic(seed=3)
        traffic.clean()
        expected = {name: getattr(traffic, name)() for name in PLANTED}
        ingest(srv, traffic.events, "shop")
        clean = Traffic(seed=5)
        clean.clean(600)
        clean.clean(300, feature="search")
        ingest(srv, clean.events, "clean")
        yield srv, expected


@pytest.mark.parametrize("pattern", list(PLANTED))
def test_planted_pattern_is_found_with_its_size(
    planted: tuple[LLMLensServer, dict[str, dict[str, float]]], pattern: str
) -> None:
    srv, expected = planted
    doc = insights(srv, "shop")
    kind, scope = PLANTED[pattern]
    found = matching(doc, kind, **scope)
    assert len(found) == 1, [(i["kind"], i["scope"]) for i in doc["insights"]]
    insight = found[0]
    for field, value in expected[pattern].items():
        if field in insight:
            assert insight[field] == pytest.approx(value, rel=0.10), field
    days = doc["examined"]["days"]
    assert days == pytest.approx(7, rel=0.01)
    assert insight["saving_usd_per_month"] == pytest.approx(insight["saving_usd"] * 30 / days, rel=1e-3, abs=1e-6)
    assert insight["confidence"] in ("high", "medium", "low")
    assert insight["method"] and insight["assumptions"]
    assert insight["example_trace_ids"]
    # The examples are calls of this project, about what the finding is about.
    ids = ", ".join(f"'{t}'" for t in insight["example_trace_ids"])
    rows = srv.sql(
        f"SELECT DISTINCT trace_id FROM spans WHERE trace_id IN ({ids})", headers={"X-LLMLens-Project": "shop"}
    )
    assert {r["trace_id"] for r in rows} == set(insight["example_trace_ids"])


def test_nothing_but_the_planted_patterns_is_found(planted: tuple[LLMLensServer, Any]) -> None:
    srv, _ = planted
    doc = insights(srv, "shop")
    found = sorted(
        (i["kind"], i["scope"].get("feature") or i["scope"].get("trace_type") or i["scope"].get("model"))
        for i in doc["insights"]
    )
    wanted = sorted(
        (kind, scope.get("feature") or scope.get("trace_type") or scope.get("model"))
        for kind, scope in PLANTED.values()
    )
    assert found == wanted


def test_dependent_calls_are_not_parallelizable(planted: tuple[LLMLensServer, Any]) -> None:
    srv, _ = planted
    doc = insights(srv, "shop")
    assert matching(doc, "parallelizable_calls", trace_type="report.refine") == []


def test_clean_traffic_has_no_findings(planted: tuple[LLMLensServer, Any]) -> None:
    srv, _ = planted
    doc = insights(srv, "clean")
    assert doc["examined"]["calls"] == 900
    assert doc["insights"] == []


def test_a_project_sees_none_of_another_projects_findings(planted: tuple[LLMLensServer, Any]) -> None:
    srv, _ = planted
    assert insights(srv, "shop")["insights"]
    other = insights(srv, "elsewhere")
    assert other["project"] == "elsewhere" and other["insights"] == [] and other["examined"]["calls"] == 0
    with srv.client() as c:
        page = c.get("/insights", params={"project": "elsewhere", "range": "7d"})
    assert page.status_code == 200
    assert 'id="insights-none"' in page.text and "cacheable_prompts" not in page.text


def test_findings_are_ranked_by_dollars_or_seconds_per_month(planted: tuple[LLMLensServer, Any]) -> None:
    srv, _ = planted
    found = insights(srv, "shop")["insights"]
    top_usd = max(i["saving_usd_per_month"] or 0 for i in found)
    top_s = max(i["saving_s_per_month"] or 0 for i in found)
    scores = [max((i["saving_usd_per_month"] or 0) / top_usd, (i["saving_s_per_month"] or 0) / top_s) for i in found]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == 1.0


def test_page_shows_the_figures_of_the_api(planted: tuple[LLMLensServer, Any]) -> None:
    srv, _ = planted
    doc = insights(srv, "shop")
    with srv.client() as c:
        page = c.get("/insights", params={"project": "shop", "range": "7d"})
    assert page.status_code == 200
    text = page.text
    order = [m.group(1) for m in re.finditer(r'<details class="insight" id="insight-([0-9a-f]+)"', text)]
    assert order == [i["id"] for i in doc["insights"]]
    for insight in doc["insights"]:
        start = text.index(f'id="insight-{insight["id"]}"')
        block = text[start : text.index("</details>", start)]
        assert str(escape(insight["title"])) in block
        assert f">{usd(insight['saving_usd_per_month'])}<small>per month" in block
        assert f'class="saving-usd" data-value="{insight["saving_usd"]}">{usd(insight["saving_usd"])}<' in block
        assert f">{ms(insight['saving_ms_per_trace'])}<small>per trace" in block
        assert f'data-value="{insight["calls_affected"]}">{count(insight["calls_affected"])}<' in block
        assert str(escape(insight["method"])) in block
        for assumption in insight["assumptions"]:
            assert str(escape(assumption)) in block
        for trace_id in insight["example_trace_ids"]:
            assert f'href="/traces/{trace_id}?' in block
        if insight["chart"]:
            assert "data-chart=" in block


def test_bad_parameters_are_400_naming_them(planted: tuple[LLMLensServer, Any]) -> None:
    srv, _ = planted
    with srv.client() as c:
        bad_range = c.get("/api/v1/insights", params={"range": "a while"})
        bad_kind = c.get("/api/v1/insights", params={"kind": "vibes"})
        page = c.get("/insights", params={"range": "a while"})
    assert bad_range.status_code == 400 and "range" in bad_range.json()["error"]
    assert bad_kind.status_code == 400 and "kind" in bad_kind.json()["error"]
    assert page.status_code == 400 and "range" in page.text


def test_kind_narrows_the_answer(planted: tuple[LLMLensServer, Any]) -> None:
    srv, _ = planted
    doc = insights(srv, "shop", kind="retries,streaming")
    assert {i["kind"] for i in doc["insights"]} == {"retries", "streaming"}
