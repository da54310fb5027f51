"""Monthly spend limits per user tier and per feature, as the Cost page shows them for one project.

The table is the project's budget policy (its own, or the server-wide `[budgets]` default), never
another project's; the server picks it (`server/_budgets.py`) and passes it to `budgets_from_settings`.

[budgets]
tiers = {free = 1.0, pro = 50.0}     # USD per user per calendar month (UTC)
users = {"user-42" = "pro"}          # tier of users whose spans carry no `metadata.tier`
features = {code_generation = 500.0} # USD per feature per month
default_tier = "free"                # tier of users named nowhere (optional)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The article's example: free tier $1/month, pro tier $50/month.
DEFAULT_TIER_BUDGETS: dict[str, float] = {"free": 1.0, "pro": 50.0}


@dataclass(frozen=True, slots=True)
class Budgets:
    tiers: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TIER_BUDGETS))
    users: dict[str, str] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)
    default_tier: str | None = None

    def tier_of(self, user_id: str | None, span_tier: str | None) -> str | None:
        if user_id is not None and user_id in self.users:
            return self.users[user_id]
        return span_tier or self.default_tier

    def monthly_limit(self, tier: str | None) -> float | None:
        return self.tiers.get(tier) if tier is not None else None


def budgets_from_settings(raw: Mapping[str, Any]) -> Budgets:
    """Tolerant of a flat `{free = 1, pro = 50}` table as well as the documented layout."""
    if not raw:
        return Budgets()
    known = {"tiers", "users", "features", "default_tier"}
    if not set(raw) & known:
        return Budgets(tiers={str(k): float(v) for k, v in raw.items() if isinstance(v, int | float)})
    tiers = raw.get("tiers")
    return Budgets(
        tiers={str(k): float(v) for k, v in tiers.items()}
        if isinstance(tiers, Mapping)
        else dict(DEFAULT_TIER_BUDGETS),
        users={str(k): str(v) for k, v in (raw.get("users") or {}).items()},
        features={str(k): float(v) for k, v in (raw.get("features") or {}).items()},
        default_tier=str(raw["default_tier"]) if raw.get("default_tier") else None,
    )
