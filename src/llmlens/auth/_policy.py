"""When auth is on: `auth = on|off|auto`, where auto means on unless the server binds only loopback."""

from __future__ import annotations

import ipaddress

from llmlens.settings import Settings


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def auth_enabled(settings: Settings) -> bool:
    if settings.auth == "on":
        return True
    if settings.auth == "off":
        return False
    return not is_loopback(settings.host)
