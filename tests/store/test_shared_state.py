"""Two llmlens servers with auth on, one ClickHouse: projects, keys, users, sessions, budgets, gateway cache
switches and alert rules made through one server apply on the other (within 5 s where the other may have
read them before), and a project's key sees nothing of another project on either server."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.proxy._support import free_port
from tests.security._support import login
from tests.store._shared_state import PROPAGATION_S, api, cli_key, cli_user, wait_until
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer

pytestmark = pytest.mark.clickhouse

PASSWORD = "a long enough password"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "How do I reset my password?"}]}
NOTHING_ALLOWED = {"tiers": {"free": 0.0}, "default_tier": "free"}
# Each concern in its own project, so that one test's settings do not change what another sees.
PROJECTS = ("shop", "gate", "ops", "other")


@dataclass
class Pair:
    a: LLMLensServer
    b: LLMLensServer
    store: str
    cli_data: Path
    admin: dict[str, str]  # project -> admin key, made with the CLI against the store
    upstream: FakeProvider

    def gateway_call(self, srv: LLMLensServer, key: str, **headers: str) -> httpx.Response:
        sent = {"Authorization": "Bearer sk-provider", "X-LLMLens-Api-Key": key, **headers}
        return httpx.post(srv.url + "/proxy/openai/v1/chat/completions", json=CHAT, headers=sent, timeout=30)


@pytest.fixture(scope="module")
def pair(clickhouse_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("shared-state")
    store = clickhouse_url.rsplit("/", 1)[0] + "/shared_state"
    cli_data = tmp / "cli"  # the CLI's own data folder: nothing of the shared state may land there
    admin = {project: cli_key(store, project, "admin", data=cli_data) for project in PROJECTS}
    port = free_port()
    config = tmp / "llmlens.toml"
    config.write_text("alert_interval_s = 3600.0\n")  # evaluations happen when a test asks for them
    args = [
        "--store",
        store,
        "--auth",
        "on",
        "--config",
        str(config),
        "--upstream",
        f"openai=http://127.0.0.1:{port}/v1",
    ]
    with ExitStack() as stack:
        upstream = stack.enter_context(FakeProvider(port=port))
        a = stack.enter_context(LLMLensServer(tmp / "a", args=args))
        b = stack.enter_context(LLMLensServer(tmp / "b", args=args))
        yield Pair(a, b, store, cli_data, admin, upstream)
    # Nothing of the shared state was written to a server's data folder or the CLI's.
    for folder in (tmp / "a", tmp / "b", cli_data):
        assert not list(folder.glob("*.sqlite3")) and not list(folder.glob("*.json")), sorted(folder.iterdir())


def _whoami(srv: LLMLensServer, key: str) -> int:
    return httpx.get(srv.url + "/api/v1/whoami", headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code


def test_a_key_made_through_one_server_works_on_the_other_until_revoked_there(pair: Pair) -> None:
    with api(pair.a.url, pair.admin["shop"]) as on_a:
        made = on_a.post("/api/v1/admin/keys", json={"role": "read", "name": "dashboard"})
        assert made.status_code == 201, made.text
        key, key_id = made.json()["key"], made.json()["id"]
        assert _whoami(pair.b, key) == 200  # B knows the key, and now holds it in its cache
        with api(pair.b.url, pair.admin["shop"]) as on_b:
            assert key_id in [k["id"] for k in on_b.get("/api/v1/admin/keys").json()["keys"]]
        revoked = on_a.delete(f"/api/v1/admin/keys/{key_id}")
        assert revoked.status_code == 200, revoked.text
    since = time.monotonic()
    assert _whoami(pair.a, key) == 401  # at once on the server that revoked it
    status = wait_until(lambda: _whoami(pair.b, key), lambda s: s == 401, within_s=PROPAGATION_S, since=since)
    assert status == 401, f"the revoked key still answered {status} on the other server {PROPAGATION_S} s later"


def _csrf_token(browser: httpx.Client) -> str:
    page = browser.get("/")
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found is not None, f"no CSRF token on the page: {page.status_code} {page.text[:200]}"
    return found.group(1)


def test_a_user_made_with_the_cli_logs_in_on_one_server_and_the_session_works_on_the_other(pair: Pair) -> None:
    cli_user(pair.store, "carol", PASSWORD, "shop", "member", data=pair.cli_data)
    with httpx.Client(base_url=pair.a.url, timeout=30) as on_a:
        assert login(on_a, "carol", PASSWORD).status_code == 303
        session = {"Cookie": f"llmlens_session={on_a.cookies['llmlens_session']}"}
    with httpx.Client(base_url=pair.a.url, headers=session, timeout=30) as on_a:
        assert on_a.get("/api/v1/whoami").status_code == 200  # A now holds the session in its cache
    # The session cookie, sent to B (as a load balancer in front of both would).
    with httpx.Client(base_url=pair.b.url, headers=session, timeout=30) as on_b:
        who = on_b.get("/api/v1/whoami")
        assert who.status_code == 200 and (who.json()["name"], who.json()["project"]) == ("carol", "shop")
        # A change through B with the session's CSRF token (read from one of B's pages) is accepted.
        token = _csrf_token(on_b)
        switched = on_b.put("/api/v1/gateway/cache/features/carols", headers={"X-CSRF-Token": token})
        assert switched.status_code == 200, switched.text
        # Logging out through B ends the session on A too.
        assert on_b.post("/logout", data={"csrf_token": token}).status_code == 303
    since = time.monotonic()
    with httpx.Client(base_url=pair.a.url, headers=session, timeout=30) as on_a:
        status = wait_until(
            lambda: on_a.get("/api/v1/whoami").status_code, lambda s: s == 401, within_s=PROPAGATION_S, since=since
        )
    assert status == 401, f"the ended session still answered {status} on the other server"


def test_budgets_set_through_one_server_are_enforced_by_the_others_gateway(pair: Pair) -> None:
    ingest = cli_key(pair.store, "gate", "ingest", data=pair.cli_data)
    user = {"X-LLMLens-User-Id": "user-1"}
    assert pair.gateway_call(pair.b, ingest, **user).status_code == 200  # no budget yet: served
    with api(pair.a.url, pair.admin["gate"]) as on_a:
        put = on_a.put("/api/v1/budgets", json=NOTHING_ALLOWED)
        assert put.status_code == 200 and put.json()["source"] == "project", put.text
    served = len(pair.upstream.requests)
    since = time.monotonic()
    refused = wait_until(
        lambda: pair.gateway_call(pair.b, ingest, **user),
        lambda r: r.status_code == 429,
        within_s=PROPAGATION_S,
        since=since,
    )
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "budget_exceeded"
    with api(pair.b.url, pair.admin["gate"]) as on_b:
        doc = on_b.get("/api/v1/budgets").json()
        assert doc["source"] == "project" and doc["tiers"] == {"free": 0.0}
        # Back to the default through B: A's gateway serves the user again.
        assert on_b.delete("/api/v1/budgets").json()["source"] == "default"
    since = time.monotonic()
    again = wait_until(
        lambda: pair.gateway_call(pair.a, ingest, **user),
        lambda r: r.status_code == 200,
        within_s=PROPAGATION_S,
        since=since,
    )
    assert again.status_code == 200, again.text
    assert len(pair.upstream.requests) > served


def test_a_gateway_cache_switch_made_on_one_server_applies_on_the_other(pair: Pair) -> None:
    ingest = cli_key(pair.store, "gate", "ingest", data=pair.cli_data)
    feature = {"X-LLMLens-Feature": "faq"}
    assert pair.gateway_call(pair.b, ingest, **feature).headers.get("x-llmlens-cache") is None  # off
    with api(pair.a.url, pair.admin["gate"]) as on_a:
        assert on_a.put("/api/v1/gateway/cache/features/faq").status_code == 200
    with api(pair.b.url, pair.admin["gate"]) as on_b:
        since = time.monotonic()
        listed = wait_until(
            lambda: on_b.get("/api/v1/gateway/cache/features").json()["features"],
            lambda features: features == ["faq"],
            within_s=PROPAGATION_S,
            since=since,
        )
        assert listed == ["faq"]
    answers = [pair.gateway_call(pair.b, ingest, **feature) for _ in range(2)]
    assert [r.status_code for r in answers] == [200, 200]
    assert [r.headers.get("x-llmlens-cache") for r in answers] == ["MISS", "HIT"]


def _budget_evaluation(srv: LLMLensServer, key: str) -> dict[str, Any] | None:
    with api(srv.url, key) as c:
        doc = c.post("/api/v1/alerts/evaluate", params={"dry_run": "1"}).json()
    found = [e for e in doc["evaluations"] if e["rule"] == "over budget"]
    return found[0] if found else None


def test_an_alert_rule_made_on_one_server_is_listed_and_evaluated_on_the_other(pair: Pair) -> None:
    heavy = {"type": "llm", "model": "gpt-4o", "user_id": "user-heavy", "cost_usd": 2.0, "prompt": "p"}
    with api(pair.a.url, pair.admin["ops"]) as on_a:
        assert on_a.post("/api/v1/ingest", json=[heavy]).json()["accepted"] == 1
        assert on_a.put("/api/v1/budgets", json={"tiers": {"free": 1.0}, "default_tier": "free"}).status_code == 200
        made = on_a.post("/api/v1/alerts/rules", json={"name": "over budget", "type": "budget"})
        assert made.status_code == 201, made.text
    with api(pair.b.url, pair.admin["ops"]) as on_b:
        rules = {r["name"]: r for r in on_b.get("/api/v1/alerts/rules").json()["rules"]}
        assert rules["over budget"]["type"] == "budget"
    # B evaluates the rule against the budget set through A: user-heavy spent 2 of its 1 USD.
    since = time.monotonic()
    evaluation = wait_until(
        lambda: _budget_evaluation(pair.b, pair.admin["ops"]),
        lambda e: e is not None and e["firing"],
        within_s=PROPAGATION_S,
        since=since,
    )
    assert evaluation is not None and evaluation["firing"], evaluation
    assert [u["name"] for u in evaluation["attribution"]["over_budget"]] == ["user-heavy"]


def test_a_projects_key_sees_nothing_of_another_project_on_either_server(pair: Pair) -> None:
    with api(pair.a.url, pair.admin["shop"]) as shop:
        assert shop.post("/api/v1/ingest", json=[{"type": "llm", "model": "gpt-4o", "prompt": "p"}]).status_code == 200
        assert shop.put("/api/v1/budgets", json=NOTHING_ALLOWED).status_code == 200
        assert shop.put("/api/v1/gateway/cache/features/shop-only").status_code == 200
        assert shop.post("/api/v1/alerts/rules", json={"name": "shop errors", "type": "error_rate"}).status_code == 201
        shop_key_ids = [k["id"] for k in shop.get("/api/v1/admin/keys").json()["keys"]]
    for srv in (pair.a, pair.b):
        with api(srv.url, pair.admin["other"]) as other:
            keys = [k["id"] for k in other.get("/api/v1/admin/keys").json()["keys"]]
            assert keys and not set(keys) & set(shop_key_ids)
            budgets = other.get("/api/v1/budgets").json()
            assert budgets["project"] == "other" and budgets["source"] == "default"
            assert other.get("/api/v1/gateway/cache/features").json()["features"] == []
            rules = [r["name"] for r in other.get("/api/v1/alerts/rules").json()["rules"]]
            assert "shop errors" not in rules and "over budget" not in rules
            count = other.post("/api/v1/sql", json={"query": "SELECT COUNT(*) AS n FROM llm_logs"}).json()
            assert count["rows"] == [[0]]
            assert other.delete(f"/api/v1/admin/keys/{shop_key_ids[0]}").status_code == 404
            assert other.get("/api/v1/budgets", headers={"X-LLMLens-Project": "shop"}).status_code == 403
