"""Settings kept per project as named JSON values: `(project, kind, name) -> value`, with a version.

One small interface for every kind of setting that is changed at run time and must be the same on
every server: gateway cache switches, budget policies, evaluator rules, saved views. A kind is a
namespace chosen by its owner (`"budget_policy"`, `"evaluator_rule"`); `project` is the project the
setting belongs to, or `SERVER_WIDE` for what applies to every project. Each change gets a version
larger than the one before it for that key, so readers can tell which of two values is newer.

Backends: SQLite in the data folder (one server) and a ClickHouse table (several servers). There is
no compare-and-set: ClickHouse cannot do one, so of two writers the later version wins.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from llmlens.auth import StateUnavailable

logger = logging.getLogger("llmlens.state")

# The project of settings that apply to every project. Project names start with a letter or a digit,
# so the empty string can never be one.
SERVER_WIDE = ""
_MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class SharedSetting:
    project: str
    kind: str
    name: str
    value: Any  # what was stored: any JSON value
    version: int  # grows with every change of this (project, kind, name)
    updated_at: float  # epoch seconds of the change, by the clock of the server that made it


class SharedSettings(Protocol):
    location: str  # shown in messages: a file path or a redacted URL
    # How long a reader (`SettingsSnapshot`) may reuse what it read: the longest a change made on
    # another server takes to apply here.
    cache_ttl_s: float

    def get(self, project: str, kind: str, name: str) -> SharedSetting | None: ...

    def list(self, kind: str, project: str | None = None) -> list[SharedSetting]:
        """The settings of a kind, of one project (or every project, `None`), by project and name."""
        ...

    def put(self, project: str, kind: str, name: str, value: Any) -> SharedSetting:
        """Create or replace; ValueError names a bad kind or name, or a value that is not JSON."""
        ...

    def delete(self, project: str, kind: str, name: str) -> bool:
        """False when there was nothing to delete."""
        ...

    def close(self) -> None: ...


def check_key(project: str, kind: str, name: str) -> None:
    """ValueError for a key no backend should store."""
    for label, value in (("kind", kind), ("name", name)):
        if not isinstance(value, str) or not value or len(value) > _MAX_NAME:
            raise ValueError(f"a shared setting's {label} must be 1-{_MAX_NAME} characters, got {value!r}")
    if not isinstance(project, str) or len(project) > _MAX_NAME:
        raise ValueError(f"a shared setting's project must be a project name or '' (server-wide), got {project!r}")


def encode_value(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a shared setting's value must be JSON: {exc}") from None


def next_version(previous: int | None) -> int:
    """Microseconds since the epoch, and always above the previous version (clocks of servers differ)."""
    now = time.time_ns() // 1_000
    return now if previous is None else max(now, previous + 1)


class SettingsSnapshot:
    """Every setting of one kind, read again once older than the backend's `cache_ttl_s`.

    For values read on a hot path (the gateway reads cache switches and budgets on every call):
    most reads cost a dictionary lookup, and a change made on another server applies within the TTL.
    Thread-safe; a change made through `put`/`delete` here applies at once here.
    """

    def __init__(self, settings: SharedSettings, kind: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.kind = kind
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._records: dict[tuple[str, str], SharedSetting] = {}

    def records(self) -> dict[tuple[str, str], SharedSetting]:
        """(project, name) -> setting. StateUnavailable only when nothing could be read yet: later, while
        the backend is unreachable, the last settings read stay in force (and are tried again after the TTL)."""
        read_at = self._read_at
        if read_at is None:
            self.refresh()
        elif self._clock() - read_at >= self.settings.cache_ttl_s:
            try:
                self.refresh()
            except StateUnavailable as exc:
                logger.warning("%s settings: keeping the last ones read: %s", self.kind, exc)
                self._read_at = self._clock()
        return self._records

    def refresh(self) -> None:
        with self._lock:
            started = self._clock()
            found = self.settings.list(self.kind)
            self._records = {(s.project, s.name): s for s in found}
            self._read_at = started

    def put(self, project: str, name: str, value: Any) -> SharedSetting:
        stored = self.settings.put(project, self.kind, name, value)
        self.refresh()
        return stored

    def delete(self, project: str, name: str) -> bool:
        deleted = self.settings.delete(project, self.kind, name)
        self.refresh()
        return deleted
