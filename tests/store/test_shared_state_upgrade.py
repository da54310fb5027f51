"""Upgrading a single server to the shared state: a server whose data folder holds keys, users, budgets and
gateway cache switches starts on a ClickHouse store and keeps them all, and a second server on that store
has them too. The import runs once: what is changed in the shared state afterwards is not undone by a
restart, and the old files are kept."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from tests.security._support import llmlens_cli, login
from tests.store._shared_state import PROPAGATION_S, api, cli_key, cli_user, wait_until
from tests.support.llmlens_server import LLMLensServer

from llmlens.state import IMPORT_MARKER

pytestmark = pytest.mark.clickhouse

PASSWORD = "the old server's password"
POLICY = {"tiers": {"free": 0.5, "pro": 20.0}, "default_tier": "free"}


def _whoami(url: str, key: str) -> int:
    return httpx.get(url + "/api/v1/whoami", headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code


def _keys_in_file(data: Path) -> list[tuple[str, float | None]]:
    with closing(sqlite3.connect(data / "auth.sqlite3")) as con:
        return list(con.execute("SELECT id, revoked_at FROM api_keys ORDER BY id").fetchall())


def _single_server_state(data: Path) -> tuple[str, str, str]:
    """A server on its own data folder, as before: (admin key, ingest key made through its API, its id)."""
    admin = cli_key(data, "legacy", "admin", data=data)
    cli_user(data, "dave", PASSWORD, "legacy", "admin", data=data)
    with LLMLensServer(data, args=["--auth", "on"]) as old, api(old.url, admin) as c:
        made = c.post("/api/v1/admin/keys", json={"role": "ingest", "name": "app"}).json()
        assert c.put("/api/v1/budgets", json=POLICY).status_code == 200
        assert c.put("/api/v1/gateway/cache/features/faq").status_code == 200
        assert c.post("/api/v1/alerts/rules", json={"name": "legacy errors", "type": "error_rate"}).status_code == 201
        assert c.post("/api/v1/ingest", json=[{"type": "llm", "model": "gpt-4o", "prompt": "old"}]).status_code == 200
    assert {"auth.sqlite3", "budgets.json", "cached_features.json"} <= {p.name for p in data.iterdir()}
    return admin, made["key"], made["id"]


def _keeps_the_old_state(srv: LLMLensServer, admin: str, ingest: str) -> None:
    assert _whoami(srv.url, admin) == 200
    with api(srv.url, ingest) as app:
        assert app.post("/api/v1/ingest", json=[{"type": "llm", "model": "gpt-4o", "prompt": "p"}]).status_code == 200
    with api(srv.url, admin) as c:
        budgets = c.get("/api/v1/budgets").json()
        assert (budgets["source"], budgets["tiers"]) == ("project", POLICY["tiers"])
        assert c.get("/api/v1/gateway/cache/features").json()["features"] == ["faq"]
    with httpx.Client(base_url=srv.url, timeout=30) as browser:
        assert login(browser, "dave", PASSWORD).status_code == 303
        assert browser.get("/api/v1/whoami").json()["name"] == "dave"


def test_a_server_moved_to_the_shared_state_keeps_its_keys_users_and_settings(
    clickhouse_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    admin, ingest, ingest_id = _single_server_state(data)
    old_keys = _keys_in_file(data)
    store = clickhouse_url.rsplit("/", 1)[0] + "/upgraded"
    args = ["--auth", "on", "--store", store]
    with LLMLensServer(data, args=args) as moved, LLMLensServer(tmp_path / "fresh", args=args) as fresh:
        _keeps_the_old_state(moved, admin, ingest)
        _keeps_the_old_state(fresh, admin, ingest)  # a server that never had that data folder
        marker = json.loads((data / IMPORT_MARKER).read_text())
        assert list(marker) == [store.replace("default:@", "default@")]
        assert marker[next(iter(marker))]["counts"]["keys"] == 2
        # The CLI sees the same keys on the store.
        listed = llmlens_cli("keys", "list", "--store", store, "--data", str(tmp_path / "cli"))
        assert listed.returncode == 0 and ingest_id in listed.stdout, listed.stderr

        # Revoked on the fresh server; restarting the moved one must not bring the key back from its files.
        with api(fresh.url, admin) as c:
            assert c.delete(f"/api/v1/admin/keys/{ingest_id}").status_code == 200
        moved.stop()
        moved.start()
        since = time.monotonic()
        status = wait_until(lambda: _whoami(moved.url, ingest), lambda s: s == 401, within_s=PROPAGATION_S, since=since)
        assert status == 401
        assert _whoami(moved.url, admin) == 200
    assert _keys_in_file(data) == old_keys  # the old file is kept as it was: a way back


def test_migrate_moves_the_data_folders_state_and_alert_rules_with_the_data(
    clickhouse_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    admin, ingest, _ = _single_server_state(data)
    store = clickhouse_url.rsplit("/", 1)[0] + "/migrated"
    done = llmlens_cli("migrate", "--from", f"duckdb://{data / 'llmlens.duckdb'}", "--to", store)
    assert done.returncode == 0, done.stderr
    assert "migrated 1 alert rules made through the API" in done.stdout
    assert f"imported the state of {data} into" in done.stdout and "2 keys" in done.stdout, done.stdout
    # `llmlens serve` on that folder and store will not import it a second time.
    assert list(json.loads((data / IMPORT_MARKER).read_text())) == [store.replace("default:@", "default@")]

    with LLMLensServer(tmp_path / "fresh", args=["--auth", "on", "--store", store]) as srv:
        _keeps_the_old_state(srv, admin, ingest)
        with api(srv.url, admin) as c:
            assert "legacy errors" in [r["name"] for r in c.get("/api/v1/alerts/rules").json()["rules"]]
            rows = c.post("/api/v1/sql", json={"query": "SELECT prompt FROM llm_logs ORDER BY prompt"}).json()["rows"]
            assert rows == [["old"], ["p"]]  # the migrated call, and the one just sent
