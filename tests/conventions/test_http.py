"""HTTP conventions and the generic parts of span_from_otlp: kinds, resource, ids and times."""

from __future__ import annotations

from tests.conventions._helpers import START_NS, mapped


def test_http_server_span_is_a_request() -> None:
    span = mapped(
        {
            "http.request.method": "POST",
            "http.route": "/chat",
            "http.response.status_code": 502,
            "http.request.body.size": 120,
            "http.response.body.size": 4000,
            "openinference.span.kind": "CHAIN",
            "user.id": "u",
        },
        kind=2,
        latency_ms=12.5,
        resource={"service.name": "api", "deployment.environment": "prod", "llmlens.project": "shop"},
    )
    assert span.kind == "request"
    assert (span.http_method, span.http_route, span.http_status) == ("POST", "/chat", 502)
    assert (span.http_request_bytes, span.http_response_bytes) == (120, 4000)
    assert (span.status, span.error_type) == ("error", "server_error")
    assert (span.service, span.environment, span.project) == ("api", "prod", "shop")
    assert (span.start_us, span.latency_ms) == (START_NS // 1000, 12.5)
    assert span.user_id == "u"


def test_old_http_names_and_client_spans() -> None:
    span = mapped({"http.method": "GET", "http.target": "/items/7?x=1", "http.status_code": "404"}, kind=2)
    assert (span.kind, span.http_route, span.http_status) == ("request", "/items/7", 404)
    client = mapped({"http.request.method": "GET"}, kind=3)
    assert (client.kind, client.http_method) == ("other", "GET")


def test_llm_kind_beats_request_and_default_project() -> None:
    span = mapped({"gen_ai.operation.name": "chat", "http.request.method": "POST"}, kind=2)
    assert span.kind == "llm"
    assert span.project == "default"
    assert mapped({}).kind == "other"
