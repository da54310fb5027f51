"""The semantic tier of cacheable prompts, through a real server whose embedding model is the stand-in
provider's /v1/embeddings: questions asked again in other words come out with their planted size, the
exact and near tiers keep theirs, prompts are embedded once and kept per project, and an embedding
upstream that is down is reported without losing the other findings."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.insights._support import ingest, insights, matching
from tests.insights._traffic import Traffic
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer

MODEL = "text-embedding-3-small"
KEY = "sk-embeddings-test"


def _env(base_url: str) -> dict[str, str]:
    return {
        "LLMLENS_UPSTREAMS": json.dumps({"openai": base_url}),
        "LLMLENS_INSIGHTS_EMBEDDING_MODEL": f"openai:{MODEL}",
        "OPENAI_API_KEY": KEY,
    }


def _embedding_requests(fp: FakeProvider) -> list[Any]:
    return [r for r in fp.requests if r.path == "/v1/embeddings"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LLMLensServer, FakeProvider, dict[str, Any]]]:
    data = tmp_path_factory.mktemp("insights-semantic")
    with FakeProvider(embedding_dimensions=512) as fp, LLMLensServer(data, env=_env(fp.openai_base_url)) as srv:
        shop = Traffic(seed=7)
        shop.clean()
        expected = {"paraphrases": shop.paraphrases(), "duplicates": shop.duplicates()}
        ingest(srv, shop.events, "shop")
        other = Traffic(seed=9)
        other.clean(200)
        ingest(srv, other.events, "other")
        yield srv, fp, {"expected": expected, "data": data, "shop": shop}


def test_questions_asked_in_other_words_are_found_with_their_size(served: Any) -> None:
    srv, _, ctx = served
    doc = insights(srv, "shop")
    found = matching(doc, "cacheable_prompts", feature="support", tier="semantic")
    assert len(found) == 1, [(i["kind"], i["scope"]) for i in doc["insights"]]
    insight = found[0]
    for field, value in ctx["expected"]["paraphrases"].items():
        assert insight[field] == pytest.approx(value, rel=0.10), field
    assert insight["details"]["embedding_model"] == f"openai:{MODEL}"
    assert insight["details"]["threshold"] == 0.95
    assert insight["action"] is None  # the gateway's cache matches exact requests only
    assert "cosine" in insight["method"] and insight["example_trace_ids"]
    # No exact or near tier for the paraphrases; the exact repeats keep their exact finding and get no
    # semantic one on top (a hit is counted in one tier only).
    assert [i["scope"] for i in matching(doc, "cacheable_prompts", feature="support")] == [insight["scope"]]
    faq = matching(doc, "cacheable_prompts", feature="faq")
    assert [i["scope"] for i in faq] == [{"feature": "faq"}]
    assert faq[0]["calls_affected"] == pytest.approx(ctx["expected"]["duplicates"]["calls_affected"], rel=0.1)


def test_a_project_without_paraphrases_has_no_semantic_finding(served: Any) -> None:
    srv, _, _ = served
    doc = insights(srv, "other")
    assert matching(doc, "cacheable_prompts", tier="semantic") == []


def test_prompts_are_embedded_once_and_kept_per_project(served: Any) -> None:
    srv, fp, ctx = served
    insights(srv, "shop")
    insights(srv, "other")
    sent = _embedding_requests(fp)
    assert sent, "the embedding model was asked"
    assert {r.json["model"] for r in sent} == {MODEL}
    assert {r.headers.get("authorization") for r in sent} == {f"Bearer {KEY}"}
    asked = [text for r in sent for text in r.json["input"]]
    assert len(asked) == len(set(asked)), "a prompt was embedded twice"

    path = Path(ctx["data"]) / "embeddings.sqlite3"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with sqlite3.connect(path) as db:
        kept = dict(db.execute("SELECT project, COUNT(*) FROM embeddings GROUP BY project").fetchall())
    shop_prompts = {e["prompt"] for e in ctx["shop"].events if e.get("type") == "llm" and e.get("status") == "ok"}
    assert kept["shop"] == len(shop_prompts)
    assert set(kept) == {"shop", "other"}

    # New data makes the report stale; the refresh embeds only the new prompt.
    before = len(asked)
    extra = Traffic(seed=11)
    extra.llm(extra.at(0.5), feature="support", prompt="a question nobody asked before about the weather")
    ingest(srv, extra.events, "shop")
    insights(srv, "shop")
    after = [text for r in _embedding_requests(fp) for text in r.json["input"]]
    assert after[before:] == ["a question nobody asked before about the weather"]


def test_an_embedding_upstream_that_is_down_is_reported_and_the_rest_stands(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with LLMLensServer(tmp_path / "data", env=_env(dead)) as srv:
        traffic = Traffic(seed=7)
        traffic.clean(100)
        traffic.paraphrases()
        traffic.duplicates()
        ingest(srv, traffic.events, "shop")
        with srv.client() as c:
            r = c.get("/api/v1/insights", params={"range": "7d"}, headers={"X-LLMLens-Project": "shop"})
        assert r.status_code == 200, r.text
        doc = r.json()
        assert [e["kind"] for e in doc["errors"]] == ["cacheable_prompts"]
        assert "semantic tier" in doc["errors"][0]["error"] and dead in doc["errors"][0]["error"]
        assert matching(doc, "cacheable_prompts", feature="faq"), "the exact tier still reports"
        assert matching(doc, "cacheable_prompts", tier="semantic") == []


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("LLMLENS_INSIGHTS_EMBEDDING_MODEL", "nowhere:text-embedding-3-small", "names upstream 'nowhere'"),
        ("LLMLENS_INSIGHTS_SEMANTIC_THRESHOLD", "1.5", "insights_semantic_threshold must be above 0 and at most 1"),
    ],
)
def test_a_bad_embedding_setting_stops_start_up_naming_it(
    tmp_path: Path, setting: str, value: str, message: str
) -> None:
    server = LLMLensServer(tmp_path, env={**_env("http://127.0.0.1:9/v1"), setting: value})
    with pytest.raises(RuntimeError, match=re.escape(message)):
        server.start()
    server.stop()
