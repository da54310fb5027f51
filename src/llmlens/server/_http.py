"""HTTP helpers shared by routes: bounded body reading and error answers that name the problem."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse


class HttpError(Exception):
    """Raised inside a route; rendered as `{"error": message}` with the status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or HttpError 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, f"body of {declared} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(request: Request, limit: int = 1_000_000) -> dict[str, Any]:
    """The body as a JSON object, or HttpError 400 (not JSON, nested too deeply, not an object) / 413."""
    body = await read_body(request, limit)
    return json_object(body)


def json_object(body: bytes) -> dict[str, Any]:
    """`body` parsed as a JSON object (empty: {}), or HttpError 400 naming what is wrong with it."""
    from llmlens.codec.json_text import loads_untrusted

    try:
        doc = loads_untrusted(body or b"{}")
    except ValueError as exc:  # not JSON, not UTF-8, or nested deeper than the parser follows
        raise HttpError(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise HttpError(400, "body must be a JSON object")
    return doc
