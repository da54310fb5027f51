"""The work a decode process does for the server (`server/_decode_pool.py`): decode an OTLP trace
body and put its spans through the content transforms, then hand them back packed."""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from llmlens.codec.otlp import MAX_DECOMPRESSED_BYTES, decode_traces
from llmlens.codec.span_batch import pack_spans
from llmlens.redaction import Redactor

from ._content import content_transforms
from ._pipeline import SpanTransform

_transforms: list[SpanTransform] = []


def init(redaction: Mapping[str, Any] | bool | None, max_field_chars: int, server_pid: int | None = None) -> None:
    """Process initializer: the same transforms the server's pipeline runs, from the same settings.

    `server_pid` is the server's own pid, sent down with the settings (None: this process's parent).
    """
    _leave_with_server(os.getppid() if server_pid is None else server_pid)
    # Ctrl-C reaches the whole process group; the server shuts its workers down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Each body allocates thousands of short-lived containers: collect young objects less often.
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    _transforms[:] = content_transforms(Redactor.from_config(redaction), max_field_chars)[0]


def _leave_with_server(server_pid: int) -> None:
    """Make this worker exit whenever the server dies, however it dies.

    A server that shuts down stops its workers, but one that is killed (SIGKILL, a crash) cannot, and
    a worker waiting for work would wait forever: it holds both ends of its task queue, so it never
    sees the queue close. On Linux the kernel kills the worker when the server thread that started it
    ends; everywhere, a thread checks each second that the server is still the worker's parent. The
    server's pid must come from the server: a worker still starting when the server died has already
    been adopted by another process, and its own parent's pid would name that one.
    """
    _kill_me_with_my_parent()
    if os.getppid() != server_pid:  # the server died while this worker was starting
        os._exit(0)
    threading.Thread(target=_exit_when_orphaned, args=(server_pid,), name="llmlens-parent-watch", daemon=True).start()


def _kill_me_with_my_parent() -> None:
    """prctl(PR_SET_PDEATHSIG, SIGKILL) on Linux: also works while the worker is busy decoding and
    its watch thread cannot run. Elsewhere, or if it fails, the watch thread alone does the job."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


_PR_SET_PDEATHSIG = 1


def _exit_when_orphaned(server_pid: int) -> None:
    while os.getppid() == server_pid:
        time.sleep(1.0)
    os._exit(0)


def ready() -> bool:
    """A no-op the server submits first: its answer means the worker is up and initialised."""
    return bool(_transforms)


def decode_transformed(
    body: bytes, content_type: str, content_encoding: str | None, max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES
) -> tuple[bytes, list[tuple[int, str]]]:
    """Raises what `decode_traces` raises (OtlpDecodeError, OtlpBodyTooLarge, UnsupportedContentType)."""
    decoded = decode_traces(body, content_type, content_encoding, max_decompressed_bytes)
    for span in decoded.spans:
        for transform in _transforms:
            transform(span)
    return pack_spans(decoded.spans), decoded.rejected
