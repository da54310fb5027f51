"""Printing query results: a Rich table for people, JSON or CSV for programs."""

from __future__ import annotations

import csv
import json
import sys
from typing import Any, TextIO


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def print_result(
    columns: list[str],
    rows: list[list[Any]],
    fmt: str = "table",
    *,
    title: str | None = None,
    out: TextIO | None = None,
) -> None:
    from llmlens.server._jsonable import jsonable_rows

    out = out or sys.stdout
    if fmt == "json":
        out.write(json.dumps([dict(zip(columns, r, strict=True)) for r in jsonable_rows(rows)], indent=2) + "\n")
        return
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in jsonable_rows(rows):
            writer.writerow(["" if v is None else v for v in row])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col, overflow="fold", max_width=60)
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    Console(file=out).print(table)
    print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}", file=out)
