"""`llmlens.LoggingHandler`: the article's JSON log lines, sent to the server unchanged.

Attach it to the `llm_observability` logger of the article's minimal setup; every record whose
message is a JSON object is queued as a native event exactly as logged. Other records are ignored.
"""

from __future__ import annotations

import json
import logging

from . import _state
from ._internal import report_internal_error


class LoggingHandler(logging.Handler):
    """A `logging.Handler` that forwards JSON-object log messages to llmlens."""

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.ignored = 0  # records that were not a JSON object

    def emit(self, record: logging.LogRecord) -> None:
        exporter = _state.exporter
        if exporter is None:
            return
        try:
            message = record.getMessage()
            if not message.startswith("{"):
                self.ignored += 1
                return
            try:
                event = json.loads(message)
            except ValueError:
                self.ignored += 1
                return
            if not isinstance(event, dict):
                self.ignored += 1
                return
            exporter.enqueue(event)
        except Exception as exc:
            report_internal_error(exc, "LoggingHandler")
