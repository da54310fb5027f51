"""Errors the gateway itself answers, in the wire format of the provider the client talks to."""

from __future__ import annotations

import json

from ._upstreams import WireFormat

# The openai and anthropic SDKs honour this header: a budget 429 must not be retried.
NO_RETRY = (b"x-should-retry", b"false")

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    502: "api_error",
    504: "api_error",
}


def provider_error(
    wire: WireFormat, status: int, message: str, *, code: str
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of an error as the provider would shape it.

    OpenAI: `{"error": {"message", "type", "param", "code"}}`. Anthropic:
    `{"type": "error", "error": {"type", "message"}}`. `code` names the gateway's reason
    (`budget_exceeded`, `upstream_unreachable`, ...); Anthropic's type follows the status.
    """
    if wire == "anthropic":
        doc: dict[str, object] = {
            "type": "error",
            "error": {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": message},
        }
    else:
        doc = {"error": {"message": message, "type": code, "param": None, "code": code}}
    body = json.dumps(doc).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return status, headers, body
