"""The disk spool: bounded, oldest first, claims by rename, claims of dead processes given back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from llmlens.sdk._spool import DiskSpool


def test_bounded_and_oldest_first(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=250)
    assert spool.put(b"a" * 100, 1) and spool.put(b"b" * 100, 2)
    assert not spool.put(b"c" * 100, 3)  # over the bound: refused, not written
    assert spool.event_count() == 3 and spool.has_batches()
    first = spool.take()
    assert first is not None and first.body == b"a" * 100 and first.count == 1
    second = spool.take()
    assert second is not None and second.body.startswith(b"b")
    assert spool.take() is None  # both claimed
    spool.release(second)  # sending failed: it goes back
    spool.done(first)
    again = spool.take()
    assert again is not None and again.count == 2
    spool.done(again)
    assert spool.take() is None and not spool.has_batches()


def test_claims_of_a_dead_process_are_given_back(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=10_000)
    spool.put(b"x", 5)
    batch = spool.take()
    assert batch is not None
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    os.rename(batch.path, str(batch.path).replace(f"-{os.getpid()}", f"-{dead_pid}"))
    reopened = DiskSpool(tmp_path, max_bytes=10_000)
    recovered = reopened.take()
    assert recovered is not None and recovered.count == 5
