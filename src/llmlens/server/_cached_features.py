"""The features whose calls the gateway caches, per project: one `CachedFeatures`, shared by the gateway,
the cache API and the Insights page (which shows whether its suggestion is already on). Kept in the data
folder, or in the shared state when the store is ClickHouse."""

from __future__ import annotations

from llmlens.proxy import CachedFeatures

from ._shared_state import state_backend
from ._state import AppState

SERVICE = "cached_features"


def cached_features(state: AppState) -> CachedFeatures:
    """Loaded on first use: ValueError names an unreadable file."""
    found = state.services.get(SERVICE)
    if isinstance(found, CachedFeatures):
        return found
    backend = state_backend(state)
    loaded = (
        CachedFeatures(shared=backend.shared_settings())
        if backend.shared
        else CachedFeatures.in_data_dir(state.settings.data_dir)
    )
    switches: CachedFeatures = state.services.setdefault(SERVICE, loaded)
    return switches
