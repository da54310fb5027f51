"""Talking to a real server about insights: ingest a project's events, read its findings, pick one out."""

from __future__ import annotations

from typing import Any

from tests.support.llmlens_server import LLMLensServer


def ingest(srv: LLMLensServer, events: list[dict[str, Any]], project: str) -> None:
    for start in range(0, len(events), 2000):
        doc = srv.ingest({"events": events[start : start + 2000]}, headers={"X-LLMLens-Project": project})
        assert doc["rejected"] == [], doc["rejected"][:3]


def insights(srv: LLMLensServer, project: str, **params: str) -> dict[str, Any]:
    with srv.client() as c:
        r = c.get("/api/v1/insights", params={"range": "7d", **params}, headers={"X-LLMLens-Project": project})
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    assert doc["errors"] == [], doc["errors"]
    assert doc["status"] == "fresh", doc["status"]
    return doc


def matching(doc: dict[str, Any], kind: str, **scope: str) -> list[dict[str, Any]]:
    """The findings of `kind` whose scope includes `scope`."""
    return [i for i in doc["insights"] if i["kind"] == kind and all(i["scope"].get(k) == v for k, v in scope.items())]
