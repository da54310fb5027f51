"""The `[quality]` table of llmlens.toml (`LLMLENS_QUALITY`), read once into typed thresholds."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from llmlens.settings import SettingsError


@dataclass(frozen=True, slots=True)
class QualitySettings:
    """Thresholds of inferred feedback (docs/quality.md says what each rule does with them)."""

    inferred: bool = True  # run the inferred-feedback service
    retry_window_s: float = 120.0  # a retry is the same question again within this many seconds
    retry_similarity: float = 0.95  # ... at least this similar (0-1, word level) to the previous user message
    edit_similarity: float = 0.6  # an edit changes the previous message but stays at least this similar
    abandon_after_s: float = 30.0  # the session's last activity came within this long after the last answer
    session_idle_s: float = 1800.0  # a session with no span for this long has ended (and is scanned)
    scan_interval_s: float = 60.0  # how often the service looks for ended sessions
    lookback_s: float = 86_400.0  # how far back the first scan after start-up looks
    evaluator_interval_s: float = 5.0  # how often online evaluator rules look for newly stored calls


_FRACTIONS = ("retry_similarity", "edit_similarity")


def quality_settings(raw: Mapping[str, Any] | None) -> QualitySettings:
    """Parse the table; SettingsError names the key and what it must be."""
    known = {f.name: f for f in fields(QualitySettings)}
    values: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        if key not in known:
            raise SettingsError(f"quality.{key} is not a setting; known: {', '.join(known)}")
        if key == "inferred":
            if not isinstance(value, bool):
                raise SettingsError(f"quality.inferred must be true or false, got {value!r}")
            values[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise SettingsError(f"quality.{key} must be a non-negative number, got {value!r}")
        if key in _FRACTIONS and value > 1:
            raise SettingsError(f"quality.{key} must be between 0 and 1, got {value!r}")
        values[key] = float(value)
    settings = replace(QualitySettings(), **values)
    if settings.edit_similarity > settings.retry_similarity:
        raise SettingsError(
            f"quality.edit_similarity ({settings.edit_similarity:g}) must not exceed quality.retry_similarity "
            f"({settings.retry_similarity:g}): a message more similar than retry_similarity is a retry"
        )
    if settings.scan_interval_s <= 0:
        raise SettingsError("quality.scan_interval_s must be above 0")
    if settings.evaluator_interval_s <= 0:
        raise SettingsError("quality.evaluator_interval_s must be above 0")
    return settings
