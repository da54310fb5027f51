"""Data files only their owner can read: files are made 0600 and folders 0700, whatever the umask.

Prompts, responses, key hashes and budgets live in these files, so other accounts on the machine
have no business reading them. The server process also sets a 0077 umask (`llmlens serve`), which
covers files that libraries create on their own (DuckDB's write-ahead log, its spill folder); the
helpers here cover llmlens used as a library and files that exist from older versions.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
SERVER_UMASK = 0o077


def make_private_dir(path: str | os.PathLike[str]) -> Path:
    """Create `path` and its missing parents as 0700; folders that already exist keep their mode."""
    folder = Path(path)
    missing: list[Path] = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for created in reversed(missing):
        try:
            created.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass  # another process made it first
    return folder


def restrict_to_owner(path: str | os.PathLike[str]) -> None:
    """Take group and other permissions off an existing file (a missing file is fine)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        os.chmod(path, mode & 0o700)


def create_private_file(path: str | os.PathLike[str]) -> None:
    """Make an empty 0600 file unless it exists (then only its permissions are narrowed)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        restrict_to_owner(path)
        return
    os.close(fd)


def open_private(path: str | os.PathLike[str]) -> int:
    """A file descriptor for writing `path` from scratch, mode 0600 even if the file existed wider."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # O_CREAT's mode does not apply to a file left over from a crash
    return fd


def write_private_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace `path` atomically with `data`, as a 0600 file."""
    target = Path(path)
    make_private_dir(target.parent)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    fd = open_private(tmp)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
