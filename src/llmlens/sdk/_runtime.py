"""`init`, `flush`, `shutdown` and `stats`: starting and stopping the SDK for this process."""

from __future__ import annotations

import atexit
import threading
from typing import Any

from . import _internal, _state
from ._config import SDKConfig
from ._config import resolve_config as _resolve
from ._internal import logger, report_internal_error

_lock = threading.Lock()
_atexit_registered = False
_EMPTY_STATS = {
    "queued": 0,
    "spooled": 0,
    "sent": 0,
    "dropped": 0,
    "retried": 0,
    "failed": 0,
    "rejected": 0,
    "batches": 0,
}


def init(
    url: str | None = None,
    api_key: str | None = None,
    project: str | None = None,
    service: str | None = None,
    environment: str | None = None,
    capture_content: bool | None = None,
    *,
    spool_dir: str | None = None,
    spool_max_bytes: int | None = None,
    max_queue_size: int | None = None,
    max_batch_size: int | None = None,
    schedule_delay_s: float | None = None,
    request_timeout_s: float | None = None,
    raise_internal_errors: bool | None = None,
    redact: bool | dict[str, object] | None = None,
) -> bool:
    """Start sending to an llmlens server. Arguments win over `LLMLENS_*` environment variables.

    Returns False (and the SDK stays a no-op) when no URL is given either way. Calling it again
    flushes and replaces the previous configuration.
    """
    if raise_internal_errors is not None:
        _internal.raise_internal_errors = raise_internal_errors
    try:
        config = _resolve(
            url=url,
            api_key=api_key,
            project=project,
            service=service,
            environment=environment,
            capture_content=capture_content,
            max_queue_size=max_queue_size,
            max_batch_size=max_batch_size,
            schedule_delay_s=schedule_delay_s,
            request_timeout_s=request_timeout_s,
            spool_dir=spool_dir,
            spool_max_bytes=spool_max_bytes,
            redact=redact,
        )
        if config is not None and config.redact:
            from llmlens.redaction import Redactor  # stdlib only; fails early on a bad pattern

            Redactor.from_config(config.redact)
    except ValueError as exc:
        # A misconfiguration must not stop the app from starting: say so loudly, stay off.
        logger.error("llmlens: %s; the SDK stays off", exc)
        if _internal.should_raise():
            raise
        return False
    shutdown()
    if config is None:
        logger.debug("llmlens: no url given (init(url=...) or LLMLENS_URL); the SDK stays off")
        return False
    try:
        exporter = _build_exporter(config)
    except Exception as exc:
        report_internal_error(exc, "llmlens.init")
        return False
    with _lock:
        _state.config = config
        _state.exporter = exporter
        _register_atexit()
    return True


def _build_exporter(config: SDKConfig) -> Any:
    # Imported here, not at `import llmlens`, so an app that never calls init pays nothing.
    from ._exporter import BatchExporter
    from ._transport import HTTPTransport

    def transport() -> HTTPTransport:
        return HTTPTransport(
            config.url, api_key=config.api_key, project=config.project, timeout_s=config.request_timeout_s
        )

    return BatchExporter(config, transport, spool=_open_spool(config))


def _open_spool(config: SDKConfig) -> Any:
    """The disk spool, or None when none is set or its folder cannot be used (the SDK then sends without)."""
    if not config.spool_dir:
        return None
    from ._spool import DiskSpool

    try:
        return DiskSpool(config.spool_dir, config.spool_max_bytes)
    except OSError as exc:
        # An unusable folder costs durability through outages, not the app nor the sending.
        logger.error(
            "llmlens: cannot use spool_dir %r (%s); sending without a spool, so events wait in memory during an outage",
            config.spool_dir,
            exc,
        )
        return None


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_shutdown_at_exit)
        _atexit_registered = True


def _shutdown_at_exit() -> None:
    config = _state.config
    shutdown(config.exit_timeout_s if config is not None else 5.0)


def flush(timeout: float = 5.0) -> bool:
    """Send everything queued so far; True when it was delivered (or spooled) within `timeout` seconds."""
    exporter = _state.exporter
    if exporter is None:
        return True
    return bool(exporter.flush(timeout))


def shutdown(timeout: float = 5.0) -> None:
    """Flush and stop the exporter; the SDK is a no-op afterwards until `init` is called again."""
    with _lock:
        exporter = _state.exporter
        _state.exporter = None
        _state.config = None
    if exporter is not None:
        exporter.shutdown(timeout)


def stats() -> dict[str, int]:
    """Counts of events: `queued` (in memory), `spooled` (on disk), `sent`, `dropped`, `retried`
    (re-sent batches), `failed` (refused by the server), `rejected` (invalid events), `batches`."""
    exporter = _state.exporter
    if exporter is None:
        return dict(_EMPTY_STATS)
    result: dict[str, int] = exporter.stats()
    return result


def is_enabled() -> bool:
    return _state.exporter is not None
