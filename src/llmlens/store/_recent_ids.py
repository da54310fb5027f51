"""Which span ids were stored recently: the dedupe filter for retried batches.

A client retries a batch when it did not get the answer to the first try (timeout, restart); the
retry comes soon after. Checking every new span against the whole table would make each commit scan
recent data, so the writer keeps the hashes of the last `capacity` stored ids in memory: a set for the
open bucket, sorted uint64 arrays (8 bytes an id) for sealed ones. It is rebuilt from the store at
start-up, so a retry after a crash is still caught.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np

_BUCKET = 65_536


def id_hash(project: str, span_id: str) -> int:
    # Python's string hash is 64-bit SipHash; collisions among a few million ids are ~1e-7 likely.
    return hash((project, span_id)) & 0xFFFF_FFFF_FFFF_FFFF


class RecentIds:
    def __init__(self, capacity: int = 4_000_000) -> None:
        self.capacity = capacity
        self._open: set[int] = set()
        self._sealed: deque[np.ndarray[tuple[int], np.dtype[np.uint64]]] = deque()
        self._sealed_count = 0

    def __len__(self) -> int:
        return len(self._open) + self._sealed_count

    def contains_many(self, hashes: Sequence[int]) -> list[bool]:
        found = [h in self._open for h in hashes]
        if self._sealed and not all(found):
            probe = np.fromiter(hashes, dtype=np.uint64, count=len(hashes))
            hit = np.zeros(len(hashes), dtype=bool)
            for arr in self._sealed:
                pos = np.searchsorted(arr, probe)
                pos[pos == len(arr)] = 0
                hit |= arr[pos] == probe
            found = [a or bool(b) for a, b in zip(found, hit, strict=True)]
        return found

    def add_many(self, hashes: Iterable[int]) -> None:
        for h in hashes:
            self._open.add(h)
            if len(self._open) >= _BUCKET:
                self._seal()

    def _seal(self) -> None:
        arr = np.fromiter(self._open, dtype=np.uint64, count=len(self._open))
        arr.sort()
        self._sealed.append(arr)
        self._sealed_count += len(arr)
        self._open = set()
        while self._sealed and self._sealed_count > self.capacity:
            self._sealed_count -= len(self._sealed.popleft())
