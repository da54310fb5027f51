"""One forwarding target from the `forward` setting: where to POST, with which headers and limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

TRACES_PATH = "/v1/traces"


class ForwardConfigError(ValueError):
    """A bad `forward` entry; the message names the entry and the field."""


@dataclass(frozen=True, slots=True)
class ForwardTarget:
    """`url` is the collector's base URL (`/v1/traces` is appended unless it is already there)."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0
    max_queue: int = 10_000
    batch_size: int = 512
    max_delay_s: float = 1.0
    max_retries: int = 5
    compression: str = "gzip"

    @property
    def endpoint(self) -> str:
        parts = urlsplit(self.url)
        path = parts.path.rstrip("/")
        if not path.endswith(TRACES_PATH):
            path += TRACES_PATH
        return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))

    @property
    def label(self) -> str:
        """The endpoint without credentials or query: safe to show in metrics and logs."""
        parts = urlsplit(self.endpoint)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    @classmethod
    def from_config(cls, entry: Any, index: int = 0) -> ForwardTarget:
        where = f"forward[{index}]"
        if not isinstance(entry, Mapping):
            raise ForwardConfigError(f'{where} must be a table like {{url = "http://collector:4318"}}')
        known = {"url", "headers", "timeout_s", "max_queue", "batch_size", "max_delay_s", "max_retries", "compression"}
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ForwardConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        url = entry.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ForwardConfigError(f"{where}.url must be an http(s) URL, got {url!r}")
        headers = entry.get("headers") or {}
        if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
            raise ForwardConfigError(f"{where}.headers must be a table of strings")
        compression = entry.get("compression", "gzip")
        if compression not in ("gzip", "none"):
            raise ForwardConfigError(f"{where}.compression must be 'gzip' or 'none', got {compression!r}")
        return cls(
            url=url,
            headers={str(k): v for k, v in headers.items()},
            timeout_s=_positive(entry, "timeout_s", 10.0, where),
            max_queue=int(_positive(entry, "max_queue", 10_000, where)),
            batch_size=int(_positive(entry, "batch_size", 512, where)),
            max_delay_s=_positive(entry, "max_delay_s", 1.0, where),
            max_retries=int(_positive(entry, "max_retries", 5, where, allow_zero=True)),
            compression=compression,
        )


def _positive(entry: Mapping[str, Any], key: str, default: float, where: str, *, allow_zero: bool = False) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (value == 0 and not allow_zero):
        raise ForwardConfigError(f"{where}.{key} must be a positive number, got {value!r}")
    return float(value)


def targets_from_settings(entries: list[Any]) -> list[ForwardTarget]:
    return [ForwardTarget.from_config(entry, i) for i, entry in enumerate(entries)]
