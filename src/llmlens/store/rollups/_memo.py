"""Values read from whole hours or days of the rollups, kept until those buckets change.

A store with one writer (DuckDB) tells the memo which times its rollups changed, after the change commits.
A reader takes the generation before it reads and stores what it read under it; an entry is used while no
change to its bucket came after that generation. A change committed before the read began has a generation
no later than the reader's, and the read saw it; one committed after has a later one, and the entry is
dropped. Entries are keyed by project, kept to a number of cells (least recently used go first), and
forgotten with the process.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

_EPOCH = dt.datetime(1970, 1, 1)
# A change spanning more hours than this counts as a change to everything.
_MAX_HOURS_MARKED = 24 * 400
MAX_CELLS = 600_000  # ~5 MB of sketch cells as machine ints


def _hour(t: dt.datetime) -> int:
    return int((t - _EPOCH).total_seconds() // 3600)


class RollupMemo:
    """Per (project, key, grain, bucket start): a value and its size in cells."""

    def __init__(self, max_cells: int = MAX_CELLS) -> None:
        self._lock = threading.Lock()
        self._max_cells = max_cells
        self._cells = 0
        self._entries: OrderedDict[tuple[Hashable, ...], tuple[int, Any, int]] = OrderedDict()
        self.generation = 0
        self._floor = 0  # every bucket changed at this generation
        self._changed: dict[tuple[str, int], int] = {}  # (grain, hour or day number) -> generation

    def changed(self, first: dt.datetime, last: dt.datetime) -> None:
        """The rollups of every bucket holding a time in [first, last] changed (called once committed)."""
        lo, hi = _hour(first), _hour(last)
        with self._lock:
            self.generation += 1
            if hi - lo > _MAX_HOURS_MARKED:
                self._forget_all()
                return
            for hour in range(lo, hi + 1):
                self._changed[("hour", hour)] = self.generation
                self._changed[("day", hour // 24)] = self.generation

    def changed_everything(self) -> None:
        with self._lock:
            self.generation += 1
            self._forget_all()

    def _forget_all(self) -> None:
        self._floor = self.generation
        self._changed.clear()
        self._entries.clear()
        self._cells = 0

    def get(self, project: str, key: Hashable, grain: str, bucket: dt.datetime) -> Any | None:
        """The value kept for the bucket, if it has not changed since it was read."""
        entry_key = (project, key, grain, bucket)
        with self._lock:
            entry = self._entries.get(entry_key)
            if entry is None:
                return None
            generation, value, _ = entry
            number = _hour(bucket) // 24 if grain == "day" else _hour(bucket)
            if generation < self._floor or self._changed.get((grain, number), 0) > generation:
                self._drop(entry_key)
                return None
            self._entries.move_to_end(entry_key)
            return value

    def put(
        self, project: str, key: Hashable, grain: str, bucket: dt.datetime, generation: int, value: Any, cells: int
    ) -> None:
        """Keep `value` (`cells` in size), read from the bucket by a reader that began at `generation`."""
        if cells > self._max_cells:
            return
        entry_key = (project, key, grain, bucket)
        with self._lock:
            self._drop(entry_key)
            self._entries[entry_key] = (generation, value, cells)
            self._cells += cells
            while self._cells > self._max_cells and self._entries:
                self._drop(next(iter(self._entries)))

    def _drop(self, entry_key: tuple[Hashable, ...]) -> None:
        entry = self._entries.pop(entry_key, None)
        if entry is not None:
            self._cells -= entry[2]
