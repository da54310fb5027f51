"""Budget policies per project: a server-wide default and each project's own.

The default is the config file's `[budgets]` table, unless a server admin replaced it through the API.
A project whose admin set a policy through the API uses that policy, whole, instead of the default;
every other project uses the default. Only what was set through the API is kept, in one of two places:

- a single server: `<data_dir>/budgets.json`, written 0600 (it may name users), replaced atomically
  on every change:

      {"defaults": {...} or absent, "projects": {"shop": {...}, ...}}

  A file written before budgets belonged to projects is a single policy: it becomes the default, as
  it was then.
- servers sharing a ClickHouse store: shared settings of kind `budget_policy`, one named `policy` per
  project, the default's under the server-wide project. A change made on one server applies on the
  others within the backend's cache TTL (2 s).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from llmlens._private_files import restrict_to_owner, write_private_file
from llmlens.state import SERVER_WIDE, SettingsSnapshot, SharedSetting, SharedSettings

from ._budgets import BudgetPolicy

logger = logging.getLogger("llmlens.proxy")

BUDGETS_FILE = "budgets.json"
BUDGET_KIND = "budget_policy"
_POLICY_NAME = "policy"
PolicySource = Literal["project", "default"]


class ProjectBudgets:
    """Thread-safe: the gateway and the API read and write it on the event loop, the alert evaluator reads it
    from its thread."""

    label = "budget policies"  # in the report of an import into the shared settings

    def __init__(self, configured: BudgetPolicy, path: Path | None = None) -> None:
        self.configured = configured
        self.path = path
        self._lock = threading.Lock()
        self._api_defaults: BudgetPolicy | None = None
        self._projects: dict[str, BudgetPolicy] = {}
        self._shared: SettingsSnapshot | None = None
        self._parsed: dict[tuple[str, str], SharedSetting] | None = None
        if path is not None and path.is_file():
            self._load(path)

    @classmethod
    def in_data_dir(cls, configured: Mapping[str, Any], data_dir: str | Path) -> ProjectBudgets:
        """The config file's `[budgets]` plus what the API saved; ValueError names a bad table or file."""
        return cls(BudgetPolicy.from_config(configured), Path(data_dir) / BUDGETS_FILE)

    @classmethod
    def shared(cls, configured: Mapping[str, Any], settings: SharedSettings) -> ProjectBudgets:
        """The config file's `[budgets]` plus what the API saved in the shared settings."""
        book = cls(BudgetPolicy.from_config(configured))
        book._shared = SettingsSnapshot(settings, BUDGET_KIND)
        return book

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

    def _current(self) -> tuple[BudgetPolicy | None, dict[str, BudgetPolicy]]:
        """(the API's default or None, project -> policy); from the shared settings when they are used."""
        if self._shared is None:
            return self._api_defaults, self._projects
        records = self._shared.records()
        if records is not self._parsed:  # a new read: parse it once
            defaults: BudgetPolicy | None = None
            projects: dict[str, BudgetPolicy] = {}
            for (project, name), setting in records.items():
                if name != _POLICY_NAME:
                    continue
                try:
                    policy = BudgetPolicy.from_config(setting.value)
                except (ValueError, TypeError, AttributeError) as exc:
                    logger.warning("the stored budget policy of project %r is invalid and ignored: %s", project, exc)
                    continue
                if project == SERVER_WIDE:
                    defaults = policy
                else:
                    projects[project] = policy
            self._api_defaults, self._projects, self._parsed = defaults, projects, records
        return self._api_defaults, self._projects

    # -- reading ---------------------------------------------------------------------------------

    @property
    def defaults(self) -> BudgetPolicy:
        """The policy of every project without its own."""
        return self._current()[0] or self.configured

    @property
    def defaults_source(self) -> Literal["config", "api"]:
        return "api" if self._current()[0] is not None else "config"

    def policy_for(self, project: str) -> BudgetPolicy:
        return self._current()[1].get(project) or self.defaults

    def source_of(self, project: str) -> PolicySource:
        return "project" if project in self._current()[1] else "default"

    # -- changing (each change is saved before it applies) ---------------------------------------

    def set_project(self, project: str, policy: BudgetPolicy) -> None:
        if self._shared is not None:
            self._shared.put(project, _POLICY_NAME, policy.to_config())
            return
        with self._lock:
            projects = {**self._projects, project: policy}
            self._save(self._api_defaults, projects)
            self._projects = projects

    def clear_project(self, project: str) -> bool:
        """Back to the default; False when the project had no policy of its own."""
        if self._shared is not None:
            return self._shared.delete(project, _POLICY_NAME)
        with self._lock:
            if project not in self._projects:
                return False
            projects = {k: v for k, v in self._projects.items() if k != project}
            self._save(self._api_defaults, projects)
            self._projects = projects
            return True

    def set_defaults(self, policy: BudgetPolicy | None) -> None:
        """Replace the server-wide default (None: back to the config file's `[budgets]`)."""
        if self._shared is not None:
            if policy is None:
                self._shared.delete(SERVER_WIDE, _POLICY_NAME)
            else:
                self._shared.put(SERVER_WIDE, _POLICY_NAME, policy.to_config())
            return
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

    # -- moving to the shared settings (`llmlens.state.import_data_dir`) -------------------------

    def copy_into(self, shared: SharedSettings) -> int:
        """Store this book's API-set policies that `shared` lacks; how many were stored."""
        defaults, projects = self._current()
        wanted = ([(SERVER_WIDE, defaults)] if defaults is not None else []) + sorted(projects.items())
        copied = 0
        for project, policy in wanted:
            if shared.get(project, BUDGET_KIND, _POLICY_NAME) is None:
                shared.put(project, BUDGET_KIND, _POLICY_NAME, policy.to_config())
                copied += 1
        return copied
