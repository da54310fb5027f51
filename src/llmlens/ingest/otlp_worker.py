"""The work a decode process does for the server (`server/_decode_pool.py`): decode an OTLP trace
body and put its spans through the content transforms, then hand them back packed."""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from collections.abc import Mapping
from typing import Any

from llmlens.codec.otlp import decode_traces
from llmlens.codec.span_batch import pack_spans
from llmlens.redaction import Redactor

from ._content import content_transforms
from ._pipeline import SpanTransform

_transforms: list[SpanTransform] = []


def init(redaction: Mapping[str, Any] | bool | None, max_field_chars: int) -> None:
    """Process initializer: the same transforms the server's pipeline runs, from the same settings."""
    # Ctrl-C reaches the whole process group; the server shuts its workers down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Each body allocates thousands of short-lived containers: collect young objects less often.
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    _transforms[:] = content_transforms(Redactor.from_config(redaction), max_field_chars)[0]
    threading.Thread(target=_exit_with_server, args=(os.getppid(),), name="llmlens-parent-watch", daemon=True).start()


def _exit_with_server(server_pid: int) -> None:
    # A server killed with SIGKILL cannot stop its pool, and the worker's task queue never reports the end
    # (the worker holds both of its ends): the worker notices it was re-parented and leaves.
    while os.getppid() == server_pid:
        time.sleep(1.0)
    os._exit(0)


def ready() -> bool:
    """A no-op the server submits first: its answer means the worker is up and initialised."""
    return bool(_transforms)


def decode_transformed(
    body: bytes, content_type: str, content_encoding: str | None
) -> tuple[bytes, list[tuple[int, str]]]:
    """Raises what `decode_traces` raises (OtlpDecodeError, UnsupportedContentType)."""
    decoded = decode_traces(body, content_type, content_encoding)
    for span in decoded.spans:
        for transform in _transforms:
            transform(span)
    return pack_spans(decoded.spans), decoded.rejected
