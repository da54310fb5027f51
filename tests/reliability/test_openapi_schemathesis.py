"""Schemathesis against GET /openapi.json of a real server: generated requests to ingest, SQL, health
and every analytics GET never get a 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from schemathesis.checks import not_a_server_error
from tests.reliability._hostile_shapes import HOSTILE_BODIES
from tests.support.llmlens_server import LLMLensServer


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMLensServer]:
    with LLMLensServer(tmp_path_factory.mktemp("schemathesis"), demo=True, startup_timeout_s=120) as srv:
        yield srv


def test_no_server_errors(api_server: LLMLensServer) -> None:
    """Every operation of the spec, fuzzed (schemathesis' pytest plugin does not support this pytest,
    so operations are driven through its Python API)."""
    schema = schemathesis.openapi.from_url(api_server.url + "/openapi.json")
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @hyp_settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: schemathesis.Case) -> None:
            response = case.call(timeout=60)
            case.validate_response(response, checks=[not_a_server_error])

        run()
        tested.append(operation.label)
    assert len(tested) >= 14, tested


def test_hostile_json_bodies_never_get_a_server_error(api_server: LLMLensServer) -> None:
    """Explicit seeds beside the generated cases: every operation of the spec that takes a JSON body gets
    the shapes that once answered 500 (too deep to parse, ~900 deep, numbers of thousands of digits).
    They are sent as raw text: no JSON encoder can produce the deepest of them."""
    import httpx

    doc = httpx.get(api_server.url + "/openapi.json").json()
    targets = [
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if "application/json" in (operation.get("requestBody") or {}).get("content", {})
    ]
    assert ("POST", "/api/v1/ingest") in targets and ("POST", "/api/v1/sql") in targets, targets
    with httpx.Client(base_url=api_server.url, timeout=60) as client:
        for method, path in targets:
            for body in HOSTILE_BODIES:
                r = client.request(method, path, content=body, headers={"content-type": "application/json"})
                assert r.status_code < 500, (method, path, body[:60], r.status_code, r.text[:300])


def test_the_spec_describes_the_json_api(api_server: LLMLensServer) -> None:
    import httpx

    doc = httpx.get(api_server.url + "/openapi.json").json()
    for path in ("/api/v1/ingest", "/api/v1/sql", "/healthz", "/api/v1/overview", "/api/v1/cost", "/api/v1/traces"):
        assert path in doc["paths"]
