"""The ClickHouse backend: the same store on a server that several llmlens servers can share."""

from ._connection import ClickHouseUrl
from ._store import ClickHouseStore

__all__ = ["ClickHouseStore", "ClickHouseUrl"]
