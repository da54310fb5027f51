"""Waiting on a server's alert evaluator: N more scheduled evaluations done and every notification they
made delivered, read from GET /api/v1/alerts (`evaluator`), instead of sleeping and hoping they ran."""

from __future__ import annotations

import time
from typing import Any

import httpx


def alerts_doc(url: str, project: str | None = None) -> dict[str, Any]:
    headers = {"X-LLMLens-Project": project} if project else {}
    answer = httpx.get(url + "/api/v1/alerts", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    doc: dict[str, Any] = answer.json()
    return doc


def wait_for_evaluations(url: str, more: int, *, project: str | None = None, timeout_s: float = 60) -> dict[str, Any]:
    """Wait until `more` scheduled evaluations completed after this call began (one may have been under
    way already, so at least `more - 1` started after it) and the project has no notification still on
    its way; returns the alerts document seen then."""
    start = alerts_doc(url, project)["evaluator"]["runs"]
    deadline = time.monotonic() + timeout_s
    while True:
        doc = alerts_doc(url, project)
        evaluator = doc["evaluator"]
        if evaluator["runs"] >= start + more and evaluator["notifications_pending"] == 0:
            assert evaluator["failed_runs"] == 0, f"scheduled evaluations failed: {evaluator}"
            return doc
        assert time.monotonic() < deadline, f"{more} evaluations did not complete in {timeout_s} s: {evaluator}"
        time.sleep(0.05)
