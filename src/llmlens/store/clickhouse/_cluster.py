"""Where the schema lives: on one ClickHouse server, or spread over a cluster (`?cluster=NAME` in the store URL).

On a cluster, every table that grows with the traffic (spans, feedback, scores, the rollups) is a
`Replicated*MergeTree` named `<table>_local` on every node, one replica per node of each shard, behind
a `Distributed` table that has the name llmlens reads and writes. Spans are sharded by (project, span_id)
(feedback and scores by their own ids), so a re-sent record reaches the shard of its first copy, where
the store's check and ReplacingMergeTree find it. Each node's materialized views read its local spans,
so a span is rolled up once, on the node that took the insert; replication copies the result.

Small tables that every server must read alike (schema version, score names, alert rules and history,
the shared state) are replicated on every node as one shard: written anywhere, read locally.

Schema statements run `ON CLUSTER` (ClickHouse's distributed DDL, through ZooKeeper) with every table
named with its database: a node runs them in its default database, not in llmlens'.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from clickhouse_driver import Client
from clickhouse_driver.errors import Error as DriverError

from ._connection import ClickHouseUrl, GuardedClient

# ZooKeeper paths of the replicated tables. `{shard}` and `{replica}` are each node's macros (its
# config's <macros>); tables replicated on every node share one path, so their replicas are named by
# shard and replica, unique over the cluster.
_SHARDED_PATH = "/clickhouse/tables/{{shard}}/{database}/{table}"
_EVERY_NODE_PATH = "/clickhouse/tables/all/{database}/{table}"
_SHARDED_REPLICA = "{replica}"
_EVERY_NODE_REPLICA = "{shard}-{replica}"
_ENGINE = re.compile(r"^\s*(\w+)\s*(?:\((.*)\))?\s*$", re.S)
_CREATE = re.compile(r"^\s*CREATE TABLE IF NOT EXISTS `?(\w+)`?\s")
# Tables and views of the schema, as named inside statements: qualified with the database on a cluster.
_OWN_NAME = re.compile(r"(?<![\w.`])(llmlens_\w+)\b")


class UnknownCluster(ValueError):
    """The store URL names a cluster that the ClickHouse server's configuration does not define."""


def replicated_engine(engine: str, path: str, replica: str) -> str:
    """`ReplacingMergeTree(ingested_at)` -> `ReplicatedReplacingMergeTree('<path>', '<replica>', ingested_at)`."""
    match = _ENGINE.match(engine)
    if match is None or not match.group(1).endswith("MergeTree"):
        raise ValueError(f"not a MergeTree engine: {engine!r}")
    name, args = match.group(1), (match.group(2) or "").strip()
    return f"Replicated{name}('{path}', '{replica}'{', ' + args if args else ''})"


