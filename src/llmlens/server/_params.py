"""Reading dashboard URL parameters (project, time range, filters) into query specs; 400 on bad input."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.requests import Request

from llmlens.query import Scope, TimeWindow, WindowError, parse_window, utc_now
from llmlens.store import confined_to

from ._http import HttpError
from ._request import request_project, request_projects
from ._state import AppState

# URL parameters that follow the user from page to page (project, time range).
STICKY = ("project", "range", "from", "to")
_PROJECTS_TTL_S = 30.0


@dataclass(frozen=True, slots=True)
class PageParams:
    """What every dashboard page reads from its URL."""

    scope: Scope
    query: QueryParams

    @property
    def project(self) -> str:
        return self.scope.project

    @property
    def window(self) -> TimeWindow:
        return self.scope.window

    def text(self, name: str) -> str | None:
        value = self.query.get(name, "").strip()
        return value or None

    def number(self, name: str, default: float | None = None) -> float | None:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            raise HttpError(400, f"{name} must be a number, got {raw!r}") from None

    def link(self, path: str, **changes: object) -> str:
        """`path` with the sticky parameters of this URL plus `changes` (None drops a parameter)."""
        params: dict[str, str] = {k: v for k in STICKY if (v := self.query.get(k, ""))}
        for key, value in changes.items():
            key = key.rstrip("_")
            if value is None or value == "":
                params.pop(key, None)
            else:
                params[key] = str(value)
        return f"{path}?{urlencode(params)}" if params else path

    def with_params(self, path: str, **changes: object) -> str:
        """`path` with every parameter of this URL plus `changes` (filters stay, e.g. for paging)."""
        params = dict(self.query)
        for key, value in changes.items():
            key = key.rstrip("_")
            if value is None or value == "":
                params.pop(key, None)
            else:
                params[key] = str(value)
        return f"{path}?{urlencode(params)}" if params else path


def page_params(request: Request, state: AppState, *, default_range: str | None = None) -> PageParams:
    q = request.query_params
    project = request_project(request)  # the caller's project when auth is on
    try:
        window = parse_window(
            q.get("range") or None,
            q.get("from") or None,
            q.get("to") or None,
            now=utc_now(),
            **({"default": default_range} if default_range else {}),
        )
    except WindowError as exc:
        raise HttpError(400, str(exc)) from None
    return PageParams(scope=Scope(project, window), query=q)


def known_projects(state: AppState, request: Request | None = None) -> list[str]:
    """Projects with data, cached briefly: the selector should not scan the store on every page.

    With auth on, only the projects the caller may switch to (its key's, or its memberships)."""
    allowed = request_projects(request) if request is not None else None
    if allowed is not None:
        return allowed
    cached = state.services.get("ui.projects")
    now = time.monotonic()
    if cached is not None and now - cached[0] < _PROJECTS_TTL_S:
        projects: list[str] = cached[1]
        return projects
    with confined_to(None):  # the list is shared by every caller: not through one request's project
        result = state.store.query("SELECT project FROM spans GROUP BY project ORDER BY project")
    projects = [str(r[0]) for r in result.rows]
    if state.settings.project not in projects:
        projects.insert(0, state.settings.project)
    state.services["ui.projects"] = (now, projects)
    return projects
