"""`llmlens proxy`: the server with only the LLM gateway, its budget API, a status page and the health check."""

from __future__ import annotations

import argparse

from . import serve

PROXY_ROUTE_MODULES: tuple[str, ...] = (
    "llmlens.server.routes.health",
    # With auth on, a browser asking for the status page is sent to /login: it must exist here too.
    "llmlens.server.routes.auth",
    "llmlens.server.routes.proxy",
    "llmlens.server.routes.gateway_status",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    serve.add_arguments(parser)


def announce(url: str) -> str:
    """What the start-up line names: only what this app serves (no dashboards, no OTLP receiver)."""
    return f"gateway {url}/proxy/<upstream>/..., status page {url}/"


def run(args: argparse.Namespace) -> int:
    return serve.run(args, route_modules=PROXY_ROUTE_MODULES, announce=announce)
