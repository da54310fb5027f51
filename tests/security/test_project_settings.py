"""Settings that belong to a project stay in it: budgets, tiers, alert rules and /metrics, through a real
server with auth on and two projects. A project admin changes only its own project; what applies to every
project (budget defaults, server-wide alert rules, the server's own metrics) is a server admin's. And the
files the server and the SDK write are readable by their owner only."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.proxy._support import free_port
from tests.security._support import bearer, create_key, llmlens_cli, login
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer

import llmlens

PROVIDER_KEY = "sk-provider-key-for-budget-tests"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
# A zero monthly limit refuses every call that names a user: no spend has to be built up first.
NOTHING_ALLOWED = {"tiers": {"free": 0.0}, "default_tier": "free"}
BETA_POLICY = {"tiers": {"free": 2.0, "betavip": 777.25}, "users": {"beta-user-vip": "betavip"}}


@dataclass
class World:
    srv: LLMLensServer
    data: Path
    keys: dict[tuple[str, str], str]
    upstream_port: int

    def client(self, project: str, role: str) -> httpx.Client:
        return httpx.Client(base_url=self.srv.url, headers=bearer(self.keys[(project, role)]), timeout=30)

    def server_admin(self) -> httpx.Client:
        """A key made by `llmlens keys create --role server-admin` (its project is gamma)."""
        if ("gamma", "server-admin") not in self.keys:
            self.keys[("gamma", "server-admin")] = create_key(self.data, "gamma", "server-admin")
        return self.client("gamma", "server-admin")

    def gateway_call(self, project: str, user: str, **headers: str) -> httpx.Response:
        key = self.keys[(project, "ingest")]
        sent = {"Authorization": f"Bearer {PROVIDER_KEY}", "X-LLMLens-Api-Key": key, "X-LLMLens-User-Id": user}
        url = f"{self.srv.url}/proxy/openai/v1/chat/completions"
        return httpx.post(url, json=CHAT, headers={**sent, **headers}, timeout=30)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data: Path = tmp_path_factory.mktemp("project-settings")
    port = free_port()
    args = ["--auth", "on", "--upstream", f"openai=http://127.0.0.1:{port}/v1"]
    roles = {"alpha": ("admin", "read", "ingest"), "beta": ("admin", "read", "ingest"), "gamma": ("read", "ingest")}
    keys = {(p, r): create_key(data, p, r) for p, rs in roles.items() for r in rs}
    with LLMLensServer(data, args=args) as srv:
        yield World(srv, data, keys, port)


def test_a_project_reads_its_own_budgets_and_tiers_only(world: World) -> None:
    with world.client("beta", "admin") as beta:
        r = beta.put("/api/v1/budgets", json=BETA_POLICY)
        assert r.status_code == 200, r.text
    with world.client("alpha", "read") as alpha:
        r = alpha.get("/api/v1/budgets")
        assert r.status_code == 200, r.text
        assert "beta-user-vip" not in r.text and "betavip" not in r.text
        assert r.json()["project"] == "alpha"
        r = alpha.get("/api/v1/budgets", params={"project": "beta"})
        assert r.status_code == 403 and "beta-user-vip" not in r.text
        # The Cost page and its JSON twin show the caller's tiers only.
        for path in ("/cost", "/api/v1/cost"):
            page = alpha.get(path, params={"range": "30d"})
            assert page.status_code == 200, f"{path}: {page.status_code}"
            assert "beta-user-vip" not in page.text and "betavip" not in page.text
    with world.client("beta", "read") as beta:
        doc = beta.get("/api/v1/budgets").json()
        assert doc["users"] == {"beta-user-vip": "betavip"} and doc["project"] == "beta"
        assert doc["source"] == "project"


def test_a_project_admin_changes_only_its_own_budgets(world: World) -> None:
    with world.client("beta", "admin") as beta:
        assert beta.put("/api/v1/budgets", json=BETA_POLICY).status_code == 200
    with world.client("alpha", "admin") as alpha:
        r = alpha.put("/api/v1/budgets", json=NOTHING_ALLOWED)
        assert r.status_code == 200, r.text
        assert alpha.get("/api/v1/budgets").json()["tiers"] == {"free": 0.0}
    with FakeProvider(port=world.upstream_port) as upstream:
        assert world.gateway_call("beta", "u-beta-1").status_code == 200
        refused = world.gateway_call("alpha", "u-alpha-1")
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "budget_exceeded"
        assert len(upstream.requests) == 1
    with world.client("alpha", "admin") as alpha:
        # A body naming another project is not a way around the confinement.
        r = alpha.put("/api/v1/budgets", json={**NOTHING_ALLOWED, "project": "beta"})
        assert r.status_code == 403, r.text
    with world.client("beta", "read") as beta:
        assert beta.get("/api/v1/budgets").json()["tiers"] == {"free": 2.0, "betavip": 777.25}
        status = beta.get("/api/v1/budgets/status", params={"user_id": "u-beta-1"}).json()
        assert status["project"] == "beta" and status["user"]["blocked"] is False
    with world.client("alpha", "read") as alpha:
        status = alpha.get("/api/v1/budgets/status", params={"user_id": "u-alpha-1"}).json()
        assert status["project"] == "alpha" and status["user"]["blocked"] is True
    # Saved, per project: the policies survive a restart.
    world.srv.stop()
    world.srv.start()
    with world.client("alpha", "read") as alpha, world.client("beta", "read") as beta:
        assert alpha.get("/api/v1/budgets").json()["tiers"] == {"free": 0.0}
        assert beta.get("/api/v1/budgets").json()["users"] == {"beta-user-vip": "betavip"}


def _rules(client: httpx.Client) -> dict[str, dict[str, object]]:
    r = client.get("/api/v1/alerts/rules")
    assert r.status_code == 200, r.text
    return {rule["name"]: rule for rule in r.json()["rules"]}


def _evaluated(client: httpx.Client) -> dict[str, dict[str, object]]:
    r = client.post("/api/v1/alerts/evaluate", params={"dry_run": "1"})
    assert r.status_code == 200, r.text
    return {e["rule"]: e for e in r.json()["evaluations"]}


def test_a_project_cannot_delete_or_replace_another_projects_alert_rule(world: World) -> None:
    rule = {"name": "beta watch", "type": "error_rate", "max_error_rate": 0.25, "feature": "checkout"}
    with world.client("beta", "admin") as beta:
        r = beta.post("/api/v1/alerts/rules", json=rule)
        assert r.status_code == 201, r.text
    with world.client("alpha", "admin") as alpha:
        assert "beta watch" not in _rules(alpha)
        r = alpha.delete("/api/v1/alerts/rules/beta watch")
        assert r.status_code == 404, r.text
        # A rule of the same name made by alpha is alpha's own; a body naming beta is refused.
        assert alpha.put("/api/v1/alerts/rules/beta watch", json={**rule, "project": "beta"}).status_code == 403
        r = alpha.put("/api/v1/alerts/rules/beta watch", json={**rule, "max_error_rate": 0.9})
        assert r.status_code == 200, r.text
        assert _rules(alpha)["beta watch"]["max_error_rate"] == 0.9
        # Server-wide rules: deleting one hides it in alpha only; the server-wide layer is not alpha's.
        assert alpha.delete("/api/v1/alerts/rules/error rate").status_code == 200
        assert "error rate" not in _rules(alpha)
        r = alpha.delete("/api/v1/alerts/rules/p95 latency", params={"scope": "server"})
        assert r.status_code == 403 and "server admin" in r.json()["error"]
    with world.client("beta", "admin") as beta:
        rules = _rules(beta)
        assert rules["beta watch"]["max_error_rate"] == 0.25 and rules["beta watch"]["source"] == "api"
        assert "error rate" in rules and "p95 latency" in rules
        evaluated = _evaluated(beta)
        assert evaluated["beta watch"]["threshold"] == 0.25 and evaluated["beta watch"]["project"] == "beta"
        assert "error rate" in evaluated


def _scrape(client: httpx.Client) -> str:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    return r.text


def _wait_for_text(client: httpx.Client, needle: str) -> str:
    deadline = time.monotonic() + 15
    text = _scrape(client)
    while needle not in text and time.monotonic() < deadline:
        time.sleep(0.1)
        text = _scrape(client)
    assert needle in text, f"{needle!r} never showed up in /metrics"
    return text


def test_metrics_of_a_project_key_show_no_other_projects_activity(world: World) -> None:
    for project in ("alpha", "beta"):
        event = {"type": "llm", "model": f"{project}-model-m1", "prompt": "p", "response": "r", "cost_usd": 0.5}
        with world.client(project, "ingest") as c:
            assert c.post("/api/v1/ingest", json=[event]).status_code == 200
    with world.client("alpha", "read") as alpha:
        text = _wait_for_text(alpha, 'model="alpha-model-m1"')
        assert 'project="beta"' not in text and "beta-model-m1" not in text
        # Server-wide totals count every project's events: not for a project's key.
        assert "llmlens_ingested_events_total" not in text and "llmlens_writer_commits_total" not in text
        info = alpha.get("/api/v1/gateway").json()
        assert "recorded" not in info and "cache" not in info
    with world.client("beta", "read") as beta:
        assert "beta-model-m1" in _wait_for_text(beta, 'model="beta-model-m1"')


def test_a_server_admin_changes_the_server_wide_defaults(world: World) -> None:
    defaults = {"features": {"shared-feature": 0.0}}
    with world.client("beta", "admin") as beta:
        assert beta.put("/api/v1/budgets", json=BETA_POLICY).status_code == 200  # beta keeps a policy of its own
    with world.client("alpha", "admin") as alpha:
        assert alpha.put("/api/v1/budgets", params={"scope": "server"}, json=defaults).status_code == 403
        assert alpha.get("/api/v1/budgets", params={"scope": "server"}).status_code == 403
        whoami = alpha.get("/api/v1/whoami").json()
        assert whoami["server_admin"] is False
    with world.server_admin() as admin:
        assert admin.get("/api/v1/whoami").json()["server_admin"] is True
        r = admin.put("/api/v1/budgets", params={"scope": "server"}, json=defaults)
        assert r.status_code == 200, r.text
        assert r.json()["source"] == "api" and r.json()["features"] == defaults["features"]
        server_rule = {"name": "server wide spend", "type": "cost_spike", "factor": 5.0}
        r = admin.post("/api/v1/alerts/rules", params={"scope": "server"}, json=server_rule)
        assert r.status_code == 201, r.text
        # The server's own health and every project's series.
        with world.client("beta", "ingest") as beta:
            event = {"type": "llm", "model": "beta-model-m2", "prompt": "p", "response": "r"}
            assert beta.post("/api/v1/ingest", json=[event]).status_code == 200
        text = _wait_for_text(admin, 'model="beta-model-m2"')
        assert "llmlens_ingested_events_total" in text and 'project="beta"' in text
        assert "recorded" in admin.get("/api/v1/gateway").json()
    # Gamma has no policy of its own: the new default applies to it; alpha and beta keep their own.
    with world.client("gamma", "read") as gamma:
        doc = gamma.get("/api/v1/budgets").json()
        assert doc["source"] == "default" and doc["features"] == {"shared-feature": 0.0}
    with FakeProvider(port=world.upstream_port):
        refused = world.gateway_call("gamma", "u-gamma-1", **{"X-LLMLens-Feature": "shared-feature"})
        assert refused.status_code == 429, refused.text
        assert world.gateway_call("beta", "u-beta-2", **{"X-LLMLens-Feature": "shared-feature"}).status_code == 200
    with world.client("beta", "admin") as beta:
        assert _rules(beta)["server wide spend"]["source"] == "server"
        # Only the CLI makes a server admin: not a project admin through the keys API.
        r = beta.post("/api/v1/admin/keys", json={"role": "server-admin"})
        assert r.status_code == 422 and "llm_" not in r.text, r.text


def test_a_server_admin_login_is_made_and_taken_back_from_the_cli(world: World) -> None:
    password = "server admin password"
    made = llmlens_cli(
        "users", "create", "root-user", "--server-admin", "--project", "gamma", "--role", "viewer",
        "--password-stdin", "--data", str(world.data), stdin=password + "\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "root-user\tgamma=viewer\tserver-admin" in llmlens_cli("users", "list", "--data", str(world.data)).stdout
    with world.client("beta", "ingest") as beta:
        event = {"type": "llm", "model": "beta-model-m3", "prompt": "p", "response": "r"}
        assert beta.post("/api/v1/ingest", json=[event]).status_code == 200
    with httpx.Client(base_url=world.srv.url, timeout=30) as c:
        assert login(c, "root-user", password).status_code == 303
        assert c.get("/api/v1/whoami").json()["server_admin"] is True
        assert c.get("/api/v1/budgets", params={"scope": "server"}).status_code == 200
        _wait_for_text(c, 'model="beta-model-m3"')
        taken = llmlens_cli("users", "server-admin", "root-user", "--revoke", "--data", str(world.data))
        assert taken.returncode == 0, taken.stderr
        assert c.get("/api/v1/whoami").json()["server_admin"] is False
        assert c.get("/api/v1/budgets", params={"scope": "server"}).status_code == 403
        text = _scrape(c)
        assert 'project="beta"' not in text and "llmlens_ingested_events_total" not in text


def test_an_older_auth_file_gets_server_admins(tmp_path: Path) -> None:
    import sqlite3

    from llmlens.auth import hash_password

    data = tmp_path / "data"
    data.mkdir()
    old = sqlite3.connect(data / "auth.sqlite3")
    old.execute("CREATE TABLE users (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_at REAL NOT NULL)")
    old.execute("INSERT INTO users VALUES ('ops', ?, 0)", (hash_password("long enough password"),))
    old.commit()
    old.close()
    assert llmlens_cli("users", "list", "--data", str(data)).stdout.strip() == "ops"
    done = llmlens_cli("users", "server-admin", "ops", "--data", str(data))
    assert done.returncode == 0, done.stderr
    assert "ops\t\tserver-admin" in llmlens_cli("users", "list", "--data", str(data)).stdout


def test_budgets_saved_by_an_older_version_become_the_default(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "budgets.json").write_text('{"tiers": {"free": 3.0}, "default_tier": "free"}')
    with LLMLensServer(data) as srv, srv.client() as c:
        doc = c.get("/api/v1/budgets", headers={"X-LLMLens-Project": "any"}).json()
        assert doc["tiers"] == {"free": 3.0} and doc["source"] == "default" and doc["project"] == "any"
        assert c.get("/api/v1/budgets", params={"scope": "server"}).json()["source"] == "api"


# -- file modes ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    """A usual umask for the test and the processes it starts, so that only llmlens can make files private."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _loose(root: Path, skip: set[str]) -> list[str]:
    """Files under `root` that others may read, and folders others may enter."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.name in skip or path.name.startswith("ready-"):
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            found.append(f"{path.relative_to(root)} {oct(mode)}")
    return found


def test_the_servers_data_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    exports = data / "exports"
    config = tmp_path / "llmlens.toml"
    config.write_text(f'[[exports]]\nfolder = "{exports}"\nevery = "1m"\ndelay = "0s"\nformat = "csv"\n')
    with _umask(0o022):
        key = create_key(data, "alpha", "admin")
        with LLMLensServer(data, args=["--auth", "on", "--config", str(config)]) as srv:
            with httpx.Client(base_url=srv.url, headers=bearer(key), timeout=30) as c:
                event = {"type": "llm", "model": "gpt-4o", "prompt": "private prompt", "response": "r"}
                assert c.post("/api/v1/ingest", json=[event]).status_code == 200
                assert c.put("/api/v1/budgets", json={"tiers": {"free": 1.0}}).status_code == 200
                rule = {"name": "mine", "type": "error_rate"}
                assert c.post("/api/v1/alerts/rules", json=rule).status_code == 201
            deadline = time.monotonic() + 30
            while not list(exports.rglob("*.csv")) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert list(exports.rglob("*.csv")), f"no scheduled export was written:\n{srv.log()}"
            out = tmp_path / "out" / "llm.csv"
            out.parent.mkdir()
            done = llmlens_cli("export", "--url", srv.url, "--api-key", key, "--format", "csv", "--out", str(out))
            assert done.returncode == 0, done.stderr
            names = {p.name for p in data.iterdir()}
            assert {"auth.sqlite3", "llmlens.duckdb", "budgets.json"} <= names, names
            assert _loose(data, {"server.log"}) == []  # while it runs: WAL files too
            assert _loose(out.parent, set()) == []
        assert _loose(data, {"server.log"}) == []
        assert stat.S_IMODE(exports.stat().st_mode) == 0o700  # a folder the server made


def test_the_sdk_spool_is_private(tmp_path: Path) -> None:
    spool = tmp_path / "app" / "spool"
    with _umask(0o022):
        try:
            assert llmlens.init(url=f"http://127.0.0.1:{free_port()}", spool_dir=str(spool), schedule_delay_s=0.01)
            for i in range(20):
                llmlens.log_tool_call(f"secret-tool-{i}", {"q": "secret"}, None, 1.0, True)
        finally:
            llmlens.shutdown(timeout=1)  # nothing answers: what is left goes to the spool
    assert list(spool.glob("*.ndjson.gz")), "the SDK spooled nothing"
    assert _loose(tmp_path / "app", set()) == []
    assert stat.S_IMODE((tmp_path / "app").stat().st_mode) == 0o700
