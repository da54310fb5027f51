"""The `[gateway]` settings table: timeouts, cache and per-user concurrency, parsed once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_DEFAULTS: dict[str, Any] = {
    "timeout_s": 600.0,
    "connect_timeout_s": 10.0,
    "cache": False,
    "cache_ttl_s": 3600.0,
    "cache_max_entries": 10_000,
    "cache_max_bytes": 256 * 1024 * 1024,
    "max_concurrent_per_user": 0,
    "max_connections": 1000,
}


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    timeout_s: float = 600.0  # read timeout towards the upstream (OpenAI's SDK default)
    connect_timeout_s: float = 10.0
    cache: bool | tuple[str, ...] = False  # True: every upstream; a list: those upstreams
    cache_ttl_s: float = 3600.0
    cache_max_entries: int = 10_000
    cache_max_bytes: int = 256 * 1024 * 1024
    max_concurrent_per_user: int = 0  # 0: unlimited
    max_connections: int = 1000  # pooled connections to all upstreams together

    @classmethod
    def from_config(cls, doc: Mapping[str, Any]) -> GatewayConfig:
        unknown = set(doc) - set(_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown gateway keys {sorted(unknown)}; known: {', '.join(_DEFAULTS)}")
        values = {**_DEFAULTS, **doc}
        cache = values["cache"]
        if isinstance(cache, list | tuple):
            cache = tuple(str(name) for name in cache)
        elif not isinstance(cache, bool):
            raise ValueError(f"gateway.cache must be true/false or a list of upstream names, got {cache!r}")
        try:
            config = cls(
                timeout_s=float(values["timeout_s"]),
                connect_timeout_s=float(values["connect_timeout_s"]),
                cache=cache,
                cache_ttl_s=float(values["cache_ttl_s"]),
                cache_max_entries=int(values["cache_max_entries"]),
                cache_max_bytes=int(values["cache_max_bytes"]),
                max_concurrent_per_user=int(values["max_concurrent_per_user"]),
                max_connections=int(values["max_connections"]),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"gateway settings: {exc}") from None
        if config.timeout_s <= 0 or config.connect_timeout_s <= 0:
            raise ValueError("gateway.timeout_s and gateway.connect_timeout_s must be positive")
        return config

    def caches(self, upstream: str) -> bool:
        """Whether calls to `upstream` are cached when the request does not say (X-LLMLens-Cache)."""
        return self.cache if isinstance(self.cache, bool) else upstream in self.cache
