"""While the ClickHouse a server stores into is down, ingest answers 503 with Retry-After and acknowledges
nothing, the API answers a 503 naming the store, and a page shows a banner instead of a 500; once
ClickHouse is back the same server stores what is sent again, once."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.clickhouse_server import ClickHouseServer
from tests.support.llmlens_server import LLMLensServer

pytestmark = [pytest.mark.clickhouse, pytest.mark.slow]

EVENTS = [
    {"model": "gpt-4o", "prompt": f"q{i}", "response": f"a{i}", "latency_ms": 120.0 + i, "message_id": f"down-m{i}"}
    for i in range(20)
]


def test_a_store_that_is_down_gives_503s_and_banners_and_loses_nothing(tmp_path: Path) -> None:
    with ClickHouseServer(root=tmp_path / "clickhouse") as ch:
        store = ch.database_url("down")
        named = store.replace("default:@", "default@")
        with LLMLensServer(tmp_path / "srv", args=["--store", store]) as srv, srv.client() as api:
            assert api.post("/api/v1/ingest", json=EVENTS[:10]).status_code == 200
            ch.stop()

            refused = api.post("/api/v1/ingest", json=EVENTS[10:])
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "5"
            assert refused.json()["error"].startswith(f"the store {named} cannot be reached")

            answer = api.get("/api/v1/latency")
            assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
            assert named in answer.json()["error"]
            page = api.get("/latency", headers={"Accept": "text/html"})
            assert page.status_code == 503 and page.headers["retry-after"] == "5"
            assert "text/html" in page.headers["content-type"]
            assert "the store does not answer" in page.text and named in page.text

            ch.start()  # same folder and ports: the server reconnects by itself
            again = api.post("/api/v1/ingest", json=EVENTS)  # all of it: the first half is stored already
            assert again.status_code == 200, again.text
            assert srv.sql("SELECT COUNT(*) AS n, COUNT(DISTINCT message_id) AS d FROM llm_logs") == [
                {"n": 20, "d": 20}
            ]
            assert api.get("/latency", headers={"Accept": "text/html"}).status_code == 200


def test_an_unreachable_store_at_start_is_one_line(tmp_path: Path) -> None:
    with ClickHouseServer() as ch:
        port = ch.tcp_port
    server = LLMLensServer(tmp_path / "srv", args=["--store", f"clickhouse://default@127.0.0.1:{port}/x"])
    with pytest.raises(RuntimeError, match="llmlens serve exited with 1") as failed:
        server.start()
    said = str(failed.value)
    assert f"cannot open the store: the store clickhouse://default@127.0.0.1:{port}/x cannot be reached" in said
    assert len(said.strip().splitlines()) == 2, said  # the harness's line, then the server's one line
