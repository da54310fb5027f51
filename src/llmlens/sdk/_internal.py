"""The SDK's own failures: logged once each, never raised into the app, re-raised under pytest."""

from __future__ import annotations

import logging
import os
import threading

logger = logging.getLogger("llmlens")

_seen: set[tuple[str, str]] = set()
_seen_warnings: set[str] = set()
_lock = threading.Lock()
_errors = 0
raise_internal_errors = False  # set by `init(raise_internal_errors=True)`


def internal_error_count() -> int:
    return _errors


def should_raise() -> bool:
    return raise_internal_errors or "PYTEST_CURRENT_TEST" in os.environ


def report_internal_error(exc: BaseException, where: str, *, reraise: bool = True) -> None:
    """Log an SDK bug once per (place, exception type); re-raise it when bugs should fail tests.

    The exporter thread passes `reraise=False`: it must survive; tests read the count instead.
    """
    global _errors
    with _lock:
        _errors += 1
        key = (where, type(exc).__name__)
        first = key not in _seen
        _seen.add(key)
    if first:
        logger.error(
            "llmlens: internal error in %s (your code is still running fine; this is reported once)",
            where,
            exc_info=exc,
        )
    if reraise and should_raise():
        raise exc


def warn_once(key: str, message: str, *args: object) -> None:
    """One warning per key for the life of the process: full queues, rejected batches..."""
    with _lock:
        if key in _seen_warnings:
            return
        _seen_warnings.add(key)
    logger.warning(message, *args)


def forget_warning(key: str) -> None:
    with _lock:
        _seen_warnings.discard(key)
