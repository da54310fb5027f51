"""Schemathesis against GET /openapi.json of a real server: generated requests to ingest, SQL, health
and every analytics GET never get a 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from schemathesis.checks import not_a_server_error
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


def test_the_spec_describes_the_json_api(api_server: LLMLensServer) -> None:
    import httpx

    doc = httpx.get(api_server.url + "/openapi.json").json()
    for path in ("/api/v1/ingest", "/api/v1/sql", "/healthz", "/api/v1/overview", "/api/v1/cost", "/api/v1/traces"):
        assert path in doc["paths"]
