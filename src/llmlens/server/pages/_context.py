"""Turning query results into the JSON-ready context shared by a page and its `/api/v1` twin."""

from __future__ import annotations

import dataclasses
from typing import Any

from llmlens.query import TimeWindow

from .._jsonable import jsonable
from .._state import AppState


def plain(value: Any) -> Any:
    """Dataclasses (nested) -> dicts and lists of JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif isinstance(value, list):
        value = [dataclasses.asdict(v) if dataclasses.is_dataclass(v) and not isinstance(v, type) else v for v in value]
    return jsonable(value)


def window_context(window: TimeWindow) -> dict[str, Any]:
    return {
        "start": jsonable(window.start),
        "end": jsonable(window.end),
        "range": window.range,
        "bucket": window.bucket,
    }


def active_alerts(state: AppState, project: str) -> list[dict[str, Any]]:
    """Firing alerts from the alerts service, when one runs (it exposes `active_alerts(project)`)."""
    service = state.services.get("alerts")
    getter = getattr(service, "active_alerts", None)
    if getter is None:
        return []
    return [plain(a) if not isinstance(a, dict) else jsonable(a) for a in getter(project)]


def alerts_evaluated(state: AppState) -> bool | None:
    """Whether the alert evaluator has run since the server started (None: no evaluator runs here).
    Before its first run, "no active alerts" would be a claim nobody has checked."""
    service = state.services.get("alerts")
    engine = getattr(service, "engine", None)
    if engine is None:
        return None
    return getattr(engine, "last_run", None) is not None
