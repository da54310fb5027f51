"""Server-sent events: a whole recorded stream -> its events cheaply, and an incremental decoder."""

from __future__ import annotations

import codecs
from collections.abc import Iterator, Sequence
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


def stream_events(chunks: Sequence[bytes]) -> Iterator[tuple[int, bytes]]:
    """(index of the chunk that completed it, data) for each event of a recorded stream, in order.

    The same events as feeding `SseDecoder` chunk by chunk, for a fraction of the cost: the stream is
    joined once and split on blank lines, and an event that is one `data:` line (nearly all of an LLM
    stream) is sliced out without a look at its fields. Data stays bytes, for `json.loads`.
    """
    data = b"".join(chunks)
    if b"\r" in data:  # CR or CRLF line ends: rare in LLM streams; decode chunk by chunk
        decoder = SseDecoder()
        for index, chunk in enumerate(chunks):
            for event in decoder.feed(chunk):
                yield index, event.data.encode()
        for event in decoder.close():
            yield len(chunks) - 1, event.data.encode()
        return
    ends: list[int] = []
    total = 0
    for chunk in chunks:
        total += len(chunk)
        ends.append(total)
    index, pos, size = 0, 0, len(data)
    while pos < size:
        blank = data.find(b"\n\n", pos)
        if blank < 0:  # the last event, unterminated: the decoder's close() would end it
            block, completed_at, next_pos = data[pos:], size - 1, size
        else:
            block, completed_at, next_pos = data[pos:blank], blank + 1, blank + 2
        pos = next_pos
        while ends[index] <= completed_at:
            index += 1
        if block.startswith(b"data:") and b"\n" not in block:
            value = block[5:]
            yield index, value[1:] if value.startswith(b" ") else value
            continue
        lines: list[bytes] = []
        for line in block.split(b"\n"):
            name, _, value = line.partition(b":")
            if name == b"data" and line:
                lines.append(value[1:] if value.startswith(b" ") else value)
        if lines:
            yield index, b"\n".join(lines)
