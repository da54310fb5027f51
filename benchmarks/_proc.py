"""Process measurements for the benches: resident memory (current and peak), CPU time and directory sizes."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int, children: list[int] | None = None) -> float:
    """Resident set size of `pid` and its children (found now unless given), in MiB (Linux /proc)."""
    total = 0
    for p in [pid, *(_children(pid) if children is None else children)]:
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            pass
    return total / (1024 * 1024)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` and its live children so far (Linux /proc): on a machine shared
    with other work, CPU per event moves much less than wall-clock throughput."""
    own, children = cpu_split_s(pid)
    return own + children


def cpu_split_s(pid: int) -> tuple[float, float]:
    """CPU seconds so far of `pid` itself and of its live children (a server and its decode workers)."""
    own = _process_cpu_s(pid)
    return own, sum(_process_cpu_s(p) for p in _children(pid))


def _process_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15 of stat)
    except (OSError, IndexError, ValueError):
        return 0.0


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
    """Samples a process tree's RSS every 50 ms in a thread; `.peak` in MiB. The tree is re-read every
    0.5 s: walking every thread's children each sample cost the machine ~10 % of the measured ingest."""

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
        children: list[int] = []
        rescan_at = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= rescan_at:
                children, rescan_at = _children(self.pid), now + 0.5
            self.peak = max(self.peak, rss_mib(self.pid, children))
            self._stop.wait(0.05)


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
