"""Per-request helpers every route uses: the caller, its project, a store confined to it, ingest limits.

Adopting them is one line in a route: `store = request_store(request)` instead of `state.store`, and
`project = request_project(request)` instead of reading `X-LLMLens-Project` or `?project=`.
"""

from __future__ import annotations

import dataclasses
import math

from starlette.requests import Request

from llmlens.auth import ANONYMOUS_ADMIN, Principal
from llmlens.store import Store

from ._auth_middleware import PRINCIPAL_KEY
from ._http import HttpError
from ._security import security_of
from ._state import AppState, app_state


def request_principal(request: Request) -> Principal:
    """Who is calling (set by the auth middleware; the anonymous admin when auth is off)."""
    principal: Principal | None = request.scope.get(PRINCIPAL_KEY)
    return principal or ANONYMOUS_ADMIN


def request_project(request: Request) -> str:
    """The project this request acts in: the caller's when auth is on, else the one it names."""
    principal = request_principal(request)
    if principal.project is not None:
        return principal.project
    return (
        request.headers.get("x-llmlens-project", "").strip()
        or request.query_params.get("project", "").strip()
        or app_state(request).settings.project
    )


def request_store(request: Request) -> Store:
    """The store seen through this request's project: reads and writes reach no other project."""
    return app_state(request).store.scoped(request_project(request))


def request_state(request: Request) -> AppState:
    """The app state with its store replaced by `request_store(request)`: for page context builders."""
    return dataclasses.replace(app_state(request), store=request_store(request))


def request_projects(request: Request) -> list[str] | None:
    """Projects this caller may switch between (None: any, auth is off)."""
    principal = request_principal(request)
    if principal.kind == "key":
        return [principal.project] if principal.project else []
    if principal.kind == "user":
        return sorted(principal.memberships)
    return None


def admit_ingest(request: Request, events: int) -> None:
    """Batch-size and per-key rate limits for one ingest request: HttpError 413 or 429 + Retry-After."""
    state = app_state(request)
    limit = state.settings.max_batch_events
    if limit > 0 and events > limit:
        raise HttpError(413, f"the batch has {events} events, over the {limit}-event limit: send smaller batches")
    principal = request_principal(request)
    if principal.kind == "anonymous":
        return
    wait_s = security_of(state).rate_limiter.wait_s(principal.name, events)
    if wait_s > 0:
        raise HttpError(
            429,
            f"ingest rate limit of {state.settings.ingest_rate_limit:g} events/s for this key reached",
            {"Retry-After": str(max(1, math.ceil(wait_s)))},
        )


def require_server_admin(request: Request, action: str) -> None:
    """403 unless the caller may change what applies to every project; `action` is what it tried."""
    if not request_principal(request).server_admin:
        raise HttpError(
            403,
            f"only a server admin may {action}: it applies to every project (use a `server-admin` key or a user "
            "made with `llmlens users create --server-admin`, or the config file)",
        )
