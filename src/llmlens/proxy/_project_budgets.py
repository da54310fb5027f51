"""Budget policies per project: a server-wide default and each project's own, kept in `<data_dir>/budgets.json`.

The default is the config file's `[budgets]` table, unless a server admin replaced it through the API.
A project whose admin set a policy through the API uses that policy, whole, instead of the default;
every other project uses the default. The file holds only what was set through the API:

    {"defaults": {...} or absent, "projects": {"shop": {...}, ...}}

A file written before budgets belonged to projects is a single policy: it becomes the default, as it
was then. The file is written 0600 (it may name users), replaced atomically on every change.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from llmlens._private_files import restrict_to_owner, write_private_file

from ._budgets import BudgetPolicy

BUDGETS_FILE = "budgets.json"
PolicySource = Literal["project", "default"]


class ProjectBudgets:
    """Thread-safe: the gateway and the API read and write it on the event loop, the alert evaluator reads it
    from its thread."""

    def __init__(self, configured: BudgetPolicy, path: Path | None = None) -> None:
        self.configured = configured
        self.path = path
        self._lock = threading.Lock()
        self._api_defaults: BudgetPolicy | None = None
        self._projects: dict[str, BudgetPolicy] = {}
        if path is not None and path.is_file():
            self._load(path)

    @classmethod
    def in_data_dir(cls, configured: Mapping[str, Any], data_dir: str | Path) -> ProjectBudgets:
        """The config file's `[budgets]` plus what the API saved; ValueError names a bad table or file."""
        return cls(BudgetPolicy.from_config(configured), Path(data_dir) / BUDGETS_FILE)

    def _load(self, path: Path) -> None:
        try:
            restrict_to_owner(path)
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict):
                raise ValueError("the file must hold a JSON object")
            if doc and not set(doc) & {"defaults", "projects"}:
                self._api_defaults = BudgetPolicy.from_config(doc)  # the single policy of older versions
                return
            if doc.get("defaults") is not None:
                self._api_defaults = BudgetPolicy.from_config(doc["defaults"])
            projects = doc.get("projects") or {}
            if not isinstance(projects, dict):
                raise ValueError("'projects' must map project names to policies")
            self._projects = {str(name): BudgetPolicy.from_config(policy) for name, policy in projects.items()}
        except (OSError, ValueError) as exc:
            raise ValueError(f"budgets saved in {path} are unreadable ({exc}); fix or delete the file") from None

    # -- reading ---------------------------------------------------------------------------------

    @property
    def defaults(self) -> BudgetPolicy:
        """The policy of every project without its own."""
        return self._api_defaults or self.configured

    @property
    def defaults_source(self) -> Literal["config", "api"]:
        return "api" if self._api_defaults is not None else "config"

    def policy_for(self, project: str) -> BudgetPolicy:
        return self._projects.get(project) or self.defaults

    def source_of(self, project: str) -> PolicySource:
        return "project" if project in self._projects else "default"

    # -- changing (each change is saved before it applies) ---------------------------------------

    def set_project(self, project: str, policy: BudgetPolicy) -> None:
        with self._lock:
            projects = {**self._projects, project: policy}
            self._save(self._api_defaults, projects)
            self._projects = projects

    def clear_project(self, project: str) -> bool:
        """Back to the default; False when the project had no policy of its own."""
        with self._lock:
            if project not in self._projects:
                return False
            projects = {k: v for k, v in self._projects.items() if k != project}
            self._save(self._api_defaults, projects)
            self._projects = projects
            return True

    def set_defaults(self, policy: BudgetPolicy | None) -> None:
        """Replace the server-wide default (None: back to the config file's `[budgets]`)."""
        with self._lock:
            self._save(policy, self._projects)
            self._api_defaults = policy

    def _save(self, defaults: BudgetPolicy | None, projects: Mapping[str, BudgetPolicy]) -> None:
        if self.path is None:
            return
        doc: dict[str, Any] = {"projects": {name: p.to_config() for name, p in sorted(projects.items())}}
        if defaults is not None:
            doc["defaults"] = defaults.to_config()
        write_private_file(self.path, json.dumps(doc, indent=2).encode())
