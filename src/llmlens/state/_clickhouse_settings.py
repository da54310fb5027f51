"""Shared settings in one ClickHouse table, newest version per (project, kind, name); deletions are tombstones."""

from __future__ import annotations

import json
import time
from typing import Any

from ._clickhouse import SETTINGS_TABLE, StateConnection
from ._shared_settings import SharedSetting, check_key, encode_value, next_version

_COLUMNS = "project, kind, name, value, version, updated_at, deleted"


class ClickHouseSharedSettings:
    # What another server changed applies here within this (SettingsSnapshot re-reads after it).
    cache_ttl_s = 2.0

    def __init__(self, connection: StateConnection) -> None:
        self.db = connection
        self.location = connection.location

    def close(self) -> None:
        self.db.close()

    def _newest(self, where: str, params: dict[str, Any]) -> list[tuple[SharedSetting, bool]]:
        rows = self.db.newest(SETTINGS_TABLE, _COLUMNS, where=where, params=params)
        return [(SharedSetting(r[0], r[1], r[2], json.loads(r[3]), int(r[4]), float(r[5])), bool(r[6])) for r in rows]

    def _one(self, project: str, kind: str, name: str) -> tuple[SharedSetting, bool] | None:
        found = self._newest(
            "project = %(project)s AND kind = %(kind)s AND name = %(name)s",
            {"project": project, "kind": kind, "name": name},
        )
        return found[0] if found else None

    def get(self, project: str, kind: str, name: str) -> SharedSetting | None:
        found = self._one(project, kind, name)
        return None if found is None or found[1] else found[0]

    def list(self, kind: str, project: str | None = None) -> list[SharedSetting]:
        where, params = "kind = %(kind)s", {"kind": kind}
        if project is not None:
            where, params = where + " AND project = %(project)s", {**params, "project": project}
        live = [setting for setting, deleted in self._newest(where, params) if not deleted]
        return sorted(live, key=lambda s: (s.project, s.name))

    def _write(self, project: str, kind: str, name: str, text: str, *, deleted: bool, version: int) -> float:
        now = time.time()
        record = {"project": project, "kind": kind, "name": name, "value": text, "updated_at": now}
        self.db.insert(SETTINGS_TABLE, [{**record, "deleted": int(deleted), "version": version}])
        return now

    def put(self, project: str, kind: str, name: str, value: Any) -> SharedSetting:
        check_key(project, kind, name)
        text = encode_value(value)
        previous = self._one(project, kind, name)
        version = next_version(None if previous is None else previous[0].version)
        at = self._write(project, kind, name, text, deleted=False, version=version)
        return SharedSetting(project, kind, name, json.loads(text), version, at)

    def delete(self, project: str, kind: str, name: str) -> bool:
        previous = self._one(project, kind, name)
        if previous is None or previous[1]:
            return False
        self._write(project, kind, name, "null", deleted=True, version=next_version(previous[0].version))
        return True
