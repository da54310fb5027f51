"""Project isolation: project A's key can never read or write project B's data, through any endpoint,
the SQL console, exports, or the gateway. Every GET route of the app is swept, including routes
added by other subsystems, so a new route is covered without touching this test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.routing import Mount, Route
from tests.proxy._support import free_port
from tests.security._support import bearer, create_key
from tests.support.fake_provider import FakeProvider
from tests.support.llmlens_server import LLMLensServer

MARK = "BETASECRET"  # in every text field of project beta's data
BETA_TRACE = "b" * 32
BETA_SPAN = BETA_TRACE[:16]  # its LLM call
NOW = time.time()


def _events(project: str, marker: str, trace: str) -> list[dict[str, object]]:
    """Content carries `marker`; ids carry `<project>-id` (error messages may echo a requested id)."""
    ident = f"{project}-id"
    return [
        {
            "type": "llm",
            "project": project,
            "trace_id": trace,
            "span_id": trace[:16],
            "message_id": f"{ident}-msg",
            "timestamp": NOW - 60,
            "model": "gpt-4o",
            "prompt": f"{marker} prompt",
            "response": f"{marker} response",
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "latency_ms": 120,
            "user_id": f"{ident}-user",
            "session_id": f"{ident}-session",
            "feature": f"{ident}-feature",
            "template_id": f"{ident}-template",
            "template_version": "v1",
        },
        {
            "type": "tool",
            "project": project,
            "trace_id": trace,
            "span_id": trace[:15] + "1",
            "timestamp": NOW - 59,
            "tool_name": f"{marker}-tool",
            "args": {"q": marker},
            "result": marker,
            "session_id": f"{ident}-session",
        },
        {
            "type": "retrieval",
            "project": project,
            "trace_id": trace,
            "span_id": trace[:15] + "2",
            "timestamp": NOW - 58,
            "query": marker,
            "documents": [{"id": "d", "content": marker}],
        },
        {
            "type": "feedback",
            "project": project,
            "message_id": f"{ident}-msg",
            "feedback_type": "thumbs_down",
            "feedback_text": marker,
            "feedback_id": f"{ident}-fb",
        },
    ]


@dataclass
class World:
    srv: LLMLensServer
    keys: dict[tuple[str, str], str]
    upstream_port: int
    beta_run: str  # a replay run of project beta's LLM call
    beta_experiment: str  # an experiment of project beta (quality/)

    def client(self, project: str = "alpha", role: str = "admin") -> httpx.Client:
        return httpx.Client(base_url=self.srv.url, headers=bearer(self.keys[(project, role)]), timeout=30)

    def path(self, template: str) -> str:
        """A route's path with each parameter set to one of project beta's ids."""
        path = template
        for key, value in {**BETA_IDS, "run_id": self.beta_run, "experiment_id": self.beta_experiment}.items():
            path = path.replace("{" + key + ":path}", value).replace("{" + key + "}", value)
        assert "{" not in path, f"{template}: give its parameter one of beta's ids in BETA_IDS"
        return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data: Path = tmp_path_factory.mktemp("isolation")
    port = free_port()
    args = ["--auth", "on", "--upstream", f"openai=http://127.0.0.1:{port}/v1"]
    # The server's own provider key, for replaying beta's call against the stand-in provider.
    with LLMLensServer(data, args=args, env={"OPENAI_API_KEY": "sk-test"}) as srv:
        keys = {(p, r): create_key(data, p, r) for p in ("alpha", "beta") for r in ("admin", "ingest", "read")}
        for project, marker, trace in (("alpha", "ALPHAOK", "a" * 32), ("beta", MARK, BETA_TRACE)):
            r = httpx.post(
                f"{srv.url}/api/v1/ingest",
                json=_events(project, marker, trace),
                headers=bearer(keys[(project, "ingest")]),
            )
            assert r.status_code == 200 and r.json()["accepted"] == 4, r.text
        with FakeProvider(port=port):
            r = httpx.post(
                f"{srv.url}/api/v1/replay",
                json={"span_id": BETA_SPAN},
                headers=bearer(keys[("beta", "admin")]),
                timeout=30,
            )
            assert r.status_code == 200, r.text
            experiment = _beta_quality_objects(srv.url, keys[("beta", "admin")])
        yield World(srv, keys, port, r.json()["run_id"], experiment)


def _beta_quality_objects(url: str, key: str) -> str:
    """Project beta's evaluator rule, judge template, dataset (its item carries MARK), annotation queue and a
    finished experiment on the dataset; returns the experiment's id."""
    with httpx.Client(base_url=url, headers=bearer(key), timeout=60) as c:
        rule = {"name": BETA_IDS["rule"], "evaluator": "contains:x"}
        assert c.post("/api/v1/evaluators/rules", json=rule).status_code == 201
        text = {"text": f"Is {{{{answer}}}} right? {MARK}"}
        assert c.put(f"/api/v1/evaluators/templates/{BETA_IDS['template_name']}", json=text).status_code == 200
        item = {"input": f"{MARK} question", "expected_output": f"{MARK} answer"}
        assert c.post(f"/api/v1/datasets/{BETA_IDS['dataset']}/items", json=[item]).status_code == 200
        queue = {"name": BETA_IDS["queue"], "filter": {"range": "1d"}}
        assert c.post("/api/v1/annotation-queues", json=queue).status_code == 201
        started = c.post(
            "/api/v1/experiments", json={"dataset": BETA_IDS["dataset"], "variants": [{"model": "gpt-4o"}]}
        )
        assert started.status_code == 202, started.text
        ident: str = started.json()["id"]
        deadline = time.monotonic() + 60
        while not c.get(f"/api/v1/experiments/{ident}").json()["finished"]:
            assert time.monotonic() < deadline, "beta's experiment did not finish"
            time.sleep(0.1)
    return ident


