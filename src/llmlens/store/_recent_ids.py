"""Which span ids were stored recently: the dedupe filter for retried batches.

A client retries a batch when it did not get the answer to the first try (timeout, restart); the
retry comes soon after. Checking every new span against the whole table would make each commit scan
recent data, so the writer keeps the 64-bit hashes of recently stored ids in memory, in two
generations of open-addressing hash tables packed in `array('Q')` (8 bytes a slot, no Python object
per id): new hashes go to the young table; once it holds `capacity // 2`, it becomes the old one and
the previous old one is dropped, so between `capacity // 2` and `capacity` ids are remembered. It is
rebuilt from the store at start-up, so a retry after a crash is still caught.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence

_EMPTY = 0  # a slot's value when unused; a hash of 0 is stored as 1 (one more collision in 2^64)
_MIN_SLOTS = 1024


def id_hash(project: str, span_id: str) -> int:
    # Python's string hash is 64-bit SipHash; collisions among a few million ids are ~1e-7 likely.
    return (hash((project, span_id)) & 0xFFFF_FFFF_FFFF_FFFF) or 1


class _HashTable:
    """A set of nonzero 64-bit ints: linear probing, at most half full (it doubles past that)."""

    def __init__(self, slots: int = _MIN_SLOTS) -> None:
        self._slots = array("Q", bytes(8 * slots))
        self._mask = slots - 1
        self.count = 0

    def _slot(self, h: int) -> int:
        """Where `h` is, or the empty slot where it would go."""
        slots, mask = self._slots, self._mask
        i = h & mask
        while (value := slots[i]) != h and value != _EMPTY:
            i = (i + 1) & mask
        return i

    def __contains__(self, h: int) -> bool:
        return self._slots[self._slot(h)] == h

    def add(self, h: int) -> None:
        i = self._slot(h)
        if self._slots[i] == _EMPTY:
            self._slots[i] = h
            self.count += 1
            if 2 * self.count > len(self._slots):
                self._grow()

    def _grow(self) -> None:
        old = self._slots
        self._slots = array("Q", bytes(16 * len(old)))
        self._mask = 2 * len(old) - 1
        self.count = 0
        for h in old:
            if h != _EMPTY:
                self.add(h)


class RecentIds:
    def __init__(self, capacity: int = 4_000_000) -> None:
        self.capacity = capacity
        self._young = _HashTable()
        self._old = _HashTable()

    def __len__(self) -> int:
        return self._young.count + self._old.count

    def contains_many(self, hashes: Sequence[int]) -> list[bool]:
        young, old = self._young, self._old
        return [h in young or h in old for h in hashes]

    def add_many(self, hashes: Iterable[int]) -> None:
        generation = max(1, self.capacity // 2)
        for h in hashes:
            self._young.add(h)
            if self._young.count >= generation:
                self._old, self._young = self._young, _HashTable()
