"""Request bodies that are either JSON (the API) or an HTML form (the pages), and the answers to forms.

A form posted by a page gets a redirect (303) back to the page, with `notice` (or `error`) in its URL for
the page to show; the same request as JSON gets the JSON answer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse

from ._http import json_object, read_body

MAX_FORM_BYTES = 1_000_000


def is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind in ("application/x-www-form-urlencoded", "multipart/form-data")


async def read_doc(request: Request, limit: int = MAX_FORM_BYTES) -> dict[str, Any]:
    """A JSON object, or a form's fields (the last value of each; empty fields left out)."""
    if is_form(request):
        form = await request.form()
        doc: dict[str, Any] = {}
        for key in set(form.keys()):
            if key == "csrf_token":
                continue
            values = [v for v in form.getlist(key) if isinstance(v, str)]
            if values and values[-1].strip():
                doc[key] = values[-1].strip() if key not in ("text", "prompt") else values[-1]
        return doc
    return json_object(await read_body(request, limit))


def back_to(path: str, *, notice: str | None = None, error: str | None = None, **params: str) -> RedirectResponse:
    """A 303 to a page, carrying what happened for it to show."""
    query = {k: v for k, v in {**params, "notice": notice, "error": error}.items() if v}
    return RedirectResponse(f"{path}?{urlencode(query)}" if query else path, status_code=303)