# Path parameters are filled with project beta's ids, so a route that ignored the key's project would serve
# beta's object to alpha.
BETA_IDS = {
    "trace_id": BETA_TRACE,
    "session_id": "beta-id-session",
    "template_id": "beta-id-template",
    "span_id": BETA_SPAN,
    "message_id": "beta-id-msg",
    "user_id": "beta-id-user",
    "feature": "beta-id-feature",
    # quality/: an evaluator rule, a judge template, a dataset and an annotation queue of project beta
    "rule": "beta-id-rule",
    "template_name": "beta_id_template",
    "dataset": "beta-id-dataset",
    "queue": "beta-id-queue",
}
# The same for anyone whatever project is asked for: they hold no project data.
OPEN_ROUTES = {"/healthz", "/openapi.json", "/login"}
# Query parameters a route cannot answer without (it says 400), filled in the same way.
REQUIRED_QUERY: dict[str, dict[str, str]] = {
    "/api/v1/budgets/status": {"user_id": "beta-id-user", "feature": "beta-id-feature"},
    "/replay/panel": {"span_id": BETA_SPAN},
    "/sql.csv": {"q": "SELECT * FROM spans"},
}
# Routes whose answer shows beta's content to beta's own key: without it there, their sweep would prove nothing.
SHOWS_BETA_MARKER = {
    "/api/v1/export",
    "/api/v1/sessions",
    "/api/v1/sessions/{session_id:path}",
    "/api/v1/tools",
    "/api/v1/traces",
    "/api/v1/traces/{trace_id}",
    "/api/v1/replays/{run_id}",
    "/api/v1/datasets/{dataset}",
    "/api/v1/evaluators/templates/{template_name}",
    "/api/v1/experiments/{experiment_id}",
    "/datasets/{dataset}",
    "/experiments/{experiment_id}",
    "/metrics",
    "/replays/{run_id}",
    "/sessions",
    "/sessions/{session_id:path}",
    "/sql.csv",
    "/tools",
    "/traces",
    "/traces/{trace_id}",
}
# GET through the gateway is forwarded to the provider, not read from the store; the gateway test below covers it.
NOT_SWEPT = {"/proxy/{upstream}/{path:path}"}


def _names_a_beta_object(template: str) -> bool:
    return "{" in template or template == "/replay/panel"


def _expected_for_alpha(template: str) -> int:
    """Routes naming one of beta's objects answer alpha "not found"; every other route serves alpha's own data."""
    return 404 if _names_a_beta_object(template) else 200


def _get_routes() -> list[str]:
    """Every GET route of the app, as its path template."""
    import importlib

    from llmlens.server import ROUTE_MODULES

    templates: set[str] = set()
    for name in ROUTE_MODULES:
        for route in importlib.import_module(name).routes():
            if isinstance(route, Mount) or not isinstance(route, Route):
                continue
            if route.methods and "GET" not in route.methods:
                continue
            templates.add(route.path)
    return sorted(templates - NOT_SWEPT)


