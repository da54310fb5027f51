"""Streamed answers: OpenAI chat/completions chunks, OpenAI Responses events, Anthropic message events."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ._bodies import read_response_object
from ._call import CallResult, Operation, apply_anthropic_usage, apply_error, apply_openai_usage
from ._sse import stream_events


def read_stream(operation: Operation, chunks: Sequence[bytes]) -> CallResult:
    """Decode the whole stream as the client received it; note which chunk carried the first token."""
    result = CallResult()
    state = _StreamState(operation)
    for index, data in stream_events(chunks):
        if state.apply(result, data) and result.first_content_chunk is None:
            result.first_content_chunk = index
    state.finish(result)
    return result


class _StreamState:
    """Per-stream accumulation: tool-call fragments by index, the format (by the first event)."""

    def __init__(self, operation: Operation) -> None:
        self.operation = operation
        self.tool_calls: dict[int, dict[str, Any]] = {}

    def apply(self, result: CallResult, data: bytes) -> bool:
        """Fold one event's data into `result`; True if it carried generated content."""
        if data == b"[DONE]":
            return False
        try:
            doc = json.loads(data)
        except UnicodeDecodeError:  # not UTF-8: read it as a client would, with replacement characters
            try:
                doc = json.loads(data.decode("utf-8", "replace"))
            except ValueError:
                return False
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser follows
            return False
        if not isinstance(doc, dict):
            return False
        kind = doc.get("type")
        if isinstance(kind, str) and (kind.startswith(("message", "content_block")) or kind == "ping"):
            return self._anthropic(result, kind, doc)
        if isinstance(kind, str) and (kind.startswith("response.") or kind == "error"):
            return self._responses(result, kind, doc)
        if kind == "error" or isinstance(doc.get("error"), dict):
            apply_error(result, doc)
            return False
        return self._openai_chunk(result, doc)

    def _openai_chunk(self, result: CallResult, doc: dict[str, Any]) -> bool:
        result.response_id = result.response_id or doc.get("id")
        result.response_model = result.response_model or doc.get("model")
        if doc.get("usage"):
            apply_openai_usage(result, doc["usage"])
        content = False
        for choice in doc.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            if choice.get("finish_reason"):
                result.finish_reason = choice["finish_reason"]
            delta = choice.get("delta")
            if not isinstance(delta, dict):  # legacy completions
                text = choice.get("text")
                if isinstance(text, str) and text:
                    result.text_parts.append(text)
                    content = True
                continue
            if isinstance(delta.get("content"), str) and delta["content"]:
                result.text_parts.append(delta["content"])
                content = True
            for call in delta.get("tool_calls") or []:
                slot = self.tool_calls.setdefault(call.get("index", 0), {"id": None, "name": None, "arguments": ""})
                function = call.get("function") or {}
                slot["id"] = call.get("id") or slot["id"]
                slot["name"] = function.get("name") or slot["name"]
                slot["arguments"] += function.get("arguments") or ""
                content = True
        return content

    def _responses(self, result: CallResult, kind: str, doc: dict[str, Any]) -> bool:
        if kind in ("response.output_text.delta", "response.function_call_arguments.delta", "response.refusal.delta"):
            if kind == "response.output_text.delta":
                result.text_parts.append(str(doc.get("delta", "")))
            return True
        if kind in ("response.created", "response.in_progress") and isinstance(doc.get("response"), dict):
            result.response_id = doc["response"].get("id")
            result.response_model = doc["response"].get("model")
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            response = doc.get("response")
            if isinstance(response, dict):
                final = CallResult()
                read_response_object(final, response)
                final.first_content_chunk = result.first_content_chunk
                for name in CallResult.__slots__:  # type: ignore[attr-defined]
                    setattr(result, name, getattr(final, name))
        elif kind == "error":
            apply_error(result, doc)
        return False

    def _anthropic(self, result: CallResult, kind: str, doc: dict[str, Any]) -> bool:
        if kind == "message_start":
            message = doc.get("message") or {}
            result.response_id = message.get("id")
            result.response_model = message.get("model")
            apply_anthropic_usage(result, message.get("usage"))
        elif kind == "content_block_start":
            block = doc.get("content_block") or {}
            if block.get("type") == "tool_use":
                self.tool_calls[int(doc.get("index", 0))] = {
                    "id": block.get("id"),
                    "name": block.get("name"),
                    "arguments": "",
                }
            elif block.get("type") == "text" and block.get("text"):
                result.text_parts.append(block["text"])
                return True
        elif kind == "content_block_delta":
            delta = doc.get("delta") or {}
            if delta.get("type") == "text_delta":
                result.text_parts.append(str(delta.get("text", "")))
                return True
            if delta.get("type") == "input_json_delta":
                slot = self.tool_calls.get(int(doc.get("index", 0)))
                if slot is not None:
                    slot["arguments"] += delta.get("partial_json") or ""
                return True
            return delta.get("type") == "thinking_delta"
        elif kind == "message_delta":
            delta = doc.get("delta") or {}
            result.finish_reason = delta.get("stop_reason") or result.finish_reason
            apply_anthropic_usage(result, doc.get("usage"))
        return False

    def finish(self, result: CallResult) -> None:
        if self.tool_calls and not result.tool_calls:
            result.tool_calls = [self.tool_calls[i] for i in sorted(self.tool_calls)]
