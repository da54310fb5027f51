"""A bounded on-disk spool of encoded batches, for what does not fit in memory during an outage.

One file per batch (gzip NDJSON, exactly the body that will be POSTed), named so that sorting
the names gives the order they were written. A batch is claimed by an atomic rename, so several
processes (forked workers) may share one directory without sending a file twice.

Batches hold prompts and responses: files are made 0600, and folders the spool creates 0700, whatever
the app's umask (the SDK must not change the umask of the process it runs in).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_SUFFIX = ".ndjson.gz"
_CLAIM = ".claimed-"
_FILE_MODE = 0o600
_DIR_MODE = 0o700


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    path: Path  # the claimed file
    body: bytes
    count: int


def _count_from_name(name: str) -> int:
    # <time_ns>-<pid>-<seq>-<count>.ndjson.gz
    try:
        return int(name.split(_SUFFIX)[0].rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


def _make_private_dirs(path: Path) -> None:
    """`mkdir -p` where each folder created is 0700 (existing ones keep their mode)."""
    missing: list[Path] = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=_DIR_MODE)
        except FileExistsError:
            pass  # another process of the app made it first


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DiskSpool:
    """Bounded by total bytes; `put` refuses (returns False) once the bound is reached."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self._dir = Path(directory)
        _make_private_dirs(self._dir)
        self._max_bytes = max_bytes
        self._seq = 0
        self._recover_claims()
        self._maybe_nonempty = True

    def __repr__(self) -> str:
        return f"DiskSpool({str(self._dir)!r}, max_bytes={self._max_bytes})"

    def _recover_claims(self) -> None:
        """Give back batches claimed by processes that died before sending them."""
        for entry in os.scandir(self._dir):
            if _CLAIM not in entry.name:
                continue
            original, _, pid = entry.name.rpartition(_CLAIM)
            if pid.isdigit() and not _pid_alive(int(pid)):
                try:
                    os.rename(entry.path, self._dir / original)
                except OSError:
                    pass

    def _files(self) -> list[os.DirEntry[str]]:
        return sorted(
            (e for e in os.scandir(self._dir) if e.name.endswith(_SUFFIX) and not e.name.startswith(".")),
            key=lambda e: e.name,
        )

    def size_bytes(self) -> int:
        total = 0
        for entry in os.scandir(self._dir):
            try:
                total += entry.stat().st_size
            except OSError:
                pass
        return total

    def event_count(self) -> int:
        return sum(_count_from_name(e.name) for e in self._files())

    def has_room(self, nbytes: int) -> bool:
        return self.size_bytes() + nbytes <= self._max_bytes

    def put(self, body: bytes, count: int) -> bool:
        if self.size_bytes() + len(body) > self._max_bytes:
            return False
        self._seq += 1
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._seq:09d}-{count}{_SUFFIX}"
        tmp = self._dir / f".tmp-{name}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
        os.fchmod(fd, _FILE_MODE)  # a leftover file keeps its old mode through O_CREAT
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        os.replace(tmp, self._dir / name)
        self._maybe_nonempty = True
        return True

    def take(self) -> SpooledBatch | None:
        """Claim the oldest batch, or None when the spool is empty."""
        if not self._maybe_nonempty:
            return None
        for entry in self._files():
            claimed = Path(f"{entry.path}{_CLAIM}{os.getpid()}")
            try:
                os.rename(entry.path, claimed)
            except OSError:
                continue  # another process claimed it first
            body = claimed.read_bytes()
            return SpooledBatch(path=claimed, body=body, count=_count_from_name(entry.name))
        self._maybe_nonempty = False
        return None

    def done(self, batch: SpooledBatch) -> None:
        try:
            os.unlink(batch.path)
        except OSError:
            pass

    def release(self, batch: SpooledBatch) -> None:
        """Put a claimed batch back (sending failed); it keeps its place in the order."""
        original = str(batch.path).rpartition(_CLAIM)[0]
        try:
            os.rename(batch.path, original)
        except OSError:
            pass
        self._maybe_nonempty = True

    def has_batches(self) -> bool:
        return self._maybe_nonempty and bool(self._files())
