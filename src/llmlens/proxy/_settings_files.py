"""The gateway's settings files in a data folder, as sources for an import into the shared state."""

from __future__ import annotations

from pathlib import Path

from llmlens.state import SettingsSource

from ._cached_features import CACHED_FEATURES_FILE, CachedFeatures
from ._project_budgets import BUDGETS_FILE, ProjectBudgets


def settings_files_in(data_dir: str | Path) -> list[SettingsSource]:
    """budgets.json and cached_features.json, those that exist; ValueError names an unreadable one."""
    folder = Path(data_dir)
    sources: list[SettingsSource] = []
    if (folder / BUDGETS_FILE).is_file():
        sources.append(ProjectBudgets.in_data_dir({}, folder))  # only what the API saved is copied
    if (folder / CACHED_FEATURES_FILE).is_file():
        sources.append(CachedFeatures.in_data_dir(folder))
    return sources
