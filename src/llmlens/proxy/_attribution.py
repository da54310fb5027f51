"""Request headers -> who and what a call is for (X-LLMLens-*, Helicone-*), its trace context, and what to forward.

Helicone's headers keep their meaning, so an app moving from Helicone's gateway changes only its base
URL: `Helicone-User-Id` -> user, `Helicone-Session-Id` -> session (and, without a trace header, the
trace: a Helicone session is one tree of requests), `Helicone-Session-Path` and `-Session-Name` ->
metadata `session_path` and `session_name`, `Helicone-Property-Feature` -> feature, any other
`Helicone-Property-X` -> metadata `x` (lower case), `Helicone-Cache-Enabled` -> the exact cache,
`Helicone-Prompt-Id` -> template id. Our own `X-LLMLens-*` headers win when both are sent. No
`Helicone-*` header is forwarded upstream; `Helicone-Auth` is never stored either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from llmlens.model import bounded_json, is_span_id, is_trace_id, trace_id_from_text

# Request headers never forwarded: hop-by-hop ones, and ones the upstream client sets itself.
_HOP_BY_HOP = frozenset(
    {
        b"host",
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
    }
)
# Credentials: forwarded upstream, never stored or logged.
SECRET_HEADERS = frozenset({b"authorization", b"x-api-key", b"api-key"})
_PREFIX = b"x-llmlens-"
_HELICONE = b"helicone-"
_HELICONE_PROPERTY = b"helicone-property-"
# Helicone headers with no equivalent here: their names (never their values) are noted on the call.
_HELICONE_IGNORED_NOTE = "ignored Helicone header(s) with no llmlens equivalent: "


@dataclass(slots=True)
class Attribution:
    user_id: str | None = None
    session_id: str | None = None
    feature: str | None = None
    template_id: str | None = None
    template_version: str | None = None
    trace_id: str | None = None  # from traceparent, else X-LLMLens-Trace-Id
    parent_span_id: str | None = None  # from traceparent
    trace_flags: str = "01"
    properties: dict[str, Any] = field(default_factory=dict)
    cache: bool | None = None  # X-LLMLens-Cache; None when not sent
    project: str | None = None
    credential: bytes = b""  # the caller's key, only ever hashed (cache key)
    problems: list[str] = field(default_factory=list)  # malformed headers, kept in metadata

    @property
    def tier(self) -> str | None:
        tier = self.properties.get("tier")
        return str(tier) if tier is not None else None


def _traceparent(value: str, into: Attribution) -> None:
    parts = value.strip().lower().split("-")
    if len(parts) >= 4 and len(parts[0]) == 2 and is_trace_id(parts[1]) and is_span_id(parts[2]):
        into.trace_id, into.parent_span_id, into.trace_flags = parts[1], parts[2], parts[3][:2]
    else:
        into.problems.append(f"ignored malformed traceparent {value[:80]!r}")


def _properties(value: str, into: Attribution) -> None:
    try:
        doc = json.loads(value)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser follows
        into.problems.append("X-LLMLens-Properties is not JSON")
        return
    if isinstance(doc, dict):
        into.properties = bounded_json(doc)
    else:
        into.problems.append("X-LLMLens-Properties must be a JSON object")


def _llmlens_header(name: bytes, value: str, into: Attribution) -> None:
    key = name[len(_PREFIX) :]
    if key == b"user-id":
        into.user_id = value or None
    elif key == b"session-id":
        into.session_id = value or None
    elif key == b"feature":
        into.feature = value or None
    elif key == b"template-id":
        into.template_id = value or None
    elif key == b"template-version":
        into.template_version = value or None
    elif key == b"trace-id":
        if into.trace_id is None and value:
            candidate = value.strip().lower().replace("-", "")
            into.trace_id = candidate if is_trace_id(candidate) else trace_id_from_text(value)
    elif key == b"properties":
        _properties(value, into)
    elif key == b"cache":
        into.cache = value.strip().lower() in ("true", "1", "yes", "on")
    elif key == b"project":
        into.project = value or None


@dataclass(slots=True)
class _Helicone:
    """What Helicone's headers said, merged under ours once every header is read."""

    user_id: str | None = None
    session_id: str | None = None
    session_path: str | None = None
    session_name: str | None = None
    feature: str | None = None
    prompt_id: str | None = None
    cache: bool | None = None
    properties: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def _helicone_header(name: bytes, value: str, into: _Helicone) -> None:
    if name.startswith(_HELICONE_PROPERTY):
        prop = name[len(_HELICONE_PROPERTY) :].decode("latin-1")
        if prop == "feature":
            into.feature = value or None
        elif prop and value:
            into.properties[prop] = value
        return
    key = name[len(_HELICONE) :]
    if key == b"auth":
        return  # Helicone's own key: dropped, never forwarded or stored (the auth middleware may read it)
    if key == b"user-id":
        into.user_id = value or None
    elif key == b"session-id":
        into.session_id = value or None
    elif key == b"session-path":
        into.session_path = value or None
    elif key == b"session-name":
        into.session_name = value or None
    elif key == b"prompt-id":
        into.prompt_id = value or None
    elif key == b"cache-enabled":
        into.cache = value.strip().lower() in ("true", "1", "yes", "on")
    else:
        into.ignored.append("Helicone-" + key.decode("latin-1").title())


def _merge_helicone(found: _Helicone, into: Attribution, trace_header_sent: bool) -> None:
    """Fill what our own headers left empty; theirs never overwrite ours."""
    if into.user_id is None:
        into.user_id = found.user_id
    if into.session_id is None:
        into.session_id = found.session_id
    if into.feature is None:
        into.feature = found.feature
    if into.template_id is None:
        into.template_id = found.prompt_id
    if into.cache is None:
        into.cache = found.cache
    if found.session_id and not trace_header_sent:
        # Helicone draws a session as one tree of requests: its calls share one trace here too.
        into.trace_id = trace_id_from_text(f"helicone-session:{found.session_id}")
    for key, value in (("session_path", found.session_path), ("session_name", found.session_name)):
        if value is not None:
            into.properties.setdefault(key, value)
    for key, value in found.properties.items():
        into.properties.setdefault(key, value)
    if found.ignored:
        into.problems.append(_HELICONE_IGNORED_NOTE + ", ".join(sorted(set(found.ignored))))


def split_headers(raw: list[tuple[bytes, bytes]]) -> tuple[Attribution, list[tuple[bytes, bytes]]]:
    """One pass over the request headers: the attribution, and the headers to forward upstream.

    `traceparent` is read here and re-added by the gateway with its own span id as the parent, so
    the upstream (if it traces) sees the gateway's span as its parent.
    """
    into = Attribution()
    helicone: _Helicone | None = None
    forward: list[tuple[bytes, bytes]] = []
    traceparent: str | None = None
    for name, value in raw:
        name = name.lower()
        if name.startswith(_PREFIX):
            _llmlens_header(name, value.decode("latin-1"), into)
            continue
        if name.startswith(_HELICONE):
            helicone = helicone or _Helicone()
            _helicone_header(name, value.decode("latin-1"), helicone)
            continue
        if name == b"traceparent":
            traceparent = value.decode("latin-1")
            continue
        if name in _HOP_BY_HOP:
            continue
        if name in SECRET_HEADERS:
            into.credential = value
        forward.append((name, value))
    trace_header_sent = into.trace_id is not None or traceparent is not None
    if traceparent is not None:  # wins over X-LLMLens-Trace-Id: it also names the parent span
        _traceparent(traceparent, into)
    if helicone is not None:
        _merge_helicone(helicone, into, trace_header_sent)
    return into, forward
