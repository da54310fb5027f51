"""The llmlens server: create_app(settings, store) and its routes."""

from ._app import ROUTE_MODULES, build_state, create_app
from ._state import AppState, app_state

__all__ = ["ROUTE_MODULES", "AppState", "app_state", "build_state", "create_app"]
