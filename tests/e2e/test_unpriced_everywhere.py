"""A model without a price reads as unpriced, never $0, on the Cost page and in `llmlens report cost`, with
the same call count as the unpriced list; a call of $0.00004 keeps two significant digits."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.support.llmlens_server import LLMLensServer

PROJECT = "unpriced-test"
UNPRICED_MODEL = "acme-internal-llm-7b"  # no price anywhere
UNPRICED_OK_CALLS = 5
TINY_MODEL = "gpt-4o-mini"
TINY_COST = 0.00004


def _events() -> list[dict[str, Any]]:
    now = time.time()
    unpriced = [
        {
            "type": "llm",
            "model": UNPRICED_MODEL,
            "provider": "vllm",
            "timestamp": now - 3600 + i * 60,
            "prompt_tokens": 60_911,
            "completion_tokens": 200,
            "latency_ms": 800.0,
        }
        for i in range(UNPRICED_OK_CALLS)
    ]
    # A failed call costs nothing and has no tokens: it is not among the calls without a price.
    failed = {**unpriced[0], "timestamp": now - 60, "status": "error", "error_type": "timeout", "prompt_tokens": None}
    tiny = {
        "type": "llm",
        "model": TINY_MODEL,
        "timestamp": now - 120,
        "cost_usd": TINY_COST,
        "prompt_tokens": 10,
        "completion_tokens": 1,
        "latency_ms": 100.0,
    }
    return [*unpriced, failed, tiny]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    with LLMLensServer(tmp_path_factory.mktemp("unpriced-data")) as srv:
        assert srv.ingest(_events(), headers={"X-LLMLens-Project": PROJECT})["rejected"] == []
        yield srv


def _row(html: str, section_id: str, model: str) -> str:
    section = re.search(rf'aria-labelledby="{section_id}".*?</table>', html, flags=re.S)
    assert section, f"no section {section_id} on the Cost page"
    rows = [r for r in re.findall(r"<tr>.*?</tr>", section.group(0), flags=re.S) if f">{model}<" in r]
    assert len(rows) == 1, f"no single row for {model} in {section_id}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", rows[0])).strip()


def test_cost_page_shows_unpriced_not_zero(server: LLMLensServer) -> None:
    with server.client(headers={"X-LLMLens-Project": PROJECT}) as client:
        doc = client.get("/api/v1/cost").json()["cost"]
        html = client.get("/cost", params={"project": PROJECT}).text
    by_model = {m["model"]: m for m in doc["by_model"]}
    unpriced = {u["model"]: u for u in doc["unpriced"]}
    assert by_model[UNPRICED_MODEL]["cost_usd"] is None  # unknown, not 0
    assert by_model[UNPRICED_MODEL]["calls"] == UNPRICED_OK_CALLS + 1
    assert by_model[UNPRICED_MODEL]["unpriced_calls"] == unpriced[UNPRICED_MODEL]["calls"] == UNPRICED_OK_CALLS

    model_row = _row(html, "models-h", UNPRICED_MODEL)
    listed_row = _row(html, "unpriced-h", UNPRICED_MODEL)
    assert "unpriced" in model_row and "$0" not in model_row
    assert f"{UNPRICED_OK_CALLS} calls without a price" in model_row
    assert listed_row.split()[1] == str(UNPRICED_OK_CALLS)  # the banner counts the same calls
    assert "60.9k" not in listed_row  # tokens of five 60,911-token prompts: 305k
    assert "305k" in listed_row
    assert "$0.000040" in _row(html, "models-h", TINY_MODEL)


def test_report_shows_unpriced_not_zero(server: LLMLensServer) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "llmlens.cli", "report", "cost", "--url", server.url, "--project", PROJECT],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "250"},
        check=True,
    ).stdout
    unpriced_line = next(line for line in out.splitlines() if UNPRICED_MODEL in line and "│" in line)
    tiny_line = next(line for line in out.splitlines() if f" {TINY_MODEL} " in line)
    assert "unpriced" in unpriced_line and "$0" not in unpriced_line
    assert "$0.000040" in tiny_line and "$0.0000 " not in tiny_line
    assert f"{UNPRICED_MODEL} ({UNPRICED_OK_CALLS} calls)" in out
