"""`llmlens reprice` with a price file: on a stopped store (`--data`) and through a running server.

Each test stores calls of a model no library prices (`my-llama`), a caller-priced call of it, a call
genai-prices knows, an old call, and calls in a second project; then checks which stored costs became
exactly tokens x the file's prices and which did not move.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.cli._run import llmlens
from tests.security._support import bearer, create_key
from tests.support.llmlens_server import LLMLensServer

INPUT_PER_MTOK = 0.25
OUTPUT_PER_MTOK = 1.75
TOML_PRICES = (
    f'[[models]]\nmatch = "my-llama"\ninput_per_mtok = {INPUT_PER_MTOK}\noutput_per_mtok = {OUTPUT_PER_MTOK}\n'
)
YAML_PRICES = (
    f"models:\n  - match: my-llama\n    input_per_mtok: {INPUT_PER_MTOK}\n    output_per_mtok: {OUTPUT_PER_MTOK}\n"
)
HOUR = 3600


def expected_cost(prompt: int, completion: int) -> float:
    """What the price file says a call costs: tokens x USD per million tokens."""
    return (prompt * INPUT_PER_MTOK + completion * OUTPUT_PER_MTOK) / 1_000_000


def llm_event(name: str, *, model: str, prompt: int, completion: int, age_s: float, **extra: Any) -> dict[str, Any]:
    return {
        "type": "llm",
        "message_id": name,
        "timestamp": time.time() - age_s,
        "model": model,
        "provider": "vllm" if model == "my-llama" else "openai",
        "prompt": "question",
        "response": "answer",
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "latency_ms": 40,
        **extra,
    }


# The main project's calls; `since 1d` leaves out the old one.
SHOP_EVENTS = [
    llm_event("recent-llama", model="my-llama", prompt=1_234, completion=567, age_s=HOUR),
    llm_event("caller-priced", model="my-llama", prompt=50_000, completion=7_000, age_s=2 * HOUR, cost_usd=0.42),
    llm_event("library-priced", model="gpt-4o-mini", prompt=1_000, completion=100, age_s=HOUR),
    llm_event("old-llama", model="my-llama", prompt=9_000, completion=900, age_s=10 * 24 * HOUR),
]
OTHER_EVENTS = [llm_event("other-llama", model="my-llama", prompt=3_000, completion=300, age_s=HOUR)]
COLUMNS = "message_id, cost_usd, computed_cost_usd, cost_source, price_version"


def rows_by_message(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["message_id"]: r for r in rows}


def repriced_count(stdout: str) -> int:
    found = re.search(r"^repriced (\d+) calls", stdout, re.MULTILINE)
    assert found, f"no 'repriced N calls' line in: {stdout!r}"
    return int(found.group(1))


def check_repriced(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> None:
    """The recent my-llama calls follow the file; the caller's cost, the library price and the old call stay."""
    recent = after["recent-llama"]
    assert recent["cost_usd"] == expected_cost(1_234, 567)
    assert recent["computed_cost_usd"] == expected_cost(1_234, 567)
    assert recent["cost_source"] == "custom" and recent["price_version"].startswith("custom:")

    caller = after["caller-priced"]
    assert caller["cost_usd"] == 0.42  # what the caller sent is the call's cost
    assert caller["computed_cost_usd"] == expected_cost(50_000, 7_000)
    assert caller["cost_source"] == "caller"

    library = after["library-priced"]
    assert library["cost_usd"] == before["library-priced"]["cost_usd"] and library["cost_usd"] > 0
    assert library["computed_cost_usd"] == before["library-priced"]["computed_cost_usd"]
    assert library["cost_source"] == "library"

    assert after["old-llama"] == before["old-llama"]  # before --since
    assert after["old-llama"]["cost_usd"] is None and after["old-llama"]["cost_source"] == "unpriced"


# -- a stopped store ------------------------------------------------------------------------------


