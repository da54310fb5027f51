"""Spend limits for a calendar month (UTC): per user by tier, per user explicitly, and per feature.

    [budgets]
    tiers = {free = 1.0, pro = 50.0}        # USD per user per month, by tier
    default_tier = "free"                   # tier of users the config does not name
    users = {"user-pro-01" = "pro"}         # user -> tier (wins over the request's tier property)
    user_limits = {"user-vip" = 200.0}      # user -> USD, overrides the tier
    features = {code_generation = 500.0}    # feature -> USD per month, all users together

A user's tier is, in order: `users`, the `tier` of the X-LLMLens-Properties header, `default_tier`.
A call is blocked when the month-to-date spend has already reached the limit. Each project has its
own policy (`ProjectBudgets`): the table above is the default of projects without one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._spend import MonthToDateSpend

if TYPE_CHECKING:
    from ._project_budgets import ProjectBudgets

BUDGET_KEYS = ("tiers", "default_tier", "users", "user_limits", "features")


def _usd_map(doc: Mapping[str, Any], key: str) -> dict[str, float]:
    raw = doc.get(key) or {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"budgets.{key} must be a table of name = USD")
    out: dict[str, float] = {}
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ValueError(f"budgets.{key}.{name} must be a non-negative number of USD, got {value!r}")
        out[str(name)] = float(value)
    return out


@dataclass(frozen=True, slots=True)
class BudgetPolicy:
    tiers: dict[str, float] = field(default_factory=dict)
    default_tier: str | None = None
    users: dict[str, str] = field(default_factory=dict)
    user_limits: dict[str, float] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, doc: Mapping[str, Any]) -> BudgetPolicy:
        """Parse the `[budgets]` table; ValueError names the bad key."""
        unknown = set(doc) - set(BUDGET_KEYS)
        if unknown:
            raise ValueError(f"unknown budgets keys {sorted(unknown)}; known: {', '.join(BUDGET_KEYS)}")
        tiers = _usd_map(doc, "tiers")
        default_tier = doc.get("default_tier")
        if default_tier is not None and (not isinstance(default_tier, str) or default_tier not in tiers):
            raise ValueError(f"budgets.default_tier {default_tier!r} is not one of the tiers {sorted(tiers)}")
        users = doc.get("users") or {}
        if not isinstance(users, Mapping):
            raise ValueError("budgets.users must be a table of user = tier")
        for user, tier in users.items():
            if tier not in tiers:
                raise ValueError(f"budgets.users.{user} names tier {tier!r}, not one of {sorted(tiers)}")
        return cls(
            tiers=tiers,
            default_tier=default_tier,
            users={str(k): str(v) for k, v in users.items()},
            user_limits=_usd_map(doc, "user_limits"),
            features=_usd_map(doc, "features"),
        )

    def to_config(self) -> dict[str, Any]:
        return {
            "tiers": dict(self.tiers),
            "default_tier": self.default_tier,
            "users": dict(self.users),
            "user_limits": dict(self.user_limits),
            "features": dict(self.features),
        }

    @property
    def enabled(self) -> bool:
        return bool(self.tiers or self.user_limits or self.features)

    def tier_of(self, user_id: str, tier_hint: str | None) -> str | None:
        if user_id in self.users:
            return self.users[user_id]
        if tier_hint is not None and tier_hint in self.tiers:
            return tier_hint
        return self.default_tier

    def user_limit(self, user_id: str, tier_hint: str | None) -> tuple[float | None, str | None]:
        """(USD limit or None, tier) for one user."""
        tier = self.tier_of(user_id, tier_hint)
        if user_id in self.user_limits:
            return self.user_limits[user_id], tier
        return (self.tiers.get(tier) if tier is not None else None), tier


@dataclass(frozen=True, slots=True)
class BudgetDecision:
    blocked: bool
    message: str = ""
    scope: str = ""  # "user" or "feature" when blocked


ALLOWED = BudgetDecision(blocked=False)


class BudgetGuard:
    """Decides whether a call may go upstream, from its project's policy and the month-to-date spend."""

    def __init__(self, policies: ProjectBudgets, spend: MonthToDateSpend) -> None:
        self.policies = policies
        self.spend = spend

    def enabled_for(self, project: str) -> bool:
        return self.policies.policy_for(project).enabled

    async def check(
        self, project: str, user_id: str | None, tier_hint: str | None, feature: str | None
    ) -> BudgetDecision:
        policy = self.policies.policy_for(project)
        if not policy.enabled:
            return ALLOWED
        if user_id is not None:
            limit, tier = policy.user_limit(user_id, tier_hint)
            if limit is not None:
                spent = await self.spend.spent(project, "user_id", user_id)
                if spent >= limit:
                    tier_text = f" ({tier} tier)" if tier else ""
                    return BudgetDecision(
                        True,
                        f"llmlens budget exceeded: user {user_id!r}{tier_text} has spent ${spent:.4f} of its "
                        f"${limit:.2f} monthly budget; the limit resets at the start of next month (UTC)",
                        "user",
                    )
        if feature is not None and feature in policy.features:
            limit = policy.features[feature]
            spent = await self.spend.spent(project, "feature", feature)
            if spent >= limit:
                return BudgetDecision(
                    True,
                    f"llmlens budget exceeded: feature {feature!r} has spent ${spent:.4f} of its "
                    f"${limit:.2f} monthly budget; the limit resets at the start of next month (UTC)",
                    "feature",
                )
        return ALLOWED

    async def status(self, project: str, user_id: str | None, tier_hint: str | None, feature: str | None) -> Any:
        policy = self.policies.policy_for(project)
        out: dict[str, Any] = {"project": project, "enabled": policy.enabled}
        if user_id is not None:
            limit, tier = policy.user_limit(user_id, tier_hint)
            spent = await self.spend.spent(project, "user_id", user_id)
            out["user"] = _status_of(user_id, spent, limit) | {"tier": tier}
        if feature is not None:
            limit = policy.features.get(feature)
            spent = await self.spend.spent(project, "feature", feature)
            out["feature"] = _status_of(feature, spent, limit)
        return out


def _status_of(name: str, spent: float, limit: float | None) -> dict[str, Any]:
    return {
        "id": name,
        "spent_usd": round(spent, 6),
        "limit_usd": limit,
        "remaining_usd": None if limit is None else round(max(0.0, limit - spent), 6),
        "blocked": limit is not None and spent >= limit,
    }
