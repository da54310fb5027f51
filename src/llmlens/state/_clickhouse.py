"""The shared state's ClickHouse tables: their DDL, a client per thread, newest-version reads, errors.

Every table is a ReplacingMergeTree keyed by what identifies a record, with a `version` column:
a change inserts the whole record again with a larger version, a deletion inserts it with
`deleted = 1`. Readers take the newest version of each key (`ORDER BY version DESC LIMIT 1 BY key`),
which is right whether or not ClickHouse has merged the old versions away yet. That needs no UPDATE,
no lightweight DELETE and no FINAL, so the same statements run on 18.16 and on current releases.
On a cluster (`?cluster=NAME`), each table is replicated on every node (one shard, see
`store/clickhouse/_cluster.py`), made by `llmlens migrate`: a server writes and reads its node's replica.
Filters inside a newest-version read name only columns that never change within a key; conditions
on the others (revoked, deleted, expired) are applied to the newest version, after it is chosen.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from clickhouse_driver import Client

from llmlens.auth import StateUnavailable
from llmlens.store.clickhouse import ClickHouseUrl
from llmlens.store.clickhouse._cluster import Layout
from llmlens.store.clickhouse._connection import ClickHouseUnavailable, GuardedClient

PROJECTS_TABLE = "llmlens_state_projects"
KEYS_TABLE = "llmlens_state_api_keys"
USERS_TABLE = "llmlens_state_users"
MEMBERSHIPS_TABLE = "llmlens_state_memberships"
SESSIONS_TABLE = "llmlens_state_sessions"
SETTINGS_TABLE = "llmlens_shared_settings"

# name -> (columns, sort key). The engine is the same for all: ReplacingMergeTree(version).
STATE_TABLES: dict[str, tuple[str, str]] = {
    PROJECTS_TABLE: (
        "name String, created_at Float64, retention_days Nullable(Int64), version UInt64",
        "name",
    ),
    # Looked up by the secret's hash on every request; a key's hash and id never change.
    KEYS_TABLE: (
        "key_hash String, id String, project String, role String, display String, name Nullable(String), "
        "created_at Float64, revoked_at Nullable(Float64), version UInt64",
        "key_hash",
    ),
    USERS_TABLE: (
        "username String, password_hash String, created_at Float64, server_admin UInt8, version UInt64",
        "username",
    ),
    MEMBERSHIPS_TABLE: ("username String, project String, role String, version UInt64", "username, project"),
    SESSIONS_TABLE: (
        "token_hash String, username String, csrf_token String, created_at Float64, expires_at Float64, "
        "deleted UInt8, version UInt64",
        "token_hash",
    ),
    SETTINGS_TABLE: (
        "project String, kind String, name String, value String, updated_at Float64, deleted UInt8, version UInt64",
        "project, kind, name",
    ),
}


def state_table_ddl(table: str, *, engine: str = "ReplacingMergeTree(version)") -> str:
    """`engine` lets a replicated cluster use ReplicatedReplacingMergeTree(..., version) instead."""
    columns, key = STATE_TABLES[table]
    return f"CREATE TABLE IF NOT EXISTS {table} ({columns}) ENGINE = {engine} ORDER BY ({key})"


# A lookup runs while a request waits (the auth middleware's, on a key not in the cache): an unreachable
# server must answer 503 in seconds, not hold the request for the store's 10-minute query timeout.
_CONNECT_TIMEOUT_S = 3.0
_QUERY_TIMEOUT_S = 15.0


class StateConnection:
    """One native-protocol client per thread to the database named by a `clickhouse://` URL.

    The database and the state tables are created on the first statement (not in the constructor),
    so a CLI command that fails to reach ClickHouse says so with the URL, as an operation error.
    """

    def __init__(self, url: str) -> None:
        self.config = ClickHouseUrl.parse(url)
        self.location = self.config.redacted()
        self.layout = Layout.of(self.config)
        self._local = threading.local()
        self._clients: list[GuardedClient] = []
        self._lock = threading.Lock()
        self._ready = False

    def _new_client(self, database: str) -> GuardedClient:
        u = self.config
        driver = Client(
            u.host,
            port=u.port,
            user=u.user,
            password=u.password,
            database=database,
            secure=u.secure,
            connect_timeout=_CONNECT_TIMEOUT_S,
            send_receive_timeout=_QUERY_TIMEOUT_S,
            settings={"strings_as_bytes": False},
        )
        client = GuardedClient(driver, self.location)
        with self._lock:
            self._clients.append(client)
        return client

    def _client(self) -> GuardedClient:
        client: GuardedClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._new_client(self.config.database)
        return client

    def _prepare(self) -> None:
        if self._ready:
            return
        if self.layout.clustered:
            self._prepare_on_cluster()
            return
        setup = self._new_client("default")
        try:
            setup.execute(f"CREATE DATABASE IF NOT EXISTS `{self.config.database}`")
        finally:
            setup.disconnect()
        client = self._client()
        for table in STATE_TABLES:
            client.execute(state_table_ddl(table))
        self._ready = True

    def _prepare_on_cluster(self) -> None:
        """Tables missing on this node are made on every node; `llmlens migrate` made them all already, so a
        server starting while another node is down does not wait for it (ON CLUSTER waits for every node)."""
        client = self._client()
        rows = client.execute(
            "SELECT name FROM system.tables WHERE database = currentDatabase() AND name IN %(names)s",
            {"names": tuple(STATE_TABLES)},
        )
        present = {str(r[0]) for r in rows}
        for table in STATE_TABLES:
            if table not in present:
                engine = "ReplacingMergeTree(version)"
                client.execute(self.layout.every_node_ddl(state_table_ddl(table, engine=engine), table, engine))
        self._ready = True

    def prepare(self) -> None:
        """Make the database and the state tables now (`llmlens migrate`); StateUnavailable when unreachable."""
        self.execute("SELECT 1")

    def execute(self, sql: str, params: dict[str, Any] | Sequence[dict[str, Any]] | None = None) -> list[Any]:
        """Rows of a query (or nothing, for other statements); StateUnavailable when the server is unreachable."""
        try:
            self._prepare()
            rows: list[Any] = self._client().execute(sql, params)
        except ClickHouseUnavailable as exc:
            raise StateUnavailable(f"the shared state in {self.location} cannot be reached: {exc.reason}") from None
        return rows

    def insert(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        columns = ", ".join(rows[0])
        self.execute(f"INSERT INTO {table} ({columns}) VALUES", list(rows))

    def newest(self, table: str, columns: str, *, where: str = "", params: dict[str, Any] | None = None) -> list[Any]:
        """The newest version of every key of `table` that `where` (on unchanging columns) selects."""
        key = STATE_TABLES[table][1]
        condition = f" WHERE {where}" if where else ""
        sql = f"SELECT {columns} FROM {table}{condition} ORDER BY version DESC LIMIT 1 BY {key}"
        return self.execute(sql, params or {})

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.disconnect()