GET_ROUTES = _get_routes()


@pytest.mark.parametrize("template", GET_ROUTES)
def test_every_get_route_hides_project_beta(world: World, template: str) -> None:
    path = world.path(template)
    required = REQUIRED_QUERY.get(template, {})
    expected = _expected_for_alpha(template)
    cross = 200 if template in OPEN_ROUTES else 403
    with world.client("alpha", "admin") as c:
        for params in ({}, {"range": "30d"}, {"q": "SELECT * FROM spans", "range": "30d"}):
            r = c.get(path, params={**required, **params})
            assert r.status_code == expected, f"{path} {params} answered {r.status_code}: {r.text[:300]}"
            assert MARK not in r.text, f"{path} {params} leaked project beta ({r.status_code})"
        r = c.get(path, params={**required, "project": "beta", "range": "30d"})
        assert r.status_code == cross, f"{path}?project=beta answered {r.status_code}: {r.text[:300]}"
        assert MARK not in r.text
        r = c.get(path, params=required, headers={"X-LLMLens-Project": "beta"})
        assert r.status_code == cross, f"{path} with X-LLMLens-Project: beta answered {r.status_code}: {r.text[:300]}"
        assert MARK not in r.text
    # Beta's own key is served the very object alpha was refused: the 404 above is isolation, not a bad id.
    with world.client("beta", "admin") as c:
        r = c.get(path, params={**required, "range": "30d"})
        assert r.status_code == 200, f"beta's own {path} answered {r.status_code}: {r.text[:300]}"
        if template in SHOWS_BETA_MARKER:
            assert MARK in r.text, f"beta's own {path} no longer shows its data: the check above proves nothing"


def test_the_sweep_saw_beta_data_from_its_own_key(world: World) -> None:
    """The sweep would be vacuous if beta's marker never showed up anywhere, or its routes dropped out of it."""
    assert SHOWS_BETA_MARKER | set(REQUIRED_QUERY) | OPEN_ROUTES <= set(GET_ROUTES)
    with world.client("beta", "read") as c:
        r = c.get(f"/api/v1/traces/{BETA_TRACE}")
        assert r.status_code == 200 and MARK in r.text
        assert "beta-id-user" in c.get("/api/v1/sessions", params={"range": "30d"}).text
        r = c.get(f"/api/v1/replays/{world.beta_run}")
        assert r.status_code == 200, r.text
        assert [row["original_span_id"] for row in r.json()["comparison"]["rows"]] == [BETA_SPAN]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM spans",
        "SELECT * FROM llm_logs",
        "SELECT * FROM tool_logs",
        "SELECT * FROM retrieval_logs",
        "SELECT * FROM feedback_events",
        "SELECT * FROM llm_logs WHERE project = 'beta'",
        "SELECT * FROM spans s JOIN feedback_events f ON f.message_id = s.message_id",
    ],
)
def test_sql_console_sees_only_its_project(world: World, query: str) -> None:
    with world.client("alpha", "read") as c:
        r = c.post("/api/v1/sql", json={"query": query})
        assert r.status_code == 200, r.text
        assert MARK not in r.text
        projects = {row[r.json()["columns"].index("project")] for row in r.json()["rows"]}
        assert projects <= {"alpha"}
        r = c.post("/api/v1/sql", json={"query": query}, headers={"X-LLMLens-Project": "beta"})
        assert r.status_code == 403


def test_sql_csv_export_sees_only_its_project(world: World) -> None:
    with world.client("alpha", "read") as c:
        r = c.get("/sql.csv", params={"q": "SELECT project, prompt FROM llm_logs"})
        assert r.status_code == 200 and "ALPHAOK" in r.text and MARK not in r.text


def test_exports_see_only_their_project(world: World) -> None:
    with world.client("alpha", "read") as c:
        for view in ("llm_logs", "tool_logs", "retrieval_logs", "feedback_events"):
            for fmt in ("jsonl", "csv"):
                r = c.get("/api/v1/export", params={"view": view, "format": fmt, "range": "30d"})
                assert MARK not in r.text, f"export of {view} as {fmt} leaked ({r.status_code})"
                r = c.get("/api/v1/export", params={"view": view, "format": fmt, "project": "beta"})
                assert r.status_code == 403


