"""When the ClickHouse holding the shared state is down, a request whose key or session must be looked up
gets a 503 with Retry-After naming the store (never a 500), and the CLI says so in one line."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.security._support import llmlens_cli
from tests.store._shared_state import cli_key
from tests.support.clickhouse_server import ClickHouseServer
from tests.support.llmlens_server import LLMLensServer

pytestmark = pytest.mark.clickhouse


def test_a_lookup_while_the_shared_state_is_down_is_a_503(tmp_path: Path) -> None:
    with ClickHouseServer() as ch:
        store = ch.database_url("down")
        key = cli_key(store, "shop", "admin", data=tmp_path / "cli")
        with LLMLensServer(tmp_path / "srv", args=["--auth", "on", "--store", store]) as srv:
            headers = {"Authorization": f"Bearer {key}"}
            assert httpx.get(srv.url + "/api/v1/whoami", headers=headers, timeout=30).status_code == 200
            ch.stop()
            # Another key: not in the server's cache, so it must be looked up.
            other = {"Authorization": "Bearer llm_not-a-key-this-server-has-seen"}
            answer = httpx.get(srv.url + "/api/v1/whoami", headers=other, timeout=60)
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "5"
            assert "cannot be reached" in answer.json()["error"] and "clickhouse://default@" in answer.json()["error"]

    done = llmlens_cli("keys", "list", "--store", store, "--data", str(tmp_path / "cli"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    redacted = store.replace("default:@", "default@")
    assert len(lines) == 1 and lines[0].startswith(f"llmlens keys: the shared state in {redacted} cannot be reached")