@pytest.fixture(params=["duckdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def stopped_store(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """The `llmlens` options that open a store directly: a DuckDB data directory, or a ClickHouse database."""
    if request.param == "duckdb":
        return ["--data", str(tmp_path / "data")]
    base: str = request.getfixturevalue("clickhouse_url")
    return ["--store", base.rsplit("/", 1)[0] + f"/reprice_{uuid.uuid4().hex[:12]}"]


def _sql_store(store: list[str], project: str, query: str) -> list[dict[str, Any]]:
    out = llmlens("sql", query, *store, "--project", project, "--format", "json")
    assert out.returncode == 0, out.stderr
    rows: list[dict[str, Any]] = json.loads(out.stdout)
    return rows


def test_reprice_a_stopped_store_with_a_price_file(stopped_store: list[str], tmp_path: Path) -> None:
    for project, events in (("shop", SHOP_EVENTS), ("other", OTHER_EVENTS)):
        stdin = "\n".join(json.dumps(e) for e in events)
        done = llmlens("import", "-", *stopped_store, "--project", project, "--quiet", stdin=stdin)
        assert done.returncode == 0, done.stdout + done.stderr
    query = f"SELECT {COLUMNS} FROM llm_logs"
    before = rows_by_message(_sql_store(stopped_store, "shop", query))
    other_before = _sql_store(stopped_store, "other", query)
    assert before["recent-llama"]["cost_source"] == "unpriced" and before["recent-llama"]["cost_usd"] is None
    prices = tmp_path / "prices.toml"
    prices.write_text(TOML_PRICES)

    out = llmlens("reprice", *stopped_store, "--project", "shop", "--since", "1d", "--price-file", str(prices))

    assert out.returncode == 0, out.stderr
    assert repriced_count(out.stdout) == 3  # recent-llama, caller-priced, library-priced
    assert "in project shop" in out.stdout
    check_repriced(before, rows_by_message(_sql_store(stopped_store, "shop", query)))
    assert _sql_store(stopped_store, "other", query) == other_before  # another project is not touched
    # The dashboards' totals (from rollups) follow the stored costs.
    report = llmlens("report", "cost", "--window", "1d", *stopped_store, "--project", "shop", "--format", "json")
    assert report.returncode == 0, report.stderr
    after = rows_by_message(_sql_store(stopped_store, "shop", query))
    expected_total = sum(r["cost_usd"] for name, r in after.items() if name != "old-llama")
    assert json.loads(report.stdout)["total_usd"] == pytest.approx(expected_total, rel=1e-9)


def test_reprice_refuses_a_bad_price_file_before_touching_the_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    llmlens("import", "-", "--data", str(data), "--quiet", stdin=json.dumps(SHOP_EVENTS[0]))
    prices = tmp_path / "prices.toml"
    prices.write_text('[[models]]\nmatch = "my-llama"\ninput_per_mtok = 0.25\n')
    out = llmlens("reprice", "--data", str(data), "--price-file", str(prices))
    assert out.returncode == 1 and "output_per_mtok" in out.stderr and "Traceback" not in out.stderr


# -- a running server ------------------------------------------------------------------------------


def _ingest(server: LLMLensServer, events: list[dict[str, Any]], project: str) -> None:
    doc = server.ingest(events, headers={"X-LLMLens-Project": project})
    assert doc["accepted"] == len(events), doc


def _sql(server: LLMLensServer, project: str, query: str) -> list[dict[str, Any]]:
    return server.sql(query, headers={"X-LLMLens-Project": project})


def _wait_rows(server: LLMLensServer, project: str, query: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while True:
        rows = _sql(server, project, query)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


@pytest.fixture
def loaded_server(tmp_path: Path) -> Any:
    with LLMLensServer(tmp_path / "data") as srv:
        _ingest(srv, SHOP_EVENTS, "default")
        _ingest(srv, OTHER_EVENTS, "other")
        yield srv


def test_reprice_through_a_running_server_with_a_price_file(loaded_server: LLMLensServer, tmp_path: Path) -> None:
    srv = loaded_server
    query = f"SELECT {COLUMNS} FROM llm_logs"
    before = rows_by_message(_wait_rows(srv, "default", query, len(SHOP_EVENTS)))
    other_before = _wait_rows(srv, "other", query, len(OTHER_EVENTS))
    prices = tmp_path / "prices.yaml"
    prices.write_text(YAML_PRICES)

    out = llmlens("reprice", "--url", srv.url, "--since", "1d", "--price-file", str(prices))

    assert out.returncode == 0, out.stderr
    assert repriced_count(out.stdout) == 3
    assert "in project default" in out.stdout
    after = rows_by_message(_sql(srv, "default", query))
    check_repriced(before, after)
    assert _sql(srv, "other", query) == other_before  # the caller's project only
    # The dashboards' totals (read from rollups) follow the stored costs.
    with srv.client() as c:
        cost = c.get("/api/v1/cost", params={"range": "24h"}).json()["cost"]
    recent = [r for r in after.values() if r["message_id"] != "old-llama"]
    assert cost["total_usd"] == pytest.approx(sum(r["cost_usd"] for r in recent), rel=1e-9)
    # A file sent with the request prices this reprice only: new calls keep the server's prices.
    _ingest(
        srv, [llm_event(f"new-{uuid.uuid4().hex[:6]}", model="my-llama", prompt=10, completion=5, age_s=1)], "default"
    )
    new = _wait_rows(srv, "default", f"SELECT {COLUMNS} FROM llm_logs WHERE message_id LIKE 'new-%'", 1)
    assert new[0]["cost_source"] == "unpriced"
    assert "new calls are still priced by the server's own price file" in out.stderr


def test_reprice_rereads_the_servers_own_price_file(tmp_path: Path) -> None:
    """The Cost page's advice: add the model to the server's price file, run `llmlens reprice`."""
    prices = tmp_path / "prices.toml"
    prices.write_text('[[models]]\nmatch = "someone-else"\ninput_per_mtok = 1\noutput_per_mtok = 2\n')
    with LLMLensServer(tmp_path / "data", args=["--price-file", str(prices)]) as srv:
        _ingest(srv, SHOP_EVENTS[:1], "default")
        _wait_rows(srv, "default", "SELECT 1 FROM llm_logs", 1)
        prices.write_text(TOML_PRICES)  # the operator edits the server's file

        out = llmlens("reprice", "--url", srv.url)

        assert out.returncode == 0, out.stderr
        assert repriced_count(out.stdout) == 1
        row = _sql(srv, "default", f"SELECT {COLUMNS} FROM llm_logs")[0]
        assert row["cost_usd"] == expected_cost(1_234, 567) and row["cost_source"] == "custom"
        # ... and new calls are priced with it from now on.
        _ingest(srv, [llm_event("after", model="my-llama", prompt=100, completion=10, age_s=1)], "default")
        after = _wait_rows(srv, "default", f"SELECT {COLUMNS} FROM llm_logs WHERE message_id = 'after'", 1)
        assert after[0]["cost_usd"] == expected_cost(100, 10)


def test_reprice_api_errors_name_the_field(loaded_server: LLMLensServer) -> None:
    with httpx.Client(base_url=loaded_server.url, timeout=30) as c:
        r = c.post("/api/v1/admin/reprice", json={"since": "yesterday"})
        assert r.status_code == 400 and r.json()["error"].startswith("since must be")
        r = c.post("/api/v1/admin/reprice", json={"price_file": "/etc/passwd"})
        assert r.status_code == 400 and "price_file must be" in r.json()["error"]
        bad = {"name": "prices.toml", "content": '[[models]]\nmatch = "x"\n'}
        r = c.post("/api/v1/admin/reprice", json={"price_file": bad})
        assert r.status_code == 422 and "input_per_mtok" in r.json()["error"]
        r = c.post("/api/v1/admin/reprice", json={"price_file": {"name": "prices.json", "content": "{}"}})
        assert r.status_code == 422 and "unsupported price file type" in r.json()["error"]


def test_a_project_admin_reprices_only_its_project(tmp_path: Path) -> None:
    data = tmp_path / "data"
    prices = tmp_path / "prices.toml"
    prices.write_text(TOML_PRICES)
    with LLMLensServer(data, args=["--auth", "on"]) as srv:
        keys = {(p, r): create_key(data, p, r) for p in ("alpha", "beta") for r in ("admin", "read")}
        for project in ("alpha", "beta"):
            with srv.client(headers=bearer(keys[(project, "admin")])) as c:
                r = c.post("/api/v1/ingest", json=[SHOP_EVENTS[0]])
                assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
        query = f"SELECT {COLUMNS} FROM llm_logs"
        beta_before = srv.sql(query, headers=bearer(keys[("beta", "read")]))
        assert beta_before[0]["cost_source"] == "unpriced"

        refused = llmlens(
            "reprice", "--url", srv.url, "--api-key", keys[("alpha", "read")], "--price-file", str(prices)
        )
        assert refused.returncode == 1 and "403" in refused.stderr and "manage the project" in refused.stderr
        out = llmlens("reprice", "--url", srv.url, "--api-key", keys[("alpha", "admin")], "--price-file", str(prices))

        assert out.returncode == 0, out.stderr
        assert repriced_count(out.stdout) == 1 and "in project alpha" in out.stdout
        alpha = srv.sql(query, headers=bearer(keys[("alpha", "read")]))
        assert alpha[0]["cost_usd"] == expected_cost(1_234, 567)
        assert srv.sql(query, headers=bearer(keys[("beta", "read")])) == beta_before
        other = llmlens(
            "reprice", "--url", srv.url, "--api-key", keys[("alpha", "admin")], "--project", "beta",
            "--price-file", str(prices),
        )  # fmt: skip
        assert other.returncode == 1 and "403" in other.stderr
        assert srv.sql(query, headers=bearer(keys[("beta", "read")])) == beta_before
