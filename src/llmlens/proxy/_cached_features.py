"""Features whose calls the gateway caches, per project: switched on through the API (the Insights page's
"switch on the cache" action).

A call through the gateway with `X-LLMLens-Feature: faq` in project `shop` is then cached even when its
upstream is not (`[gateway] cache`); `X-LLMLens-Cache: false` on the call still wins. The switches are kept

- by a single server in `<data_dir>/cached_features.json`, written 0600 and replaced atomically on
  every change:

      {"projects": {"shop": ["faq", "search"], ...}}

- by servers sharing a ClickHouse store in its shared settings (kind `gateway_cache`, one per project
  and feature): a switch made on one server applies on the others within the backend's cache TTL.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from llmlens._private_files import restrict_to_owner, write_private_file
from llmlens.state import SettingsSnapshot, SharedSetting, SharedSettings

CACHED_FEATURES_FILE = "cached_features.json"
CACHE_KIND = "gateway_cache"


class CachedFeatures:
    """Thread-safe; reads take no lock (the mapping is replaced whole on each change)."""

    label = "gateway cache switches"  # in the report of an import into the shared settings

    def __init__(self, path: Path | None = None, *, shared: SharedSettings | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._projects: dict[str, frozenset[str]] = {}
        self._shared = None if shared is None else SettingsSnapshot(shared, CACHE_KIND)
        self._parsed: dict[tuple[str, str], SharedSetting] | None = None
        if path is not None and path.is_file():
            self._load(path)

    @classmethod
    def in_data_dir(cls, data_dir: str | Path) -> CachedFeatures:
        """What the API saved; ValueError names an unreadable file."""
        return cls(Path(data_dir) / CACHED_FEATURES_FILE)

    def _load(self, path: Path) -> None:
        try:
            restrict_to_owner(path)
            doc = json.loads(path.read_text())
            projects = doc.get("projects") if isinstance(doc, dict) else None
            if not isinstance(projects, dict) or not all(isinstance(v, list) for v in projects.values()):
                raise ValueError("expected {'projects': {project: [feature, ...]}}")
            self._projects = {str(p): frozenset(str(f) for f in features) for p, features in projects.items()}
        except (OSError, ValueError) as exc:
            message = f"cached features saved in {path} are unreadable ({exc}); fix or delete the file"
            raise ValueError(message) from None

    def _current(self) -> dict[str, frozenset[str]]:
        if self._shared is None:
            return self._projects
        records = self._shared.records()
        if records is not self._parsed:  # a new read: index it once
            projects: dict[str, set[str]] = {}
            for project, feature in records:
                projects.setdefault(project, set()).add(feature)
            self._projects = {p: frozenset(features) for p, features in projects.items()}
            self._parsed = records
        return self._projects

    def enabled(self, project: str, feature: str | None) -> bool:
        return feature is not None and feature in self._current().get(project, frozenset())

    def features(self, project: str) -> list[str]:
        return sorted(self._current().get(project, frozenset()))

    def set(self, project: str, feature: str, on: bool) -> bool:
        """Switch the cache on or off for `feature` of `project`; False when it already was."""
        if self._shared is not None:
            if on == self.enabled(project, feature):
                return False
            if on:
                self._shared.put(project, feature, True)
                return True
            return self._shared.delete(project, feature)
        with self._lock:
            current = self._projects.get(project, frozenset())
            if (feature in current) == on:
                return False
            changed = current | {feature} if on else current - {feature}
            projects = {**self._projects, project: frozenset(changed)}
            if not changed:
                del projects[project]
            self._save(projects)
            self._projects = projects
            return True

    def _save(self, projects: dict[str, frozenset[str]]) -> None:
        if self.path is None:
            return
        doc = {"projects": {name: sorted(features) for name, features in sorted(projects.items())}}
        write_private_file(self.path, json.dumps(doc, indent=2).encode())

    def copy_into(self, shared: SharedSettings) -> int:
        """Store the switches `shared` lacks (`llmlens.state.import_data_dir`); how many were stored."""
        copied = 0
        for project, features in sorted(self._current().items()):
            for feature in sorted(features):
                if shared.get(project, CACHE_KIND, feature) is None:
                    shared.put(project, CACHE_KIND, feature, True)
                    copied += 1
        return copied
