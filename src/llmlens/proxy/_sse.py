"""An incremental server-sent-events decoder: bytes as they arrive -> (event name, data) pairs."""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str  # "" when the event has no `event:` line (OpenAI chat and completions)
    data: str


class SseDecoder:
    """Feed raw chunks in order; each `feed` returns the events completed by that chunk.

    Follows the WHATWG rules that matter for LLM streams: lines end in LF, CRLF or CR; a blank line
    ends an event; `data:` lines are joined with LF; comments (`:`) and unknown fields are ignored.
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._event = ""
        self._data: list[str] = []
        self._pending_cr = False
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, chunk: bytes) -> list[SseEvent]:
        text = self._utf8.decode(chunk)
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]
        self._pending_cr = text.endswith("\r")
        text = (self._buffer + text).replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        self._buffer = lines.pop()
        events: list[SseEvent] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(SseEvent(self._event, "\n".join(self._data)))
                self._event = ""
                self._data = []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
        return events

    def close(self) -> list[SseEvent]:
        """Events left unterminated when the stream ended (a server that omits the last blank line)."""
        events = self.feed(b"\n\n") if self._buffer or self._data else []
        return events
