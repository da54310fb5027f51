"""Connecting to ClickHouse: the store URL, one native-protocol client per thread, server features."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from clickhouse_driver import Client
from clickhouse_driver.errors import NetworkError, ServerException, SocketTimeoutError

from .._protocol import StoreUnavailable

# A cluster's name as ClickHouse's configuration allows it (an XML element name).
_CLUSTER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class ClickHouseUrl:
    """`clickhouse://user:pass@host:port/db?retention_days=N&cluster=NAME`."""

    host: str
    port: int
    user: str
    password: str
    database: str
    retention_days: int = 0
    secure: bool = False
    # The cluster (ClickHouse's `remote_servers`) the schema is spread over; None: one server.
    cluster: str | None = None

    @classmethod
    def parse(cls, url: str) -> ClickHouseUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("clickhouse", "clickhouses"):
            raise ValueError(f"not a ClickHouse URL: {url!r}")
        query = parse_qs(parts.query)
        database = unquote(parts.path.lstrip("/")) or "default"
        if not database.replace("_", "").isalnum():
            raise ValueError(f"ClickHouse database name must be letters, digits and _, got {database!r}")
        retention = query.get("retention_days", ["0"])[0]
        if not retention.isdigit():
            raise ValueError(f"retention_days must be a whole number of days, got {retention!r}")
        cluster = query.get("cluster", [None])[0]
        if cluster is not None:
            check_cluster_name(cluster)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (9440 if parts.scheme == "clickhouses" else 9000),
            user=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=database,
            retention_days=int(retention),
            secure=parts.scheme == "clickhouses",
            cluster=cluster,
        )

    def on_cluster(self, cluster: str) -> ClickHouseUrl:
        check_cluster_name(cluster)
        return replace(self, cluster=cluster)

    def redacted(self) -> str:
        """The URL without its password, safe to show and log (with its cluster: commands quote it)."""
        scheme = "clickhouses" if self.secure else "clickhouse"
        cluster = f"?cluster={quote(self.cluster)}" if self.cluster else ""
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.database}{cluster}"


def check_cluster_name(name: str) -> None:
    if not _CLUSTER_NAME.match(name):
        raise ValueError(
            f"cluster must name a cluster of the ClickHouse configuration (letters, digits, _ . -), got {name!r}"
        )


@dataclass(frozen=True, slots=True)
class ServerFeatures:
    """What the connected server can do; 18.16 (Debian's package) is the oldest we support."""

    version: tuple[int, int, int]
    functions: frozenset[str]
    settings: frozenset[str] = frozenset()

    @property
    def ttl(self) -> bool:
        """Table TTL clauses arrived in 19.6."""
        return self.version >= (19, 6, 0)

    @property
    def datetime64(self) -> bool:
        """Sub-second timestamps: DateTime64 plus fromUnixTimestamp64Micro (20.5)."""
        return self.version >= (20, 5, 0) and "fromUnixTimestamp64Micro" in self.functions

    @property
    def json_functions(self) -> bool:
        """`JSONExtractString` and friends (19.x); otherwise `visitParamExtract*`."""
        return "JSONExtractString" in self.functions

    @property
    def window_functions(self) -> bool:
        """OVER (...) arrived in 21.1 (experimental) and is on by default from 21.9."""
        return self.version >= (21, 9, 0)

    @property
    def mutations_sync(self) -> bool:
        """`mutations_sync`: an ALTER ... UPDATE/DELETE that returns once applied (no polling)."""
        return "mutations_sync" in self.settings

    @property
    def lightweight_delete(self) -> bool:
        """`DELETE FROM t WHERE ...` marks rows deleted at once instead of rewriting parts (GA in 23.3)."""
        return self.version >= (23, 3, 0)

    @property
    def exact_percentile(self) -> bool:
        """`quantileExactInclusive` computes percentile_cont exactly (R7 interpolation)."""
        return "quantileExactInclusive" in self.functions


# Makes a client for a database: the driver's by default; the tests pass one that runs ClickHouse in process.
ClientFactory = Callable[[ClickHouseUrl, str], Any]

# Failures that say "ClickHouse (or a node behind it) is not there right now", not "this statement is wrong".
_UNREACHABLE = (NetworkError, SocketTimeoutError, EOFError, OSError)
_UNAVAILABLE_CODES = frozenset(
    {
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT (between nodes)
        210,  # NETWORK_ERROR (between nodes)
        225,  # NO_ZOOKEEPER
        242,  # TABLE_IS_READ_ONLY: a replica that lost (or has not yet regained) ZooKeeper
        252,  # TOO_MANY_PARTS: inserts faster than merges; later is fine
        279,  # ALL_CONNECTION_TRIES_FAILED: no replica of a shard answers
        319,  # UNKNOWN_STATUS_OF_INSERT: the connection broke mid-insert; a retry is deduplicated
        999,  # KEEPER_EXCEPTION
    }
)

# Settings of every statement on a cluster (`?cluster=NAME`). Inserts into a Distributed table return once
# a replica of each shard has the rows (an acknowledged event is stored), and reads and writes go to the
# first replica of each shard that answers, in the configured order: a batch re-sent through another
# llmlens server is checked for duplicates on the replica that took its first copy, even before the
# other replicas have fetched it. A replica more than a few seconds behind (back from an outage, still
# fetching) is passed over for reads until it has caught up. An IN (subquery) or an external table on a
# Distributed table is computed once, by the node llmlens talks to, and sent to the shards.
CLUSTER_SETTINGS: dict[str, Any] = {
    "insert_distributed_sync": 1,
    "load_balancing": "in_order",
    "prefer_localhost_replica": 0,
    "max_replica_delay_for_distributed_queries": 5,
    "distributed_product_mode": "global",
}


class ClickHouseUnavailable(StoreUnavailable):
    """StoreUnavailable from the ClickHouse driver; `reason` is the driver's or server's own words."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class GuardedClient:
    """A driver client whose failures to reach ClickHouse raise ClickHouseUnavailable, naming the store."""

    def __init__(self, client: Any, location: str) -> None:
        self._client = client
        self._location = location

    def execute(self, query: str, params: Any = None, **kwargs: Any) -> Any:
        try:
            return self._client.execute(query, params, **kwargs)
        except _UNREACHABLE as exc:
            reason = _short(exc)
            raise ClickHouseUnavailable(f"the store {self._location} cannot be reached: {reason}", reason) from None
        except ServerException as exc:
            if exc.code in _UNAVAILABLE_CODES:
                reason = _short(exc)
                raise ClickHouseUnavailable(f"the store {self._location} cannot answer now: {reason}", reason) from None
            raise

    def disconnect(self) -> None:
        self._client.disconnect()


def _short(exc: BaseException) -> str:
    """The first line of a driver or server error, without its stack trace."""
    text = str(getattr(exc, "message", None) or exc or type(exc).__name__)
    return text.split("Stack trace:")[0].strip().splitlines()[0].removeprefix("DB::Exception: ").strip()


class ClientPool:
    """One driver client per thread: a client holds one connection and is not thread-safe."""

    def __init__(
        self, url: ClickHouseUrl, *, connect_timeout_s: float = 10.0, factory: ClientFactory | None = None
    ) -> None:
        self._url = url
        self._connect_timeout_s = connect_timeout_s
        self._factory = factory
        self._local = threading.local()
        self._all: list[GuardedClient] = []
        self._lock = threading.Lock()

    def new_client(self, database: str | None = None) -> GuardedClient:
        u = self._url
        if self._factory is not None:
            made = self._factory(u, database if database is not None else u.database)
        else:
            settings: dict[str, Any] = {"strings_as_bytes": False}
            if u.cluster:
                settings.update(CLUSTER_SETTINGS)
            made = Client(
                u.host,
                port=u.port,
                user=u.user,
                password=u.password,
                database=database if database is not None else u.database,
                secure=u.secure,
                connect_timeout=self._connect_timeout_s,
                send_receive_timeout=600,
                settings=settings,
            )
        client = GuardedClient(made, u.redacted())
        with self._lock:
            self._all.append(client)
        return client

    def client(self) -> GuardedClient:
        client: GuardedClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self.new_client()
            self._local.client = client
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._all = self._all, []
        for client in clients:
            client.disconnect()


def server_features(client: GuardedClient) -> ServerFeatures:
    rows: list[Any] = client.execute("SELECT version()")
    numbers = [int(p) for p in str(rows[0][0]).split(".")[:3] if p.isdigit()]
    version = (*numbers, 0, 0, 0)[:3]
    names = client.execute("SELECT name FROM system.functions")
    settings = client.execute("SELECT name FROM system.settings WHERE name IN ('mutations_sync')")
    return ServerFeatures(
        version=(version[0], version[1], version[2]),
        functions=frozenset(r[0] for r in names),
        settings=frozenset(r[0] for r in settings),
    )
