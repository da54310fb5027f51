"""An app using the SDK as it runs in production (no pytest in its environment), with one thing gone wrong.

`python tests/sdk/_production_app.py SCENARIO URL WORKDIR SESSION`. Every log record goes to stderr as
one JSON object a line (like an app with structured logging); the app's own results and the SDK's
counters are printed on stdout as one JSON object.
"""

from __future__ import annotations

import http.client
import json
import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import llmlens
from llmlens.sdk import _internal

CALLS = 10


class JsonLines(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        doc = {"logger": record.name, "level": record.levelname, "message": record.getMessage()}
        sys.stderr.write(json.dumps(doc) + "\n")


class UnprintableError(Exception):
    pass


class Unprintable:
    """A value whose text cannot be had: str() and repr() raise."""

    def __str__(self) -> str:
        raise UnprintableError("no text for you")

    __repr__ = __str__


class Opaque:
    """A plain object JSON knows nothing of; its text is all that can be sent."""

    def __str__(self) -> str:
        return "opaque-object"


def _circular() -> dict[str, Any]:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    return loop


def _too_deep() -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(50_000):
        child: list[Any] = []
        node.append(child)
        node = child
    return root


# What the app sets as the attribute `bad` on every second call, per scenario.
BAD_VALUES: dict[str, Callable[[], Any]] = {
    "unprintable-value": Unprintable,
    "opaque-value": Opaque,
    "circular-value": _circular,
    "too-deep-value": _too_deep,
    "tuple-keys-value": lambda: {("a", 1): "x", "ok": 1},
    "huge-value": lambda: "h" * 20_000_000,  # past the SDK's 16 MiB a batch on its own
    "large-values": lambda: "L" * 6_000_000,  # ten of them are past the server's 50 MiB body limit
}


def _calls(session: str, bad: Callable[[], Any] | None, every: int = 2, n: int = CALLS) -> list[str]:
    value = bad() if bad is not None else None

    @llmlens.trace
    def answer(i: int) -> str:
        span = llmlens.current_span().set(session_id=session, feature="production-errors")
        span.set_attribute("i", i)
        if value is not None and i % every == 0:
            span.set_attribute("bad", value)
        return f"answer {i}"

    return [answer(i) for i in range(n)]


def _patch_http_client() -> None:
    """Like a library that patches http.client and breaks it: every request raises."""

    def request(self: http.client.HTTPConnection, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("patched http.client is broken")

    http.client.HTTPConnection.request = request  # type: ignore[method-assign,assignment]


def main() -> None:
    scenario, url, workdir, session = sys.argv[1:5]
    handler = JsonLines()
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
    work = Path(workdir)
    out: dict[str, Any] = {"should_raise": _internal.should_raise()}
    spool = work / "spool"

    if scenario == "bad-url":
        out["init"] = llmlens.init(url=url, schedule_delay_s=0.05)
        out["returned"] = _calls(session, None)
    elif scenario == "spool-not-a-folder":
        blocker = work / "a-file"
        blocker.write_text("not a folder")
        out["init"] = llmlens.init(url=url, spool_dir=str(blocker / "spool"), schedule_delay_s=0.05)
        out["returned"] = _calls(session, None)
    elif scenario == "spool-gone":
        # The server is down and the spool folder is replaced by a file while the app runs.
        out["init"] = llmlens.init(url=url, spool_dir=str(spool), max_batch_size=5, schedule_delay_s=0.05)
        shutil.rmtree(spool)
        spool.write_text("not a folder any more")
        out["returned"] = _calls(session, None, n=40)
        out["stats_during"] = llmlens.stats()
    elif scenario == "transport-raises":
        _patch_http_client()
        out["init"] = llmlens.init(url=url, max_batch_size=4, schedule_delay_s=0.05)
        out["returned"] = _calls(session, None)
    elif scenario == "server-down":
        out["init"] = llmlens.init(url=url, max_batch_size=4, schedule_delay_s=0.05)
        out["returned"] = _calls(session, None)
    elif scenario == "full-queue":
        # No batch fills before the queue does, and no timer fires: only flush sends.
        out["init"] = llmlens.init(url=url, max_queue_size=10, max_batch_size=100, schedule_delay_s=600)
        out["returned"] = _calls(session, None, n=1000)
    elif scenario in BAD_VALUES:
        out["init"] = llmlens.init(url=url, schedule_delay_s=0.05)
        out["returned"] = _calls(session, BAD_VALUES[scenario], every=1 if scenario == "large-values" else 2)
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")

    out["flushed"] = llmlens.flush(2 if scenario in ("spool-gone", "server-down") else 30)
    out["stats"] = llmlens.stats()
    llmlens.shutdown(timeout=0.5)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
