"""Helpers shared by the gateway tests: the gateway under test, and comparing direct with proxied answers."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
from tests.support.llmlens_server import LLMLensServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Gateway:
    srv: LLMLensServer
    upstream_port: int
    dead_port: int

    @property
    def openai_url(self) -> str:
        return self.srv.url + "/proxy/openai/v1"

    @property
    def anthropic_url(self) -> str:
        return self.srv.url + "/proxy/anthropic"

    def openai(self, **kwargs: Any) -> openai.OpenAI:
        kwargs = {"api_key": "sk-test-secret-123", "max_retries": 0} | kwargs
        return openai.OpenAI(base_url=self.openai_url, **kwargs)

    def anthropic(self, **kwargs: Any) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.anthropic_url, api_key="sk-ant-secret-456", max_retries=0, **kwargs)

    def wait_rows(self, query: str, count: int = 1, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """Spans are recorded after the answer, off the request path: poll until they are committed."""
        deadline = time.monotonic() + timeout_s
        while True:
            rows = self.srv.sql(query)
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


# Headers that legitimately differ: set by each server for itself, or added by the gateway.
_OWN_HEADERS = frozenset({"date", "server", "transfer-encoding", "connection", "x-llmlens-span-id", "x-llmlens-cache"})
_CREATED = re.compile(rb'"(created|created_at)":\s*\d+')


def same_bytes(direct: bytes, proxied: bytes) -> None:
    """Identical apart from the `created` second, which two servers may stamp a tick apart."""
    assert _CREATED.sub(b'"\\1":0', proxied) == _CREATED.sub(b'"\\1":0', direct)


def headers_of(headers: Mapping[str, str] | httpx.Headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower() not in _OWN_HEADERS}


def same_response(direct: httpx.Response, proxied: httpx.Response, *, body: bytes | None = None) -> None:
    assert proxied.status_code == direct.status_code
    assert headers_of(proxied.headers) == headers_of(direct.headers)
    assert "x-llmlens-span-id" in proxied.headers
    same_bytes(direct.content if body is None else body, proxied.content)
