"""Where rows with some ids may be, as a store's id map answers: the query layer reads only there."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Located:
    """The hours (since the epoch) that may hold rows with the ids; and, where the map trails the table,
    the time after which stored rows are not mapped yet (read them too). None: every row is mapped."""

    hours: list[int]
    unmapped_after: dt.datetime | None
