"""The app's budget policies per project: one `ProjectBudgets`, shared by the gateway, the budget API,
the alert evaluator and the Cost page."""

from __future__ import annotations

from llmlens.proxy import ProjectBudgets

from ._state import AppState

SERVICE = "budgets"


def project_budgets(state: AppState) -> ProjectBudgets:
    """Loaded on first use (at start-up, by the gateway or the alerts): ValueError names a bad table or file."""
    found = state.services.get(SERVICE)
    if isinstance(found, ProjectBudgets):
        return found
    loaded = ProjectBudgets.in_data_dir(state.settings.budgets, state.settings.data_dir)
    budgets: ProjectBudgets = state.services.setdefault(SERVICE, loaded)
    return budgets
