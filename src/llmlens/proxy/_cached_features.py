"""Features whose calls the gateway caches, per project: switched on through the API (the Insights page's
"switch on the cache" action), kept in `<data_dir>/cached_features.json`:

    {"projects": {"shop": ["faq", "search"], ...}}

A call through the gateway with `X-LLMLens-Feature: faq` in project `shop` is then cached even when its
upstream is not (`[gateway] cache`); `X-LLMLens-Cache: false` on the call still wins. The file is written
0600 and replaced atomically on every change.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from llmlens._private_files import restrict_to_owner, write_private_file

CACHED_FEATURES_FILE = "cached_features.json"


class CachedFeatures:
    """Thread-safe; reads take no lock (the mapping is replaced whole on each change)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._projects: dict[str, frozenset[str]] = {}
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

    def enabled(self, project: str, feature: str | None) -> bool:
        return feature is not None and feature in self._projects.get(project, frozenset())

    def features(self, project: str) -> list[str]:
        return sorted(self._projects.get(project, frozenset()))

    def set(self, project: str, feature: str, on: bool) -> bool:
        """Switch the cache on or off for `feature` of `project`; False when it already was."""
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
