"""Exports of the article's views to Parquet, JSON Lines or CSV, on demand and on a schedule."""

from ._schedule import (
    STATE_FILE,
    ExportConfigError,
    ExportScheduler,
    ScheduledExport,
    file_for,
    jobs_from_settings,
)
from ._schema import EXPORT_KINDS, FORMATS, WAREHOUSE_TYPES, ExportKind, ExportType, export_kind, schema_markdown
from ._times import parse_duration, parse_time
from ._writer import EXTENSIONS, MEDIA_TYPES, ExportError, ExportSpec, export_to_file

__all__ = [
    "EXPORT_KINDS",
    "EXTENSIONS",
    "FORMATS",
    "MEDIA_TYPES",
    "STATE_FILE",
    "WAREHOUSE_TYPES",
    "ExportConfigError",
    "ExportError",
    "ExportKind",
    "ExportScheduler",
    "ExportSpec",
    "ExportType",
    "ScheduledExport",
    "export_kind",
    "export_to_file",
    "file_for",
    "jobs_from_settings",
    "parse_duration",
    "parse_time",
    "schema_markdown",
]