@dataclass(frozen=True, slots=True)
class Layout:
    """How the store's tables are placed: `cluster` None is one server, as before clusters existed."""

    database: str
    cluster: str | None = None

    @classmethod
    def of(cls, url: ClickHouseUrl) -> Layout:
        return cls(url.database, url.cluster)

    @property
    def clustered(self) -> bool:
        return self.cluster is not None

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER `{self.cluster}`" if self.cluster else ""

    def name(self, table: str) -> str:
        """`table` with its database on a cluster (statements run by other nodes need it), else as is."""
        return f"`{self.database}`.`{table}`" if self.cluster else table

    def local(self, table: str) -> str:
        """The table that holds a sharded table's rows on each node."""
        return f"{table}_local" if self.cluster else table

    def target(self, table: str, *, sharded: bool = True) -> str:
        """What an ALTER, DELETE, OPTIMIZE or TRUNCATE of `table` names: on a cluster, the local table of
        every shard (`ON CLUSTER`); a table replicated on every node changes on one replica, the others
        follow through replication."""
        if not self.cluster:
            return table
        if sharded:
            return f"{self.name(self.local(table))}{self.on_cluster}"
        return table

    def qualified(self, sql: str) -> str:
        """`sql` with the schema's own tables named with their database, on a cluster."""
        if not self.cluster:
            return sql
        return _OWN_NAME.sub(lambda m: self.name(m.group(1)), sql)

    def _placed(self, ddl: str, name: str) -> str:
        """A `CREATE TABLE IF NOT EXISTS <table> ...` statement made for `name` on every node of the cluster."""
        match = _CREATE.match(ddl)
        if match is None:
            raise ValueError(f"not a CREATE TABLE IF NOT EXISTS statement: {ddl[:60]!r}")
        return f"CREATE TABLE IF NOT EXISTS {self.name(name)}{self.on_cluster} {ddl[match.end() :]}"

    def sharded_ddl(self, ddl: str, table: str, engine: str, sharding_key: str) -> list[str]:
        """A table that grows with the traffic: as `ddl` on one server; on a cluster, its replicated local
        table and the Distributed table in front (`ddl` names the table and has ENGINE = `engine`)."""
        if not self.cluster:
            return [ddl]
        path = _SHARDED_PATH.format(database=self.database, table=table)
        local = self._placed(ddl, self.local(table)).replace(
            f"ENGINE = {engine}", f"ENGINE = {replicated_engine(engine, path, _SHARDED_REPLICA)}", 1
        )
        front = (
            f"CREATE TABLE IF NOT EXISTS {self.name(table)}{self.on_cluster} AS {self.name(self.local(table))} "
            f"ENGINE = Distributed(`{self.cluster}`, `{self.database}`, `{self.local(table)}`, {sharding_key})"
        )
        return [local, front]

    def every_node_ddl(self, ddl: str, table: str, engine: str) -> str:
        """A small table every server reads alike: on a cluster, replicated on every node (one shard)."""
        if not self.cluster:
            return ddl
        path = _EVERY_NODE_PATH.format(database=self.database, table=table)
        placed = self._placed(ddl, table)
        replicated = replicated_engine(engine, path, _EVERY_NODE_REPLICA)
        return placed.replace(f"ENGINE = {engine}", f"ENGINE = {replicated}", 1)

    def view_ddl(self, name: str, body: str) -> str:
        return f"CREATE VIEW IF NOT EXISTS {self.name(name)}{self.on_cluster} AS {self.qualified(body)}"

    def materialized_view_ddl(self, name: str, target: str, select: str) -> str:
        """On a cluster, each node's view reads its local rows and writes its local `target`."""
        if self.cluster:
            select = re.sub(r"\b(llmlens_(?:spans|feedback))\b(?!_)", r"\1_local", select)
            target = self.local(target)
        return (
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {self.name(name)}{self.on_cluster} "
            f"TO {self.name(target)} AS {self.qualified(select)}"
        )

    def drop(self, name: str) -> str:
        return f"DROP TABLE IF EXISTS {self.name(name)}{self.on_cluster}"


def check_cluster(client: GuardedClient, layout: Layout, location: str) -> int:
    """Refuse a cluster the server does not define (naming the ones it does), or one whose replicas do not
    name llmlens' database as their default (see the docs). Returns the number of nodes."""
    rows = client.execute(
        "SELECT cluster, groupUniqArray(default_database), count() FROM system.clusters "
        "GROUP BY cluster ORDER BY cluster"
    )
    known = {str(r[0]): ([str(d) for d in r[1]], int(r[2])) for r in rows}
    if layout.cluster not in known:
        names = ", ".join(known) or "none"
        raise UnknownCluster(
            f"the ClickHouse server of {location} has no cluster named {layout.cluster!r}; "
            f"the clusters in its configuration (system.clusters): {names}"
        )
    databases, nodes = known[layout.cluster]
    if databases != [layout.database]:
        raise ValueError(
            f"cluster {layout.cluster!r}: give every replica <default_database>{layout.database}</default_database> "
            f"in <remote_servers> (the statements the shards run name llmlens' tables without their database); "
            f"found {', '.join(repr(d) for d in databases)}"
        )
    return nodes


def replica_addresses(client: GuardedClient, layout: Layout) -> list[tuple[str, int]]:
    rows = client.execute(
        "SELECT host_address, port FROM system.clusters WHERE cluster = %(cluster)s", {"cluster": layout.cluster}
    )
    return [(str(host), int(port)) for host, port in rows]


def wait_for_mutations_on_every_replica(
    url: ClickHouseUrl, addresses: list[tuple[str, int]], *, timeout_s: float = 600.0
) -> None:
    """Until no replica that answers has a mutation of llmlens' database left to do. A replica that is down
    applies them when it comes back (it reads them from ZooKeeper); readers then get the other replicas."""
    deadline = time.monotonic() + timeout_s
    for host, port in addresses:
        client = Client(
            host,
            port=port,
            user=url.user,
            password=url.password,
            database="system",
            secure=url.secure,
            connect_timeout=3,
            send_receive_timeout=60,
        )
        try:
            while _mutations_left(client, url.database):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"ClickHouse at {host}:{port} did not finish a mutation within {timeout_s:g} s")
                time.sleep(0.05)
        finally:
            client.disconnect()


def _mutations_left(client: Client, database: str) -> bool:
    """Whether this replica has mutations left to do; False when it cannot be reached (it catches up on its own)."""
    try:
        rows: Any = client.execute(
            "SELECT count() FROM system.mutations WHERE database = %(db)s AND is_done = 0", {"db": database}
        )
    except (DriverError, OSError, EOFError):
        return False
    return int(rows[0][0]) > 0
