"""genai-prices without its online price updater: llmlens prices from the library's bundled snapshot.

genai-prices imports its updater at import time, and with it a whole HTTP client (httpx2 and its
compression codecs: ~12 MiB of the server's memory and ~40 ms of its start). llmlens never fetches
prices at run time (custom prices come from price files), so the updater module is stood in for
before genai-prices is first imported; anything that reaches for it gets a clear error. Should a
later genai-prices need more of that module at import time, the real one is loaded instead.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any, NoReturn

_UPDATER = "genai_prices.update_prices"


def _unavailable(*args: Any, **kwargs: Any) -> NoReturn:
    raise RuntimeError("llmlens does not fetch prices at run time: put custom prices in a price file instead")


def _stand_in(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return _unavailable


def install() -> None:
    """Stand in for the updater, unless genai-prices (or its updater) is already loaded."""
    if "genai_prices" in sys.modules or _UPDATER in sys.modules:
        return
    stub = ModuleType(_UPDATER, "llmlens: genai-prices' price updater, not loaded")
    stub.__getattr__ = _stand_in  # type: ignore[method-assign]
    sys.modules[_UPDATER] = stub
    try:
        import genai_prices  # noqa: F401
    except Exception:
        # Not the import this was written against: load genai-prices as it is.
        sys.modules.pop(_UPDATER, None)
        for name in [n for n in sys.modules if n == "genai_prices" or n.startswith("genai_prices.")]:
            del sys.modules[name]


install()
