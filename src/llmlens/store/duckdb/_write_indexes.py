"""What the store keeps beside spans, feedback and scores so that lookups and pages need not scan them: the
id maps (`_id_index.py`), feedback and scores joined to the calls they rate (`_feedback_calls.py`,
`_score_calls.py`) and the page rollups (`_page_rollups.py`); caught up after commits, kept right where
stored rows change or go.

Commits store spans, feedback and scores only, each commit stamping its rows with `ingested_at` (strictly
increasing in this process). `llmlens_meta` keeps three watermarks: every span (feedback event, score)
stamped at or before its watermark is in these structures. A catch-up adds what was stamped after them and moves
them in one transaction, so each row is added exactly once whether the process dies before, during or
after it; the store catches up when it opens, before it updates or deletes stored rows, and before a
page reads these tables. A lookup by id reads the hours the map gives plus what was stamped after the
watermark (a few row groups at the end of the table).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from .._columns import SPAN_COLUMNS
from .._located import Located
from ..rollups._page_tables import (
    FEEDBACK_CALLS,
    FEEDBACK_ROLLUPS,
    PAGE_ROLLUPS,
    SCORE_CALLS,
    SCORE_ROLLUPS,
    SCORED_CALL_COLUMNS,
    SLOW_CALL_COLUMNS,
    SLOW_CALLS,
    SPAN_ROLLUPS,
)
from . import _feedback_calls, _score_calls
from ._id_index import FEEDBACK_IDS, MAPS, SPAN_ID_COLUMNS, SPAN_IDS, IdMap, hash_canary, hour_sql, hour_start
from ._page_rollups import PageRollupMaintainer, create_tables

SPANS_KEY = "indexes_spans_through_us"
FEEDBACK_KEY = "indexes_feedback_through_us"
SCORES_KEY = "indexes_scores_through_us"
HASH_KEY = "indexes_hash_canary"
# A catch-up is due this long after the first commit it would cover, or once it would cover this many rows.
CATCH_UP_AFTER_S = 5.0
CATCH_UP_AFTER_ROWS = 100_000
# Messages up to this many are located through the id maps; more are joined with the tables instead.
_LOCATE_AT_MOST = 256
# The tables a page reads that a catch-up fills (a read of them catches up first).
TABLES = (
    FEEDBACK_CALLS,
    SCORE_CALLS,
    SLOW_CALLS,
    *(r.table(g) for r in PAGE_ROLLUPS for g in ("hour", "day")),
)
READS_TABLES = re.compile(
    r"\b(?:" + "|".join(re.escape(t.removeprefix("store.")) for t in TABLES) + r")\b", re.IGNORECASE
)
# Span columns whose change moves a span in the id map, the page rollups or feedback_calls.
_ID_COLUMNS = frozenset(SPAN_ID_COLUMNS)
_CALL_COLUMNS = frozenset(_feedback_calls.CALL_COLUMNS)
_SCORED_COLUMNS = frozenset(SCORED_CALL_COLUMNS)
_NEW_SPANS = "indexes_new_spans"
_EPOCH = dt.datetime(1970, 1, 1)


_DELETE = re.compile(
    r"^\s*DELETE\s+FROM\s+store\.(spans|feedback|scores)\s+WHERE\s+(?P<where>.+?)\s*;?\s*$", re.S | re.I
)


def deleted_table(sql: str) -> tuple[str, str] | None:
    """(table, condition) of a trusted `DELETE FROM store.spans|feedback|scores WHERE ...`; None for other SQL."""
    match = _DELETE.match(sql)
    return (match.group(1).lower(), match["where"]) if match else None


def _referenced_span_columns() -> tuple[str, ...]:
    text = " ".join(r.aggregate_sql("x", "b") for r in SPAN_ROLLUPS)
    wanted = {"project", "kind", "timestamp", *SPAN_ID_COLUMNS, *_feedback_calls.CALL_COLUMNS, *SCORED_CALL_COLUMNS}
    wanted |= {c for c, _ in SLOW_CALL_COLUMNS}
    return tuple(c for c, _, _ in SPAN_COLUMNS if c in wanted or re.search(rf"\b{c}\b", text))


# The span columns a catch-up copies out of the table once, for every structure to read.
_CAUGHT_UP_COLUMNS = _referenced_span_columns()
_ROLLUP_COLUMNS = frozenset(c for c in _CAUGHT_UP_COLUMNS if c not in ("project", "timestamp"))


def _ts(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


def _meta(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    row = con.execute("SELECT value FROM llmlens_meta WHERE key = ?", [key]).fetchone()
    return str(row[0]) if row else None


def _set_meta(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    con.execute("INSERT OR REPLACE INTO llmlens_meta VALUES (?, ?)", [key, value])


def _top_stamp(con: duckdb.DuckDBPyConnection, table: str, after: dt.datetime = _EPOCH) -> int:
    """The latest `ingested_at` of `table` (µs since the epoch) if later than `after`, else 0."""
    row = con.execute(f"SELECT epoch_us(max(ingested_at)) FROM {table} WHERE ingested_at > ?", [after]).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def create_index_tables(con: duckdb.DuckDBPyConnection) -> None:
    for id_map in MAPS:
        id_map.create(con)
    _feedback_calls.create_table(con)
    _score_calls.create_table(con)
    create_tables(con)


def build_indexes(con: duckdb.DuckDBPyConnection) -> None:
    """Inside the caller's transaction: every structure made from all stored spans and feedback
    (a migration, or a DuckDB that hashes ids differently)."""
    create_index_tables(con)
    for id_map in MAPS:
        id_map.rebuild(con)
    _feedback_calls.rebuild(con)
    _score_calls.rebuild(con)
    PageRollupMaintainer().rebuild(con, PAGE_ROLLUPS)
    _set_meta(con, SPANS_KEY, str(_top_stamp(con, "store.spans")))
    _set_meta(con, FEEDBACK_KEY, str(_top_stamp(con, "store.feedback")))
    _set_meta(con, SCORES_KEY, str(_top_stamp(con, "store.scores")))
    _set_meta(con, HASH_KEY, hash_canary(con))


def build_score_rollups(con: duckdb.DuckDBPyConnection) -> None:
    """Inside the caller's transaction: scores beside their calls and the score rollups, made from every
    stored score and call."""
    _score_calls.rebuild(con)
    create_tables(con)
    PageRollupMaintainer().rebuild(con, SCORE_ROLLUPS)
    _set_meta(con, SCORES_KEY, str(_top_stamp(con, "store.scores")))


@dataclass(slots=True)
class _Deletion:
    table: str  # spans, feedback or scores
    hours: dict[str, set[int]] = field(default_factory=dict)


class WriteIndexes:
    """The watermarks, and the rows committed since the last catch-up."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.spans_through_us = 0
        self.feedback_through_us = 0
        self.scores_through_us = 0
        self.pending = 0
        self._pending_since: float | None = None
        self.rollups = PageRollupMaintainer()
        self.ready = False  # the tables exist (a read-only store from before them has none)
        # The map's keys are this DuckDB's hashes (a read-only open by a DuckDB that hashes otherwise scans).
        self.maps_usable = False

    def open(self, con: duckdb.DuckDBPyConnection, *, writable: bool) -> None:
        """Read the watermarks; a writable store whose DuckDB hashes ids differently rebuilds the maps, and
        catches up what a killed process committed. A read-only store with rows past the watermarks answers
        pages from raw rows (`caught_up` False)."""
        row = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'store' AND table_name = ?",
            [FEEDBACK_CALLS.removeprefix("store.")],
        ).fetchone()
        self.ready = bool(row and row[0])
        if not self.ready:
            return
        self.spans_through_us = int(_meta(con, SPANS_KEY) or 0)
        self.feedback_through_us = int(_meta(con, FEEDBACK_KEY) or 0)
        self.scores_through_us = int(_meta(con, SCORES_KEY) or 0)
        same_hash = _meta(con, HASH_KEY) == hash_canary(con)
        if writable and not same_hash:
            con.execute("BEGIN TRANSACTION")
            try:
                for id_map in MAPS:
                    id_map.rebuild(con, "ingested_at <= ?", [_ts(self._through(id_map))])
                _set_meta(con, HASH_KEY, hash_canary(con))
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
            same_hash = True
        self.maps_usable = same_hash
        self.pending = self._unmapped(con)
        if self.pending:
            self._pending_since = self._clock()
            if writable:
                self.catch_up(con)

    def _through(self, id_map: IdMap) -> int:
        return self.feedback_through_us if id_map is FEEDBACK_IDS else self.spans_through_us

    def _unmapped(self, con: duckdb.DuckDBPyConnection) -> int:
        row = con.execute(
            "SELECT (SELECT count(*) FROM store.spans WHERE ingested_at > ?) "
            "+ (SELECT count(*) FROM store.feedback WHERE ingested_at > ?) "
            "+ (SELECT count(*) FROM store.scores WHERE ingested_at > ?)",
            [_ts(self.spans_through_us), _ts(self.feedback_through_us), _ts(self.scores_through_us)],
        ).fetchone()
        return int(row[0]) if row else 0

    @property
    def caught_up(self) -> bool:
        return self.ready and not self.pending

    # -- catching up --------------------------------------------------------------------------------

    def committed(self, rows: int) -> None:
        if rows and self.ready:
            self.pending += rows
            if self._pending_since is None:
                self._pending_since = self._clock()

    @property
    def due(self) -> bool:
        since = self._pending_since
        if not self.pending or since is None:
            return False
        return self.pending >= CATCH_UP_AFTER_ROWS or self._clock() - since >= CATCH_UP_AFTER_S

    def catch_up(self, con: duckdb.DuckDBPyConnection) -> int:
        """Add every span, feedback event and score stamped after the watermarks and move them, in a
        transaction of its own; returns how many rows it added. The caller holds the store's write lock."""
        if not self.ready:
            return 0
        spans_since, feedback_since = _ts(self.spans_through_us), _ts(self.feedback_through_us)
        scores_since = _ts(self.scores_through_us)
        con.execute("BEGIN TRANSACTION")
        try:
            spans_top = _top_stamp(con, "store.spans", spans_since) or self.spans_through_us
            feedback_top = _top_stamp(con, "store.feedback", feedback_since) or self.feedback_through_us
            scores_top = _top_stamp(con, "store.scores", scores_since) or self.scores_through_us
            added = 0
            if spans_top > self.spans_through_us:
                added += self._add_spans(con, spans_since, _ts(spans_top))
            added += self._add_scores(con, spans_top, scores_since, scores_top)
            if feedback_top > self.feedback_through_us:
                new_feedback = "ingested_at > ? AND ingested_at <= ?"
                added += FEEDBACK_IDS.add(con, new_feedback, [feedback_since, _ts(feedback_top)])
            self._refresh_new_messages(con, spans_top, feedback_since, feedback_top)
            for id_map in MAPS:
                id_map.compact_if_due(con)
            if self.rollups.due:
                self.rollups.compact(con)
            _set_meta(con, SPANS_KEY, str(spans_top))
            _set_meta(con, FEEDBACK_KEY, str(feedback_top))
            _set_meta(con, SCORES_KEY, str(scores_top))
            con.execute(f"DROP TABLE IF EXISTS {_NEW_SPANS}")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        self.spans_through_us, self.feedback_through_us = spans_top, feedback_top
        self.scores_through_us = scores_top
        self.pending = 0
        self._pending_since = None
        return added

    def _add_spans(self, con: duckdb.DuckDBPyConnection, since: dt.datetime, until: dt.datetime) -> int:
        columns = ", ".join(f'"{c}"' for c in _CAUGHT_UP_COLUMNS)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_NEW_SPANS} AS SELECT {columns} FROM store.spans "
            "WHERE ingested_at > ? AND ingested_at <= ?",
            [since, until],
        )
        bounds = f"SELECT count(*), min(timestamp), max(timestamp) FROM {_NEW_SPANS}"
        count, first, last = con.execute(bounds).fetchone() or (0, None, None)
        if not count:
            return 0
        con.execute(f"INSERT INTO {SPAN_IDS.recent} {SPAN_IDS.rows_sql('TRUE', relation=_NEW_SPANS)}")
        self.rollups.append(con, _NEW_SPANS, first, last)
        return int(count)

    def _rescore(self, con: duckdb.DuckDBPyConnection, hours: dict[str, set[int]]) -> None:
        """`hours` ({project: hours}) of score_calls and the score rollups made again from the calls and scores
        caught up."""
        spans_until, scores_until = _ts(self.spans_through_us), _ts(self.scores_through_us)
        for project, project_hours in hours.items():
            _score_calls.recompute(con, project, project_hours, spans_until, scores_until)
        self.rollups.recompute(con, SCORE_ROLLUPS, hours)

    def _add_scores(
        self, con: duckdb.DuckDBPyConnection, spans_top: int, scores_since: dt.datetime, scores_top: int
    ) -> int:
        """score_calls rows of the calls caught up now with the scores caught up before, and of the new
        scores with every call caught up (through `spans_top`); the score rollup hours they touch made
        again. Returns how many new scores there were."""
        hours: dict[str, set[int]] = defaultdict(set)
        if spans_top > self.spans_through_us:
            old_scores = "(SELECT * FROM store.scores WHERE ingested_at <= ?)"
            for project, added in _score_calls.add(con, old_scores, _NEW_SPANS, params=[scores_since]).items():
                hours[project] |= added
        new = 0
        if scores_top > self.scores_through_us:
            new_scores = "ingested_at > ? AND ingested_at <= ?"
            window = [scores_since, _ts(scores_top)]
            by_project: dict[str, list[str]] = defaultdict(list)
            for project, span_id, n in con.execute(
                f"SELECT project, span_id, count(*) FROM store.scores WHERE {new_scores} GROUP BY ALL", window
            ).fetchall():
                new += int(n)
                if span_id is not None:
                    by_project[str(project)].append(str(span_id))
            if by_project:
                where, params = self._in_hours(con, SPAN_IDS, by_project, "scored")
                for project, added in _score_calls.add(
                    con,
                    f"(SELECT * FROM store.scores WHERE {new_scores})",
                    "store.spans",
                    f"ingested_at <= ? AND {where}",
                    [_ts(spans_top), *params, *window],
                ).items():
                    hours[project] |= added
                con.execute("DROP TABLE IF EXISTS indexes_hours_scored")
        self.rollups.recompute(con, SCORE_ROLLUPS, hours)
        return new

    def _refresh_new_messages(
        self, con: duckdb.DuckDBPyConnection, spans_top: int, feedback_since: dt.datetime, feedback_top: int
    ) -> None:
        """Remake the feedback_calls rows of the messages with new feedback, and of new calls whose message
        has feedback (the feedback map says which may have: a false match only costs a refresh)."""
        feedback_until = _ts(feedback_top)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_feedback_calls.MESSAGES} AS "
            "SELECT DISTINCT project, message_id FROM store.feedback WHERE ingested_at > ? AND ingested_at <= ?",
            [feedback_since, feedback_until],
        )
        if spans_top > self.spans_through_us:
            key = FEEDBACK_IDS.key_of("n.message_id")
            mapped = (
                f"SELECT project, key FROM {FEEDBACK_IDS.runs} UNION ALL SELECT project, key FROM {FEEDBACK_IDS.recent}"
            )
            con.execute(
                f"INSERT INTO {_feedback_calls.MESSAGES} SELECT DISTINCT n.project, n.message_id FROM {_NEW_SPANS} n "
                f"WHERE n.kind = 'llm' AND n.message_id IS NOT NULL AND (n.project, {key}) IN ({mapped})"
            )
        self._refresh(con, _ts(spans_top), feedback_until)

    def _refresh(self, con: duckdb.DuckDBPyConnection, spans_until: dt.datetime, feedback_until: dt.datetime) -> None:
        """Remake the feedback_calls rows of the messages in `fc_messages` and the feedback rollup hours they touch."""
        messages = con.execute(f"SELECT project, message_id FROM {_feedback_calls.MESSAGES}").fetchall()
        if not messages:
            return
        by_project: dict[str, list[str]] = defaultdict(list)
        for project, message_id in messages:
            by_project[str(project)].append(str(message_id))
        calls_where, calls_params = self._in_hours(con, SPAN_IDS, by_project, "calls")
        feedback_where, feedback_params = self._in_hours(con, FEEDBACK_IDS, by_project, "feedback")
        touched = _feedback_calls.refresh(
            con,
            f"ingested_at <= ? AND {calls_where}",
            [spans_until, *calls_params],
            f"ingested_at <= ? AND {feedback_where}",
            [feedback_until, *feedback_params],
        )
        self.rollups.recompute(con, FEEDBACK_ROLLUPS, touched)
        for name in ("calls", "feedback"):
            con.execute(f"DROP TABLE IF EXISTS indexes_hours_{name}")

    def _in_hours(
        self, con: duckdb.DuckDBPyConnection, id_map: IdMap, ids: dict[str, list[str]], name: str
    ) -> tuple[str, list[object]]:
        """A condition on source rows: in the hours the map gives for `ids` ({project: ids}); TRUE (every
        row) when they are too many to look up one by one."""
        if sum(len(v) for v in ids.values()) > _LOCATE_AT_MOST:
            return "TRUE", []
        rows = [
            (project, hour) for project, project_ids in ids.items() for hour in id_map.hours(con, project, project_ids)
        ]
        if not rows:
            return "FALSE", []
        table = f"indexes_hours_{name}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} (project VARCHAR, hour INTEGER)")
        con.executemany(f"INSERT INTO {table} VALUES (?, ?)", rows)
        hours = [h for _, h in rows]
        in_hours = f"(project, {hour_sql('timestamp')}) IN (SELECT project, hour FROM {table})"
        return f"timestamp >= ? AND timestamp < ? AND {in_hours}", [hour_start(min(hours)), hour_start(max(hours) + 1)]

    # -- lookups --------------------------------------------------------------------------------------

    def locate(self, cur: duckdb.DuckDBPyConnection, project: str, ids: Sequence[str], source: str) -> Located | None:
        """Where spans (`source` "spans") or feedback ("feedback") with any of `ids` may be; None when the
        maps cannot say (the caller reads every row)."""
        if not self.maps_usable:
            return None
        id_map = FEEDBACK_IDS if source == "feedback" else SPAN_IDS
        # Read before the map: rows stamped up to it are in the map as read below (it only grows).
        through = self._through(id_map)
        return Located(id_map.hours(cur, project, ids), _ts(through))

    # -- stored rows that change or go --------------------------------------------------------------

    def deleting(
        self, con: duckdb.DuckDBPyConnection, table: str, where: str, params: Sequence[Any] | dict[str, Any]
    ) -> _Deletion:
        """Inside the transaction of a DELETE FROM store.<table> WHERE `where`, before it runs (the store has
        caught up): what the rows about to go are part of."""
        deletion = _Deletion(table)
        if table == "scores":
            deletion.hours = _score_calls.hours_of_scores(con, where, params)
            return deletion
        source = f"store.{table}"
        for project, hour in con.execute(
            f"SELECT DISTINCT project, {hour_sql('timestamp')} FROM {source} WHERE {where}", params
        ).fetchall():
            deletion.hours.setdefault(str(project), set()).add(int(hour))
        llm_only = " AND kind = 'llm'" if table == "spans" else ""
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_feedback_calls.MESSAGES} AS SELECT DISTINCT project, message_id "
            f"FROM {source} WHERE ({where}){llm_only} AND message_id IS NOT NULL",
            params,
        )
        return deletion

    def deleted(self, con: duckdb.DuckDBPyConnection, deletion: _Deletion) -> None:
        """Inside the same transaction, after the DELETE: what those rows were part of, made again from what is left."""
        if deletion.table == "scores":
            self._rescore(con, deletion.hours)
            return
        id_map = SPAN_IDS if deletion.table == "spans" else FEEDBACK_IDS
        spans_until, feedback_until = _ts(self.spans_through_us), _ts(self.feedback_through_us)
        until = spans_until if deletion.table == "spans" else feedback_until
        for project, hours in deletion.hours.items():
            wanted = sorted(hours)
            id_map.forget_hours(con, project, wanted)
            id_map.add(
                con,
                f"project = ? AND timestamp >= ? AND timestamp < ? AND {hour_sql('timestamp')} IN "
                "(SELECT unnest(?::INTEGER[])) AND ingested_at <= ?",
                [project, hour_start(wanted[0]), hour_start(wanted[-1] + 1), wanted, until],
            )
        if deletion.table == "spans":
            self.rollups.recompute(
                con, SPAN_ROLLUPS, deletion.hours, source_filter="ingested_at <= ?", source_params=(spans_until,)
            )
            self._rescore(con, deletion.hours)
        self._refresh(con, spans_until, feedback_until)

    def spans_updated(
        self, con: duckdb.DuckDBPyConnection, project: str, span_ids: Sequence[str], columns: Iterable[str]
    ) -> None:
        """Inside the transaction that changed `columns` of stored spans (the store has caught up): the id
        map, page rollups and feedback_calls follow."""
        changed = set(columns)
        if not changed & (_ID_COLUMNS | _ROLLUP_COLUMNS | _CALL_COLUMNS) or not span_ids:
            return
        ids = list(dict.fromkeys(span_ids))
        where, params = self._in_hours(con, SPAN_IDS, {project: ids}, "calls")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE indexes_updated AS SELECT span_id, kind, message_id, "
            f"{hour_sql('timestamp')} AS hour FROM store.spans WHERE project = ? AND ingested_at <= ? AND {where} "
            "AND span_id IN (SELECT unnest(?::VARCHAR[]))",
            [project, _ts(self.spans_through_us), *params, ids],
        )
        hours = [int(r[0]) for r in con.execute("SELECT DISTINCT hour FROM indexes_updated").fetchall()]
        if changed & _ID_COLUMNS:
            # New ids join the map; an id a span no longer has only costs a wasted hour.
            SPAN_IDS.add(
                con,
                "project = ? AND span_id IN (SELECT span_id FROM indexes_updated) AND timestamp >= ? AND timestamp < ?",
                [project, hour_start(min(hours)), hour_start(max(hours) + 1)] if hours else [project, _EPOCH, _EPOCH],
            )
        if changed & _ROLLUP_COLUMNS and hours:
            self.rollups.recompute(
                con,
                SPAN_ROLLUPS,
                {project: hours},
                source_filter="ingested_at <= ?",
                source_params=(_ts(self.spans_through_us),),
            )
        if changed & _SCORED_COLUMNS and hours:
            # The hours of the changed calls that have scores (their rows here say).
            scored = con.execute(
                f"SELECT DISTINCT {hour_sql('called_at')} FROM {SCORE_CALLS} WHERE project = ? "
                "AND called_at >= ? AND called_at < ? AND span_id IN (SELECT span_id FROM indexes_updated)",
                [project, hour_start(min(hours)), hour_start(max(hours) + 1)],
            ).fetchall()
            self._rescore(con, {project: {int(h) for (h,) in scored}})
        if changed & _CALL_COLUMNS:
            # The messages the spans rated before (their rows name them) and those they name now.
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {_feedback_calls.MESSAGES} AS "
                f"SELECT project, message_id FROM {FEEDBACK_CALLS} WHERE project = ? "
                "AND span_id IN (SELECT span_id FROM indexes_updated) "
                "UNION SELECT ?, message_id FROM indexes_updated WHERE kind = 'llm' AND message_id IS NOT NULL",
                [project, project],
            )
            self._refresh(con, _ts(self.spans_through_us), _ts(self.feedback_through_us))
        con.execute("DROP TABLE IF EXISTS indexes_updated")
        con.execute("DROP TABLE IF EXISTS indexes_hours_calls")

    def rebuild_rollups(self, con: duckdb.DuckDBPyConnection) -> None:
        """Inside a transaction (caught up): the page rollups made again from the stored rows (after a reprice)."""
        if self.ready:
            self.rollups.rebuild(con, PAGE_ROLLUPS)
