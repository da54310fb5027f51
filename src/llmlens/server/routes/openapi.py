"""GET /openapi.json: an OpenAPI 3 description of the JSON API (ingest, SQL, health, analytics)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from llmlens.query import RANGES

from ..pages import PAGES

_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_ERRORS = {
    str(code): {
        "description": text,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for code, text in (
        (400, "bad input; the message names the field"),
        (401, "authentication required"),
        (403, "not allowed for this key, login or project"),
        (404, "not found"),
        (413, "body or batch too large"),
        (415, "unsupported content type"),
        (422, "well-formed but invalid"),
        (429, "rate limited; see Retry-After"),
        (503, "the writer is behind; see Retry-After"),
    )
}
_SCORE = {
    "type": "object",
    "description": "A judgement of one call (message_id) or span (span_id): a value (number, boolean) or a label.",
    "properties": {
        "message_id": {"type": "string"},
        "span_id": {"type": "string"},
        "trace_id": {"type": "string"},
        "name": {"type": "string"},
        "value": {"oneOf": [{"type": "number"}, {"type": "boolean"}]},
        "label": {"type": "string"},
        "comment": {"type": "string"},
        "source": {"type": "string", "enum": ["human", "evaluator", "sdk"]},
        "evaluator": {"type": "string"},
        "evaluator_version": {"type": "string"},
        "reasoning": {"type": "string"},
        "judge_cost_usd": {"type": "number"},
        "timestamp": {"oneOf": [{"type": "number"}, {"type": "string"}]},
        "score_id": {"type": "string"},
        "metadata": {"type": "object"},
    },
    "required": ["name"],
    "additionalProperties": True,
}
_SCOPE_PARAMS: list[dict[str, Any]] = [
    {"name": "project", "in": "query", "required": False, "schema": {"type": "string"}},
    {"name": "range", "in": "query", "required": False, "schema": {"type": "string", "enum": list(RANGES)}},
    {"name": "from", "in": "query", "required": False, "schema": {"type": "string"}},
    {"name": "to", "in": "query", "required": False, "schema": {"type": "string"}},
]
_EVENT = {
    "type": "object",
    "description": "A native event (docs/events.md): llm, tool, retrieval, feedback, span or score.",
    "properties": {
        "type": {"type": "string", "enum": ["llm", "tool", "retrieval", "feedback", "span", "score"]},
        "timestamp": {"oneOf": [{"type": "number"}, {"type": "string"}]},
        "span_id": {"type": "string"},
        "trace_id": {"type": "string"},
        "model": {"type": "string"},
        "prompt": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        "response": {"type": "string"},
        "prompt_tokens": {"type": "integer"},
        "completion_tokens": {"type": "integer"},
        "latency_ms": {"type": "number"},
        "tool_name": {"type": "string"},
        "feedback_type": {"type": "string"},
        "message_id": {"type": "string"},
        "metadata": {"type": "object"},
    },
    "additionalProperties": True,
}


def _json_ok(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}


def _page_operation(name: str, title: str, path: str) -> dict[str, Any]:
    params = list(_SCOPE_PARAMS)
    for segment in path.split("/"):
        if segment.startswith("{"):
            params.append(
                {
                    "name": segment.strip("{}").split(":")[0],
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            )
    return {
        "get": {
            "operationId": f"get_{name}",
            "summary": f"{title}: the JSON twin of the dashboard page",
            "parameters": params,
            "responses": {"200": _json_ok(title), **_ERRORS},
        }
    }


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness",
                "security": [],
                "responses": {"200": _json_ok("ok")},
            }
        },
        "/api/v1/ingest": {
            "post": {
                "operationId": "ingest",
                "summary": "Ingest native events; 2xx means committed to disk",
                "parameters": [
                    {"name": "X-LLMLens-Project", "in": "header", "required": False, "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                                    {"$ref": "#/components/schemas/Event"},
                                    {
                                        "type": "object",
                                        "properties": {
                                            "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}
                                        },
                                        "required": ["events"],
                                    },
                                ]
                            }
                        }
                    },
                },
                "responses": {"200": _json_ok("accepted and rejected events"), **_ERRORS},
            }
        },
        "/api/v1/sql": {
            "post": {
                "operationId": "sql",
                "summary": "Read-only SQL over llm_logs, tool_logs, retrieval_logs, feedback_events, spans, scores",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "query": {"type": "string"},
                                    "max_rows": {"type": "integer", "minimum": 1},
                                },
                                "required": ["query"],
                            }
                        }
                    },
                },
                "responses": {"200": _json_ok("columns, types, rows, truncated"), **_ERRORS},
            }
        },
        "/api/v1/scores": {
            "post": {
                "operationId": "scores",
                "summary": "Store scores (judgements of calls and spans); docs/quality.md",
                "parameters": [
                    {"name": "X-LLMLens-Project", "in": "header", "required": False, "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {"type": "array", "items": {"$ref": "#/components/schemas/Score"}},
                                    {"$ref": "#/components/schemas/Score"},
                                    {
                                        "type": "object",
                                        "properties": {
                                            "scores": {"type": "array", "items": {"$ref": "#/components/schemas/Score"}}
                                        },
                                        "required": ["scores"],
                                    },
                                ]
                            }
                        }
                    },
                },
                "responses": {"200": _json_ok("accepted and rejected scores, score ids"), **_ERRORS},
            }
        },
        "/api/v1/whoami": {
            "get": {
                "operationId": "whoami",
                "summary": "The caller",
                "responses": {"200": _json_ok("principal"), **_ERRORS},
            }
        },
    }
    for page in PAGES:
        if page.api_path:
            paths[page.api_path.replace(":path}", "}")] = _page_operation(page.name, page.title, page.api_path)
    return {
        "openapi": "3.0.3",
        "info": {"title": "llmlens", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {"Error": _ERROR, "Event": _EVENT, "Score": _SCORE},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-LLMLens-Api-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi_document())


def routes() -> list[BaseRoute]:
    return [Route("/openapi.json", openapi, methods=["GET"])]
