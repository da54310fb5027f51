"""`llmlens serve`: the server on an embedded store, optionally filled with demo data."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._common import CliError, add_config_option, load_cli_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="HTTP port (default 4318; 0 picks a free one)")
    parser.add_argument("--data", type=Path, dest="data_dir", help="data directory (default ./.llmlens)")
    parser.add_argument("--store", help="store URL: duckdb://PATH or clickhouse://user:pass@host:port/db")
    parser.add_argument("--demo", action="store_true", default=None, help="fill the store with demo traffic first")
    parser.add_argument("--price-file", type=Path, help="custom prices (TOML or YAML)")
    parser.add_argument("--project", help="default project for events that name none")
    parser.add_argument("--otlp-grpc-port", type=int, help="OTLP/gRPC port (default 4317, 0 disables)")
    parser.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="gateway upstream (repeatable), e.g. --upstream vllm=http://127.0.0.1:8000/v1",
    )
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    parser.add_argument(
        "--auth", choices=("on", "off", "auto"), help="require API keys / login (auto: on unless host is loopback)"
    )
    parser.add_argument(
        "--insecure-public",
        action="store_true",
        help="allow serving a non-loopback address with auth off (anyone who can reach it can read everything)",
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="comma-separated reverse proxies (addresses or CIDR ranges) whose X-Forwarded-For is believed "
        "(default: none)",
    )
    parser.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)


def _upstreams(pairs: list[str], base: dict[str, str]) -> dict[str, str] | None:
    if not pairs:
        return None
    merged = dict(base)
    for pair in pairs:
        name, sep, url = pair.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise CliError(f"--upstream must be NAME=http(s)://..., got {pair!r}")
        merged[name.strip()] = url.strip()
    return merged


def _check_public_exposure(settings: Any, *, insecure_public: bool) -> None:
    """Refuse to serve prompts to the network unauthenticated unless told so explicitly."""
    from llmlens.auth import auth_enabled, is_loopback

    if auth_enabled(settings) or is_loopback(settings.host) or insecure_public:
        return
    raise CliError(
        f"refusing to serve {settings.host} with auth off: anyone who can reach it could read every prompt. "
        "Turn auth on (--auth on, then `llmlens keys create`), bind 127.0.0.1, or pass --insecure-public"
    )


def _split_list(value: str | None) -> list[str] | None:
    return None if value is None else [part.strip() for part in value.split(",") if part.strip()]


def _check_forwarded_allow_ips(entries: list[str]) -> None:
    """uvicorn would take a mistyped address as a literal that never matches: say so instead."""
    import ipaddress

    for entry in map(str, entries):
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise CliError(
                f"forwarded_allow_ips: {entry!r} is not an IP address or CIDR range (or * for every address)"
            ) from None


def _check_redaction(settings: Any) -> None:
    from llmlens.redaction import RedactionConfigError, Redactor

    try:
        Redactor.from_config(settings.redaction)
    except RedactionConfigError as exc:
        raise CliError(str(exc)) from None


def _warn_without_credentials(settings: Any, state: Any) -> None:
    from llmlens.auth import auth_enabled
    from llmlens.server._security import security_of

    if auth_enabled(settings) and not security_of(state).auth.has_credentials():
        print(
            "llmlens: auth is on but no API key or user exists yet; create one with "
            "`llmlens keys create --project default --role admin --create-project"
            f"{'' if str(settings.data_dir) == '.llmlens' else f' --data {settings.data_dir}'}`",
            file=sys.stderr,
        )


def _tune_garbage_collector() -> None:
    """Ingest allocates millions of short-lived containers (decoded spans, their dicts), so with the
    default thresholds (a young collection every 700 allocations) the cyclic collector ran ~600 times
    per 40k ingested spans and took ~20 % of the server's CPU, holding the GIL. Objects that live as
    long as the server (modules, price tables, templates) are frozen out of every collection, and
    young collections wait for 50,000 allocations."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def _without_httpx_command_line() -> None:
    """httpx imports its command-line tool whenever click, rich and pygments are installed (uvicorn brings
    click, and `rich` is ours): ~10 MiB of the server's memory and ~60 ms of its start for a tool the
    server never runs. A None entry makes that import fail, which httpx expects and falls back from."""
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def run(
    args: argparse.Namespace,
    *,
    route_modules: tuple[str, ...] | None = None,
    announce: Callable[[str], str] | None = None,
) -> int:
    """Serve every route module, or only `route_modules` (`llmlens proxy`, which `announce`s what it serves)."""
    import os

    _without_httpx_command_line()

    import uvicorn

    from llmlens._private_files import SERVER_UMASK

    # Every file this server makes holds its users' data (the store and its WAL, auth, budgets, exports):
    # readable by its owner only, including files libraries create on their own.
    os.umask(SERVER_UMASK)

    overrides: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "data_dir": args.data_dir,
        "store": args.store,
        "demo": args.demo,
        "price_file": args.price_file,
        "project": args.project,
        "otlp_grpc_port": args.otlp_grpc_port,
        "log_level": args.log_level,
        "auth": getattr(args, "auth", None),
        "forwarded_allow_ips": _split_list(getattr(args, "forwarded_allow_ips", None)),
    }
    settings = load_cli_settings(args, **overrides)
    _check_public_exposure(settings, insecure_public=getattr(args, "insecure_public", False))
    _check_redaction(settings)
    _check_forwarded_allow_ips(settings.forwarded_allow_ips)
    upstreams = _upstreams(args.upstream, settings.upstreams)
    if upstreams is not None:
        from dataclasses import replace

        settings = replace(settings, upstreams=upstreams)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The ClickHouse driver logs a traceback for each refused connection; the store's own error says it
    # in one line (at start, and as the 503s' message while a node is down).
    logging.getLogger("clickhouse_driver").setLevel(logging.ERROR)

    from llmlens.server import build_state, create_app

    try:
        state = build_state(settings)
    except Exception as exc:
        raise CliError(f"cannot open the store: {exc}") from None
    app = create_app(settings, state=state, route_modules=route_modules)
    _warn_without_credentials(settings, state)
    if settings.demo:
        from llmlens.demo import load_demo

        state.writer.start()
        count = load_demo(state.pipeline, project=settings.project)
        print(f"llmlens: demo data loaded ({count} events)", file=sys.stderr)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        lifespan="on",
        # No route speaks WebSocket: uvicorn then loads no WebSocket protocol (nor the library behind it).
        ws="none",
        timeout_graceful_shutdown=5,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: any local process (or a
        # request relayed through one) could then pick the client address the login throttle counts.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=[str(entry) for entry in settings.forwarded_allow_ips],
    )
    server = uvicorn.Server(config)
    ready_file: Path | None = args.ready_file

    original_startup = server.startup

    async def startup(sockets: Any = None) -> None:
        await original_startup(sockets=sockets)
        _tune_garbage_collector()
        port = settings.port
        for s in server.servers:
            for sock in s.sockets:
                port = sock.getsockname()[1]
        url = f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::') else settings.host}:{port}"
        serving = announce(url) if announce is not None else f"UI {url}/, OTLP {url}/v1/traces"
        print(
            f"llmlens: serving on {url}  ({serving}, data {settings.store or settings.data_dir})",
            file=sys.stderr,
            flush=True,
        )
        if ready_file is not None:
            ready_file.write_text(url)

    server.startup = startup  # type: ignore[method-assign]
    server.run()
    return 0
