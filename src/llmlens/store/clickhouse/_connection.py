"""Connecting to ClickHouse: the store URL, one native-protocol client per thread, server features."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from clickhouse_driver import Client


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
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (9440 if parts.scheme == "clickhouses" else 9000),
            user=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=database,
            retention_days=int(retention),
            secure=parts.scheme == "clickhouses",
        )

    def redacted(self) -> str:
        """The URL without its password, safe to show and log."""
        scheme = "clickhouses" if self.secure else "clickhouse"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.database}"


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


class ClientPool:
    """One `clickhouse_driver.Client` per thread: a client holds one connection and is not thread-safe."""

    def __init__(
        self, url: ClickHouseUrl, *, connect_timeout_s: float = 10.0, factory: ClientFactory | None = None
    ) -> None:
        self._url = url
        self._connect_timeout_s = connect_timeout_s
        self._factory = factory
        self._local = threading.local()
        self._all: list[Client] = []
        self._lock = threading.Lock()

    def new_client(self, database: str | None = None) -> Client:
        u = self._url
        if self._factory is not None:
            made: Client = self._factory(u, database if database is not None else u.database)
            with self._lock:
                self._all.append(made)
            return made
        client = Client(
            u.host,
            port=u.port,
            user=u.user,
            password=u.password,
            database=database if database is not None else u.database,
            secure=u.secure,
            connect_timeout=self._connect_timeout_s,
            send_receive_timeout=600,
            settings={"strings_as_bytes": False},
        )
        with self._lock:
            self._all.append(client)
        return client

    def client(self) -> Client:
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self.new_client()
            self._local.client = client
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._all = self._all, []
        for client in clients:
            client.disconnect()


def server_features(client: Client) -> ServerFeatures:
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
