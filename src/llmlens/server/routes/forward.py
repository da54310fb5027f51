"""Span forwarding (the `forward` setting): no routes, a sender thread per target started with the server."""

from __future__ import annotations

import asyncio

from starlette.routing import BaseRoute

from llmlens.forward import Forwarders, SpanForwarder, targets_from_settings

from .._state import AppState

SERVICE = "forward"


async def startup(state: AppState) -> None:
    targets = targets_from_settings(state.settings.forward)  # ForwardConfigError stops start-up with its message
    if not targets:
        return
    forwarders = Forwarders([SpanForwarder(t) for t in targets])
    forwarders.start()
    state.writer.add_listener(forwarders.on_write)
    state.services[SERVICE] = forwarders


async def shutdown(state: AppState) -> None:
    forwarders: Forwarders | None = state.services.pop(SERVICE, None)
    if forwarders is not None:
        await asyncio.to_thread(forwarders.stop, 5.0)


def routes() -> list[BaseRoute]:
    return []
