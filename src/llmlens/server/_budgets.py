"""The app's budget policies per project: one `ProjectBudgets`, shared by the gateway, the budget API,
the alert evaluator and the Cost page. Kept in the data folder, or in the shared state when the store is
ClickHouse (several servers then enforce the same budgets)."""

from __future__ import annotations

from llmlens.proxy import ProjectBudgets

from ._shared_state import state_backend
from ._state import AppState

SERVICE = "budgets"


def project_budgets(state: AppState) -> ProjectBudgets:
    """Loaded on first use (at start-up, by the gateway or the alerts): ValueError names a bad table or file."""
    found = state.services.get(SERVICE)
    if isinstance(found, ProjectBudgets):
        return found
    backend = state_backend(state)
    settings = state.settings
    loaded = (
        ProjectBudgets.shared(settings.budgets, backend.shared_settings())
        if backend.shared
        else ProjectBudgets.in_data_dir(settings.budgets, settings.data_dir)
    )
    budgets: ProjectBudgets = state.services.setdefault(SERVICE, loaded)
    return budgets
