"""What every route needs, built once by create_app and reached as `request.app.state.llmlens`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from llmlens.ingest import GroupCommitWriter, IngestPipeline
from llmlens.settings import Settings
from llmlens.store import Store


@dataclass(slots=True)
class AppState:
    settings: Settings
    store: Store
    writer: GroupCommitWriter
    pipeline: IngestPipeline
    started_at: float = field(default_factory=time.time)
    # Subsystems started by other modules (alerts evaluator, gateway, forwarders, ...), by name.
    services: dict[str, Any] = field(default_factory=dict)


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.llmlens
    return state
