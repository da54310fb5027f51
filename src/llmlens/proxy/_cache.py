"""The gateway's exact-match response cache: canonical request -> the upstream's answer, bytes as sent.

Keyed on the upstream, path, query, a hash of the caller's credential (one organisation never reads
another's answers) and the request body with its JSON keys sorted. Bounded by entry count and bytes,
least recently used first out; entries expire after a TTL.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    chunks: tuple[bytes, ...]  # as the upstream sent them; a stream is replayed chunk by chunk
    expires_at: float

    @property
    def size(self) -> int:
        return sum(len(c) for c in self.chunks) + sum(len(k) + len(v) for k, v in self.headers)


def canonical_body(body: bytes) -> bytes:
    """JSON with sorted keys and no whitespace, so key order and spacing do not split the cache."""
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep to parse
        return body


def cache_key(project: str, upstream: str, path: str, query: str, body: bytes, credential: bytes) -> bytes:
    """Project first: two projects sharing a provider key never see each other's cached answers."""
    h = hashlib.sha256()
    parts = (project.encode(), upstream.encode(), path.encode(), query.encode(), hashlib.sha256(credential).digest())
    for part in parts:
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    h.update(canonical_body(body))
    return h.digest()


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    misses: int = 0
    stores: int = 0
    evictions: int = 0


class ResponseCache:
    def __init__(
        self,
        *,
        ttl_s: float,
        max_entries: int,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[bytes, CachedAnswer] = OrderedDict()
        self._bytes = 0
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, key: bytes) -> CachedAnswer | None:
        answer = self._entries.get(key)
        if answer is not None and answer.expires_at <= self._clock():
            self._drop(key)
            answer = None
        if answer is None:
            self.stats.misses += 1
            return None
        self._entries.move_to_end(key)
        self.stats.hits += 1
        return answer

    def put(self, key: bytes, status: int, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> bool:
        """Keep a complete 2xx answer; False if it is too large to keep (over a tenth of the bound)."""
        answer = CachedAnswer(status, tuple(headers), tuple(chunks), self._clock() + self.ttl_s)
        size = answer.size
        if size * 10 > self.max_bytes or self.max_entries <= 0:
            return False
        if key in self._entries:
            self._drop(key)
        self._entries[key] = answer
        self._bytes += size
        self.stats.stores += 1
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)
            self.stats.evictions += 1
        return True

    def _drop(self, key: bytes) -> None:
        answer = self._entries.pop(key)
        self._bytes -= answer.size
