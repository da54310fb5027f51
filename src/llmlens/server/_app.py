"""create_app: the llmlens ASGI application (UI, APIs, OTLP receivers, gateway) over one store."""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import AsyncIterator
from types import ModuleType

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from llmlens.auth import StateUnavailable
from llmlens.ingest import GroupCommitWriter, IngestPipeline
from llmlens.pricing import PriceBook
from llmlens.settings import Settings
from llmlens.store import Store, StoreUnavailable, open_store

from ._auth_middleware import AuthMiddleware
from ._http import HttpError, error_response
from ._ingest_admission import IngestAdmission
from ._security import install_security
from ._state import AppState
from ._store_down import unavailable_response

logger = logging.getLogger("llmlens.server")

# Each module exposes routes() and optionally `async startup(state)` / `async shutdown(state)`.
ROUTE_MODULES: tuple[str, ...] = (
    "llmlens.server.routes.health",
    "llmlens.server.routes.auth",
    "llmlens.server.routes.retention",
    "llmlens.server.routes.reprice",
    "llmlens.server.routes.openapi",
    "llmlens.server.routes.ingest",
    "llmlens.server.routes.otlp",
    "llmlens.server.routes.sql",
    "llmlens.server.routes.proxy",
    "llmlens.server.routes.replay",
    "llmlens.server.routes.api",
    "llmlens.server.routes.ui",
    "llmlens.server.routes.alerts",
    "llmlens.server.routes.insights",
    "llmlens.server.routes.metrics",
    "llmlens.server.routes.forward",
    "llmlens.server.routes.export",
    "llmlens.server.routes.scores",
    "llmlens.server.routes.langfuse",
    # Quality: evaluators first (it starts the services the others use), after replay (experiments send
    # their calls through it) and scores (their redaction and limits).
    "llmlens.server.routes.evaluators",
    "llmlens.server.routes.retrieval",
    "llmlens.server.routes.datasets",
    "llmlens.server.routes.experiments",
    "llmlens.server.routes.annotations",
)


def build_state(settings: Settings, store: Store | None = None) -> AppState:
    store = store or open_store(settings.store or None, settings.data_dir, memory_mb=settings.store_memory_mb)
    writer = GroupCommitWriter(store, max_queued_events=settings.max_queued_events)
    pipeline = IngestPipeline(writer, PriceBook.load(settings.price_file))
    state = AppState(settings=settings, store=store, writer=writer, pipeline=pipeline)
    install_security(state)  # auth database, redaction and truncation transforms (server/_security.py)
    return state


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    return error_response(exc.status, exc.message, exc.headers)


async def _state_unavailable(request: Request, exc: Exception) -> Response:
    """The shared state (keys, users, budgets on ClickHouse) is unreachable: a 503 the caller may retry."""
    return unavailable_response(request, str(exc), 5.0)


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """The store (a ClickHouse node) is unreachable: a 503 the caller may retry; nothing was acknowledged."""
    assert isinstance(exc, StoreUnavailable)
    return unavailable_response(request, str(exc), exc.retry_after_s)


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)


def create_app(
    settings: Settings,
    store: Store | None = None,
    *,
    state: AppState | None = None,
    route_modules: tuple[str, ...] | None = None,
) -> Starlette:
    """The app over one store; `route_modules` narrows ROUTE_MODULES (e.g. `llmlens proxy`)."""
    state = state or build_state(settings, store)
    names = ROUTE_MODULES if route_modules is None else route_modules
    modules: list[ModuleType] = [importlib.import_module(name) for name in names]
    routes: list[BaseRoute] = [r for m in modules for r in m.routes()]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.writer.start()
        started: list[ModuleType] = []
        try:
            for module in modules:
                startup = getattr(module, "startup", None)
                if startup is not None:
                    await startup(state)
                started.append(module)
            yield
        finally:
            for module in reversed(started):
                shutdown = getattr(module, "shutdown", None)
                if shutdown is not None:
                    try:
                        await shutdown(state)
                    except Exception:
                        logger.exception("shutdown of %s failed", module.__name__)
            state.writer.stop()
            state.store.close()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HttpError: _http_error,
            StateUnavailable: _state_unavailable,
            StoreUnavailable: _store_unavailable,
            Exception: _unexpected,
        },
        middleware=[Middleware(AuthMiddleware, state=state), Middleware(IngestAdmission, state=state)],
    )
    app.state.llmlens = state
    return app
