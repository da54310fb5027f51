"""The cacheable-prompts finding's action: switching the gateway's cache on for one feature of one project,
through the API, kept across restarts; calls of that feature are then answered from the cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.insights._support import ingest, insights, matching
from tests.insights._traffic import Traffic
from tests.proxy._support import free_port
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "How do I reset my password?"}]}


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[LLMLensServer, FakeProvider]]:
    port = free_port()
    with (
        FakeProvider(port=port) as upstream,
        LLMLensServer(tmp_path / "data", args=["--upstream", f"openai=http://127.0.0.1:{port}/v1"]) as srv,
    ):
        yield srv, upstream


def _call(srv: LLMLensServer, feature: str, project: str = "default") -> str | None:
    headers = {"Authorization": "Bearer sk-test", "X-LLMLens-Feature": feature, "X-LLMLens-Project": project}
    r = httpx.post(srv.url + "/proxy/openai/v1/chat/completions", json=BODY, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r.headers.get("x-llmlens-cache")


def test_switching_the_cache_on_for_a_feature(gateway: tuple[LLMLensServer, FakeProvider]) -> None:
    srv, _ = gateway
    assert [_call(srv, "faq"), _call(srv, "faq")] == [None, None]  # the gateway's cache is off by default
    with srv.client() as c:
        on = c.put("/api/v1/gateway/cache/features/faq")
        assert on.status_code == 200 and on.json() == {
            "project": "default",
            "features": ["faq"],
            "feature": "faq",
            "cached": True,
        }
    assert [_call(srv, "faq"), _call(srv, "faq")] == ["MISS", "HIT"]
    assert _call(srv, "search") is None  # another feature is not cached
    assert _call(srv, "faq", project="other") is None  # nor the same feature in another project
    # Kept across a restart, then switched off again.
    srv.stop()
    srv.start()
    with srv.client() as c:
        assert c.get("/api/v1/gateway/cache/features").json() == {"project": "default", "features": ["faq"]}
        assert c.get("/api/v1/gateway/cache/features", params={"project": "other"}).json()["features"] == []
        off = c.delete("/api/v1/gateway/cache/features/faq")
        assert off.status_code == 200 and off.json()["features"] == []
    assert _call(srv, "faq") is None


def test_the_finding_says_when_its_action_is_done(tmp_path: Path) -> None:
    with LLMLensServer(tmp_path / "data") as srv:
        traffic = Traffic(seed=21)
        traffic.duplicates()
        ingest(srv, traffic.events, "shop")
        (finding,) = matching(insights(srv, "shop"), "cacheable_prompts", feature="faq")
        action = finding["action"]
        assert action["kind"] == "enable_cache" and action["done"] is False
        assert (action["method"], action["url"]) == ("PUT", "/api/v1/gateway/cache/features/faq")
        with srv.client() as c:
            r = c.request(action["method"], action["url"], headers={"X-LLMLens-Project": "shop"})
            assert r.status_code == 200
        (finding,) = matching(insights(srv, "shop"), "cacheable_prompts", feature="faq")
        assert finding["action"]["done"] is True


def test_bad_feature_is_400(tmp_path: Path) -> None:
    with LLMLensServer(tmp_path / "data") as srv, srv.client() as c:
        r = c.put("/api/v1/gateway/cache/features/" + "x" * 201)
        assert r.status_code == 400 and "feature" in r.json()["error"]
