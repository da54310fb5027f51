"""Moving a server's state from its data folder into the shared backend, once.

On the first start on a shared backend (or through `llmlens migrate`), what the data folder holds is
copied: projects, keys (their hashes; secrets are never stored), users (password hashes), their roles,
unexpired login sessions, and the settings of `SettingsSource`s (budgets, gateway cache switches).
Nothing already in the shared backend is overwritten: a user that exists there keeps its password
and roles. The files stay as they were, and a marker in the data folder records the import, so it
runs once per data folder and backend: a key revoked afterwards is not brought back by a restart.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from llmlens._private_files import write_private_file
from llmlens.auth import AUTH_FILE, AuthStorage, SqliteAuthStorage

from ._backend import StateBackend
from ._shared_settings import SharedSettings

logger = logging.getLogger("llmlens.state")

IMPORT_MARKER = "shared_state_imported.json"


class SettingsSource(Protocol):
    """A kind of setting a data folder may hold in a file of its own (budgets.json, ...)."""

    label: str  # what the report calls its records, e.g. "budget policies"

    def copy_into(self, shared: SharedSettings) -> int:
        """Store the records the shared backend lacks; how many were stored."""
        ...


@dataclass(slots=True)
class ImportReport:
    data_dir: Path
    location: str
    counts: dict[str, int] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)  # records the shared backend already had

    def summary(self) -> str:
        copied = ", ".join(f"{n} {label}" for label, n in self.counts.items()) or "nothing"
        text = f"imported the state of {self.data_dir} into {self.location}: {copied}"
        if self.kept:
            text += "; kept what was there already: " + "; ".join(self.kept)
        return text


def copy_auth(source: AuthStorage, dest: AuthStorage, report: ImportReport) -> None:
    """Copy what `dest` lacks; a user it has keeps its own password, roles and sessions."""
    snapshot = source.snapshot()
    counts = report.counts
    counts["projects"] = sum(dest.insert_project(p) for p in snapshot.projects)
    counts["keys"] = 0
    for key in snapshot.keys:
        if dest.key_by_id(key.key.id) is None:
            dest.insert_key(key)
            counts["keys"] += 1
    copied_users: set[str] = set()
    for user in snapshot.users:
        if dest.insert_user(user):
            copied_users.add(user.username)
        else:
            report.kept.append(f"user {user.username!r}")
    counts["users"] = len(copied_users)
    roles = [m for m in snapshot.memberships if m.username in copied_users]
    for membership in roles:
        dest.put_membership(membership)
    counts["roles"] = len(roles)
    now = time.time()
    sessions = [s for s in snapshot.sessions if s.username in copied_users and s.expires_at > now]
    for session in sessions:
        dest.insert_session(session)
    counts["login sessions"] = len(sessions)


def _marker(data_dir: Path) -> dict[str, Any]:
    path = data_dir / IMPORT_MARKER
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is unreadable ({exc}); fix or delete it (deleting it imports again)") from None
    return doc if isinstance(doc, dict) else {}


def import_data_dir(backend: StateBackend, sources: Sequence[SettingsSource]) -> ImportReport | None:
    """Import the data folder's state into `backend` unless done before; None when there was nothing to do.

    `sources` are the data folder's settings files that exist. ValueError for an unreadable file.
    """
    if not backend.shared:
        return None
    data_dir = backend.data_dir
    auth_file = data_dir / AUTH_FILE
    if not auth_file.is_file() and not sources:
        return None
    marker = _marker(data_dir)
    if backend.location in marker:
        return None
    report = ImportReport(data_dir=data_dir, location=backend.location)
    if auth_file.is_file():
        source = SqliteAuthStorage(auth_file)
        try:
            copy_auth(source, backend.auth().storage, report)
        finally:
            source.close()
    for settings_source in sources:
        report.counts[settings_source.label] = settings_source.copy_into(backend.shared_settings())
    marker[backend.location] = {"imported_at": time.time(), "counts": report.counts}
    path = data_dir / IMPORT_MARKER
    write_private_file(path, json.dumps(marker, indent=2).encode())
    logger.info("%s (marker: %s)", report.summary(), path)
    return report