def test_writes_land_in_the_keys_project_whatever_the_event_says(world: World) -> None:
    event = dict(_events("beta", "SMUGGLED", "c" * 32)[0])
    with world.client("alpha", "ingest") as c:
        assert c.post("/api/v1/ingest", json=[event]).status_code == 200
        r = c.post("/api/v1/ingest", json=[event], headers={"X-LLMLens-Project": "beta"})
        assert r.status_code == 403
    with world.client("beta", "read") as c:
        r = c.post("/api/v1/sql", json={"query": "SELECT count(*) FROM llm_logs WHERE prompt LIKE 'SMUGGLED%'"})
        assert r.json()["rows"] == [[0]]
    with world.client("alpha", "read") as c:
        r = c.post("/api/v1/sql", json={"query": "SELECT project FROM llm_logs WHERE prompt LIKE 'SMUGGLED%'"})
        assert r.json()["rows"] == [["alpha"]]


def test_otlp_writes_land_in_the_keys_project(world: World) -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "llmlens.project", "value": {"stringValue": "beta"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "d" * 32,
                                "spanId": "d" * 16,
                                "name": "chat gpt-4o",
                                "startTimeUnixNano": str(int(NOW * 1e9)),
                                "endTimeUnixNano": str(int(NOW * 1e9) + 1000),
                                "attributes": [
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    with world.client("alpha", "ingest") as c:
        r = c.post("/v1/traces", json=body)
        assert r.status_code == 200, r.text
    deadline = time.monotonic() + 10
    with world.client("beta", "read") as beta, world.client("alpha", "read") as alpha:
        query = {"query": f"SELECT project FROM spans WHERE trace_id = '{'d' * 32}'"}
        while time.monotonic() < deadline and not alpha.post("/api/v1/sql", json=query).json()["rows"]:
            time.sleep(0.1)
        assert beta.post("/api/v1/sql", json=query).json()["rows"] == []
        assert {r[0] for r in alpha.post("/api/v1/sql", json=query).json()["rows"]} == {"alpha"}


def test_gateway_records_into_the_keys_project_and_refuses_others(world: World) -> None:
    key = world.keys[("alpha", "ingest")]
    payload = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello via gateway"}]}
    url = f"{world.srv.url}/proxy/openai/v1/chat/completions"
    provider_key = "sk-provider-secret-abcdefghijklmnop"
    with FakeProvider(port=world.upstream_port):
        headers = {"Authorization": f"Bearer {provider_key}", "X-LLMLens-Api-Key": key}
        r = httpx.post(url, json=payload, headers={**headers, "X-LLMLens-Project": "beta"}, timeout=30)
        assert r.status_code == 403
        r = httpx.post(url, json=payload, headers={"Authorization": f"Bearer {provider_key}"}, timeout=30)
        assert r.status_code == 401  # the provider's key is not an llmlens key
        r = httpx.post(url, json=payload, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
    query = {"query": "SELECT project FROM llm_logs WHERE model LIKE 'gpt-4o-mini%'"}
    deadline = time.monotonic() + 10
    with world.client("alpha", "read") as alpha, world.client("beta", "read") as beta:
        while time.monotonic() < deadline and not alpha.post("/api/v1/sql", json=query).json()["rows"]:
            time.sleep(0.1)
        assert alpha.post("/api/v1/sql", json=query).json()["rows"] == [["alpha"]]
        assert beta.post("/api/v1/sql", json=query).json()["rows"] == []
        # the provider key reached neither storage nor the log
        dump = alpha.post("/api/v1/sql", json={"query": "SELECT * FROM spans"}).text
        assert provider_key not in dump
    assert provider_key not in world.srv.log()
    assert key not in world.srv.log()


def test_admin_key_manages_only_its_project(world: World) -> None:
    with world.client("alpha", "admin") as c:
        listed = c.get("/api/v1/admin/keys").json()["keys"]
        assert {k["project"] for k in listed} == {"alpha"}
        assert all("key_hash" not in k and "llm_" not in k["id"] for k in listed)
        beta_ids = [k["id"] for k in world.client("beta", "admin").get("/api/v1/admin/keys").json()["keys"]]
        assert c.delete(f"/api/v1/admin/keys/{beta_ids[0]}").status_code == 404
    with world.client("beta", "read") as c:
        assert c.get("/api/v1/whoami").status_code == 200
