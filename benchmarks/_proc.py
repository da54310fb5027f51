"""Process measurements for the benches: resident memory (current and peak) and directory sizes."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def rss_mib(pid: int) -> float:
    """Resident set size of `pid` and its children, in MiB (Linux /proc)."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            kids = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
            for k in kids:
                out += [int(k), *_children(int(k))]
    except OSError:
        pass
    return out


class PeakRss:
    """Samples a process tree's RSS every 50 ms in a thread; `.peak` in MiB."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            self._stop.wait(0.05)


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
