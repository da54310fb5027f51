"""`llmlens proxy`: the server with only the LLM gateway, its budget API and the health check."""

from __future__ import annotations

import argparse

from . import serve

PROXY_ROUTE_MODULES: tuple[str, ...] = (
    "llmlens.server.routes.health",
    "llmlens.server.routes.proxy",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    serve.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return serve.run(args, route_modules=PROXY_ROUTE_MODULES)
