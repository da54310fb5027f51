"""Scheduled exports (the `exports` setting): every completed period of a view, written to a folder.

Periods are aligned to the Unix epoch (`every = "1d"` exports whole UTC days) and a period is
exported `delay` after it ends, so late spans are in it. The last exported period is kept in
`<folder>/.llmlens-export-state.json`; after downtime the missed periods are exported in turn. The
first run exports only the last completed period: use `llmlens export` for a backfill.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmlens._private_files import write_private_file
from llmlens.query import utc_now
from llmlens.store import Store

from ._schema import FORMATS, ExportKind, export_kind
from ._times import parse_duration
from ._writer import EXTENSIONS, ExportSpec, export_to_file

logger = logging.getLogger("llmlens.export")

STATE_FILE = ".llmlens-export-state.json"
_EPOCH = dt.datetime(1970, 1, 1)
_MAX_CATCH_UP = 1000


class ExportConfigError(ValueError):
    """A bad `exports` entry; the message names the entry and the field."""


@dataclass(frozen=True, slots=True)
class ScheduledExport:
    folder: Path
    kind: ExportKind
    format: str
    every: dt.timedelta
    delay: dt.timedelta
    project: str

    @property
    def key(self) -> str:
        return f"{self.project}/{self.kind.view}.{self.format}"

    @classmethod
    def from_config(cls, entry: Any, index: int, default_project: str) -> ScheduledExport:
        where = f"exports[{index}]"
        if not isinstance(entry, Mapping):
            raise ExportConfigError(f'{where} must be a table like {{folder = "exports", every = "1d"}}')
        known = {"folder", "kind", "format", "every", "delay", "project"}
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ExportConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        folder = entry.get("folder")
        if not isinstance(folder, str) or not folder:
            raise ExportConfigError(f"{where}.folder must be a folder path")
        if "://" in folder:
            raise ExportConfigError(f"{where}.folder must be a local folder (object-store URLs are not supported)")
        fmt = entry.get("format", "parquet")
        if fmt not in FORMATS:
            raise ExportConfigError(f"{where}.format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        try:
            kind = export_kind(str(entry.get("kind", "llm")))
            every = parse_duration(str(entry.get("every", "1d")), f"{where}.every")
            raw_delay = str(entry.get("delay", "5m")).strip()
            delay = dt.timedelta(0) if raw_delay in ("0", "0s") else parse_duration(raw_delay, f"{where}.delay")
        except ValueError as exc:
            raise ExportConfigError(f"{where}: {exc}") from None
        return cls(
            folder=Path(folder).expanduser(),
            kind=kind,
            format=fmt,
            every=every,
            delay=delay,
            project=str(entry.get("project") or default_project),
        )


def jobs_from_settings(entries: list[Any], default_project: str) -> list[ScheduledExport]:
    return [ScheduledExport.from_config(e, i, default_project) for i, e in enumerate(entries)]


def _stamp(t: dt.datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%SZ")


def file_for(job: ScheduledExport, start: dt.datetime, end: dt.datetime) -> Path:
    view = job.kind.view
    return job.folder / view / f"{view}-{_stamp(start)}-{_stamp(end)}.{EXTENSIONS[job.format]}"


class ExportScheduler:
    """Runs the due exports on a daemon thread; `run_due(now)` is the whole job, callable directly."""

    def __init__(
        self,
        store: Store,
        jobs: list[ScheduledExport],
        *,
        clock: Callable[[], dt.datetime] = utc_now,
        check_interval_s: float = 30.0,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.clock = clock
        self.check_interval_s = check_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written: list[Path] = []

    def run_due(self, now: dt.datetime | None = None) -> list[Path]:
        now = now or self.clock()
        written: list[Path] = []
        for job in self.jobs:
            try:
                written += self._run_job(job, now)
            except Exception:  # one failing job (full disk, bad folder) must not stop the others
                logger.exception("scheduled export %s to %s failed", job.key, job.folder)
        self.written += written
        return written

    def _run_job(self, job: ScheduledExport, now: dt.datetime) -> list[Path]:
        periods = (now - job.delay - _EPOCH) // job.every
        latest_end = _EPOCH + periods * job.every
        state = _read_state(job.folder)
        last = state.get(job.key)
        start = dt.datetime.fromisoformat(last) if last else latest_end - job.every
        written = []
        for _ in range(_MAX_CATCH_UP):
            end = start + job.every
            if end > latest_end:
                break
            path = file_for(job, start, end)
            rows = export_to_file(self.store, ExportSpec(job.kind, job.project, start, end, job.format), path)
            logger.info("exported %d %s rows to %s", rows, job.kind.view, path)
            state[job.key] = end.isoformat()
            _write_state(job.folder, state)
            written.append(path)
            start = end
        return written

    def start(self) -> None:
        if self._thread is None and self.jobs:
            self._thread = threading.Thread(target=self._run, name="llmlens-export", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_due()
            self._stop.wait(self.check_interval_s)


def _read_state(folder: Path) -> dict[str, str]:
    try:
        doc = json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}


def _write_state(folder: Path, state: dict[str, str]) -> None:
    write_private_file(folder / STATE_FILE, json.dumps(state, indent=2, sort_keys=True).encode())
