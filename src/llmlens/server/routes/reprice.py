"""`POST /api/v1/admin/reprice`: recompute the stored costs of the caller's project (a project admin's job).

Body (JSON, every field optional)::

    {"since": "7d",                                            # any form of `llmlens.query.parse_time`
     "price_file": {"name": "prices.toml", "content": "..."}}  # a price file's text, read by the client

With `price_file`, those prices are used for this reprice only: a project admin must not change what
other projects' calls cost, so new calls keep the server's own prices. Without it, the server re-reads
its own `price_file` setting (the operator's file, never a path from the request), prices new calls
with it from then on, and reprices with it: editing that file and running `llmlens reprice` is enough.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from llmlens.ingest.reprice import RepriceResult, reprice
from llmlens.pricing import PriceBook, PriceFileError
from llmlens.query import WindowError, parse_time, utc_now

from .._http import HttpError, read_json_object
from .._request import request_project
from .._state import AppState, app_state

RUNNING = "reprice.running"  # services key: the projects with a reprice under way
_MAX_BODY_BYTES = 2_000_000  # a price file is a few KB; this leaves room for very long ones


def _since(doc: dict[str, Any]) -> dt.datetime | None:
    value = doc.get("since")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise HttpError(400, "since must be a string or a number (epoch seconds)")
    try:
        return parse_time(str(value), "since", now=utc_now())
    except WindowError as exc:
        raise HttpError(400, str(exc)) from None


def _sent_price_file(doc: dict[str, Any]) -> tuple[str, bytes] | None:
    sent = doc.get("price_file")
    if sent is None:
        return None
    if not isinstance(sent, dict) or not isinstance(sent.get("content"), str) or not isinstance(sent.get("name"), str):
        raise HttpError(400, 'price_file must be {"name": "prices.toml", "content": "<the file\'s text>"}')
    # Only the file's base name is kept: it says TOML or YAML and names the file in error messages.
    name = sent["name"].replace("\\", "/").rsplit("/", 1)[-1] or "price_file"
    return name, sent["content"].encode()


def _server_prices(state: AppState) -> tuple[PriceBook, bool]:
    """The server's prices re-read from its own price file (installed for new calls), and whether they changed."""
    book = PriceBook.load(state.settings.price_file)
    changed = book.version != state.pipeline.prices.version
    if changed:
        # Every later ingest (native, OTLP, gateway) reads the pipeline's book per batch or span.
        state.pipeline.prices = book
    return book, changed


async def reprice_endpoint(request: Request) -> JSONResponse:
    state = app_state(request)
    project = request_project(request)
    doc = await read_json_object(request, _MAX_BODY_BYTES)
    since = _since(doc)
    sent = _sent_price_file(doc)
    running: set[str] = state.services.setdefault(RUNNING, set())
    if project in running:
        raise HttpError(409, f"a reprice of project {project!r} is already running; try again when it is done")
    running.add(project)
    try:
        try:
            if sent is not None:
                prices = await asyncio.to_thread(PriceBook.from_price_file_content, *sent)
                reloaded = False
            else:
                prices, reloaded = await asyncio.to_thread(_server_prices, state)
        except PriceFileError as exc:
            raise HttpError(422, f"price_file: {exc}") from None
        # Off the event loop, and in short write batches: ingest keeps committing meanwhile.
        result: RepriceResult = await asyncio.to_thread(
            reprice, state.store.scoped(project), prices, since=since, project=project
        )
    finally:
        running.discard(project)
    return JSONResponse(
        {
            "project": project,
            "repriced": result.repriced,
            "unpriced": result.unpriced,
            "unpriced_models": result.unpriced_models,
            "price_version": result.price_version,
            "prices": "sent" if sent is not None else "server",
            "server_prices_reloaded": reloaded,
        }
    )


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/admin/reprice", reprice_endpoint, methods=["POST"])]
