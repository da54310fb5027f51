"""Rollup deltas folded in after the commits that stored their spans, and never lost to a crash.

Appending the rollup deltas inside every commit cost five INSERT ... GROUP BY statements a commit:
most of the time of a commit holding a few events, so clients that send one event a request waited
on them. Instead each commit stamps its spans with `ingested_at`, strictly increasing in this
process, and `llmlens_meta` keeps a watermark: every span stamped at or before it is in the rollups.
A fold appends the deltas of the spans stamped after the watermark and moves the watermark in one
transaction, so each span enters the rollups exactly once whether the process dies before, during or
after a fold; the store folds what is left when it opens. Reads of the rollups, and writes that take
stored spans' deltas out (updates, deletes, rebuilds), fold first, so they never meet a rollup
that misses a committed span.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import duckdb

from ._rollups import DELTA_COLUMNS, RollupMaintainer

# In llmlens_meta: the `ingested_at` (µs since the epoch) up to which stored spans are in the rollups.
WATERMARK_KEY = "rollups_folded_through_us"
# A fold is due this long after the first commit it would cover, or once it would cover this many spans.
FOLD_AFTER_S = 5.0
FOLD_AFTER_SPANS = 100_000
# The temp table a fold copies the spans it covers into, so the deltas read them once.
FOLD_SOURCE = "rollup_fold"

_EPOCH = dt.datetime(1970, 1, 1)


def _as_timestamp(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


class PendingRollups:
    """The watermark, the `ingested_at` clock, and the spans committed since the last fold."""

    def __init__(
        self,
        maintainer: RollupMaintainer,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_us: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self._maintainer = maintainer
        self._clock = clock
        self._wall_us = wall_us
        self._folded_through_us = 0
        self._last_stamp_us = 0
        # Spans committed by this process since the last fold (spans left by a crash are counted at open).
        self.pending = 0
        self._pending_since: float | None = None

    def open(self, con: duckdb.DuckDBPyConnection, *, writable: bool) -> int:
        """Read the watermark (setting it on a store from before folds) and count the spans after it.

        Returns that count; a writable store folds them at once.
        """
        row = con.execute("SELECT value FROM llmlens_meta WHERE key = ?", [WATERMARK_KEY]).fetchone()
        if row is not None:
            self._folded_through_us = int(row[0])
        else:
            # Before folds, every commit put its spans into the rollups itself: all stored spans are in.
            top = con.execute("SELECT epoch_us(max(ingested_at)) FROM store.spans").fetchone()
            self._folded_through_us = int(top[0]) if top and top[0] is not None else 0
            if writable:
                con.execute(
                    "INSERT OR REPLACE INTO llmlens_meta VALUES (?, ?)", [WATERMARK_KEY, str(self._folded_through_us)]
                )
        count, top = con.execute(
            "SELECT count(*), epoch_us(max(ingested_at)) FROM store.spans WHERE ingested_at > ?",
            [_as_timestamp(self._folded_through_us)],
        ).fetchone() or (0, None)
        self._last_stamp_us = max(self._folded_through_us, int(top) if top is not None else 0)
        self.pending = int(count)
        if self.pending:
            self._pending_since = self._clock()
            if writable:
                self.fold(con)
        return int(count)

    def next_stamp(self) -> dt.datetime:
        """The `ingested_at` of the next commit: later than every stamp before it, even if the clock steps back."""
        self._last_stamp_us = max(self._wall_us(), self._last_stamp_us + 1)
        return _as_timestamp(self._last_stamp_us)

    def committed(self, spans: int) -> None:
        if spans:
            self.pending += spans
            if self._pending_since is None:
                self._pending_since = self._clock()

    @property
    def due(self) -> bool:
        since = self._pending_since
        if not self.pending or since is None:
            return False
        return self.pending >= FOLD_AFTER_SPANS or self._clock() - since >= FOLD_AFTER_S

    def rebuilt(self, con: duckdb.DuckDBPyConnection) -> int:
        """Inside the transaction of a full rebuild (which read every stored span): move the watermark
        past them all. Returns the new watermark, for `caught_up` once that transaction commits."""
        top = con.execute("SELECT epoch_us(max(ingested_at)) FROM store.spans").fetchone()
        through = max(self._folded_through_us, int(top[0]) if top and top[0] is not None else 0)
        con.execute("INSERT OR REPLACE INTO llmlens_meta VALUES (?, ?)", [WATERMARK_KEY, str(through)])
        return through

    def caught_up(self, through_us: int) -> None:
        self._folded_through_us = through_us
        self._last_stamp_us = max(self._last_stamp_us, through_us)
        self.pending = 0
        self._pending_since = None

    def fold(self, con: duckdb.DuckDBPyConnection) -> int:
        """Append the deltas of every span stamped after the watermark and move the watermark past
        them, in one transaction of its own; returns how many spans it folded."""
        since = _as_timestamp(self._folded_through_us)
        columns = ", ".join(f'"{c}"' for c in DELTA_COLUMNS)
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {FOLD_SOURCE} AS "
                f"SELECT {columns}, ingested_at FROM store.spans WHERE ingested_at > ?",
                [since],
            )
            count, first, last, top = con.execute(
                f"SELECT count(*), min(timestamp), max(timestamp), epoch_us(max(ingested_at)) FROM {FOLD_SOURCE}"
            ).fetchone() or (0, None, None, None)
            if count:
                self._maintainer.append(con, FOLD_SOURCE, first, last)
                con.execute("INSERT OR REPLACE INTO llmlens_meta VALUES (?, ?)", [WATERMARK_KEY, str(int(top))])
            con.execute(f"DROP TABLE {FOLD_SOURCE}")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        if count:
            # Rows stamped by someone else (SQL run through `execute`) may lie ahead of this process's clock.
            self.caught_up(int(top))
        else:
            self.pending = 0
            self._pending_since = None
        return int(count)
