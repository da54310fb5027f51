"""The server's security state, built once per app: auth database, redaction, limits, retention.

`install_security(state)` is called by `build_state`: it opens the auth database (`<data_dir>/auth.sqlite3`,
or the shared state when the store is ClickHouse: `_shared_state.py`), adds the redaction and truncation
transforms to the ingest pipeline (so nothing is written unmasked or oversized, whatever the ingest path),
and keeps everything in `state.services["security"]`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from llmlens.auth import AuthDB, auth_enabled
from llmlens.ingest import content_transforms
from llmlens.redaction import Redactor

from ._shared_state import state_backend
from ._state import AppState

SERVICE = "security"


class TokenBucket:
    """`rate` tokens a second, up to `burst`; `take(n)` returns 0 or the seconds to wait."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = time.monotonic()

    def take(self, n: float) -> float:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if n <= self.tokens:
            self.tokens -= n
            return 0.0
        # A batch bigger than the burst is let through once the bucket is full, then pays it back.
        if n > self.burst and self.tokens >= self.burst:
            self.tokens -= n
            return 0.0
        return (min(n, self.burst) - self.tokens) / self.rate


@dataclass
class RateLimiter:
    """Per-key token buckets for ingest (events a second)."""

    rate: float
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_s(self, key: str, events: int) -> float:
        if self.rate <= 0:
            return 0.0
        with self.lock:
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = TokenBucket(self.rate, max(self.rate * 2, 1.0))
            return bucket.take(events)


@dataclass
class LoginThrottle:
    """At most `max_failures` failed logins per client address in `window_s`."""

    max_failures: int = 10
    window_s: float = 300.0
    failures: dict[str, list[float]] = field(default_factory=dict)

    def blocked(self, client: str) -> bool:
        now = time.monotonic()
        recent = [t for t in self.failures.get(client, []) if now - t < self.window_s]
        self.failures[client] = recent
        return len(recent) >= self.max_failures

    def failed(self, client: str) -> None:
        self.failures.setdefault(client, []).append(time.monotonic())
        if len(self.failures) > 100_000:
            self.failures.clear()


@dataclass
class Security:
    enabled: bool
    auth: AuthDB
    redactor: Redactor
    rate_limiter: RateLimiter
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)


def install_security(state: AppState) -> Security:
    settings = state.settings
    redactor = Redactor.from_config(settings.redaction)
    security = Security(
        enabled=auth_enabled(settings),
        auth=state_backend(state).auth(),
        redactor=redactor,
        rate_limiter=RateLimiter(settings.ingest_rate_limit),
    )
    span_transforms, feedback_transforms = content_transforms(redactor, settings.max_field_chars)
    state.pipeline.transforms.extend(span_transforms)
    state.pipeline.feedback_transforms.extend(feedback_transforms)
    state.services[SERVICE] = security
    return security


def security_of(state: AppState) -> Security:
    security: Security = state.services[SERVICE]
    return security
