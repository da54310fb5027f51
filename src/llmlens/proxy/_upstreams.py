"""Gateway upstreams: name -> base URL, with the public OpenAI and Anthropic URLs as defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

WireFormat = Literal["openai", "anthropic"]

DEFAULT_UPSTREAMS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}


class UnsafePath(ValueError):
    """A proxied path that could reach outside its upstream's base URL; the message says why."""


# Enough for any real path; more layers of percent-encoding than this only hide something.
_MAX_ENCODING_LAYERS = 4


def check_relative_path(path: str) -> None:
    """Raise UnsafePath if `path` could climb out of the upstream's base URL once resolved.

    URL libraries and the upstream's own server resolve `..` segments, and decode
    `%2e%2e` into `..` on the way; some servers read `\\` as `/`. So a `..` segment is refused under
    any number of percent-encoding layers, and so is a backslash, plain or encoded.
    """
    text = path
    for _ in range(_MAX_ENCODING_LAYERS):
        if "\\" in text:
            raise UnsafePath(f"the path {path!r} holds a backslash")
        # `..;x` is `..` to servers that strip path parameters.
        if any(segment.split(";", 1)[0] == ".." for segment in text.split("/")):
            raise UnsafePath(f"the path {path!r} climbs out of the upstream's base URL with '..'")
        decoded = unquote(text)
        if decoded == text:
            return
        text = decoded
    raise UnsafePath(f"the path {path!r} is percent-encoded {_MAX_ENCODING_LAYERS} times or more")


@dataclass(frozen=True, slots=True)
class Upstream:
    """One provider the gateway forwards to: `/proxy/<name>/<path>` -> `<base_url>/<path>`."""

    name: str
    base_url: str  # without a trailing slash

    @property
    def anthropic(self) -> bool:
        return self.name == "anthropic" or "anthropic.com" in self.base_url

    def url_for(self, path: str, query: str) -> str:
        """The upstream URL of a proxied path (UnsafePath if it could leave the base URL). The base
        URL's last segment may repeat in the path.

        `--upstream openai=https://api.openai.com/v1` with `/proxy/openai/v1/chat/completions` goes to
        `.../v1/chat/completions` (not `/v1/v1/...`), so the client's base URL can be either
        `<llmlens>/proxy/openai/v1` or `<llmlens>/proxy/openai`.
        """
        check_relative_path(path)
        path = path.lstrip("/")
        last = self.base_url.rsplit("/", 1)[-1]
        if "/" in self.base_url.split("://", 1)[-1] and last and (path == last or path.startswith(last + "/")):
            path = path[len(last) :].lstrip("/")
        url = f"{self.base_url}/{path}" if path else self.base_url
        return f"{url}?{query}" if query else url


def parse_upstreams(configured: Mapping[str, str]) -> dict[str, Upstream]:
    """The defaults overlaid with the configured upstreams; raises ValueError naming a bad entry."""
    merged = {**DEFAULT_UPSTREAMS, **configured}
    upstreams: dict[str, Upstream] = {}
    for name, url in merged.items():
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"upstream {name!r} must be an http(s) URL, got {url!r}")
        if not name or "/" in name:
            raise ValueError(f"upstream name {name!r} must be a non-empty path segment")
        upstreams[name] = Upstream(name=name, base_url=url.rstrip("/"))
    return upstreams


def wire_format(upstream: Upstream, path: str) -> WireFormat:
    """Which provider's wire format a request speaks: Anthropic for /messages, else OpenAI's."""
    tail = path.rstrip("/")
    if tail.endswith(("/messages", "/messages/count_tokens", "/messages/batches")) or tail in (
        "messages",
        "v1/messages",
    ):
        return "anthropic"
    return "anthropic" if upstream.anthropic else "openai"
