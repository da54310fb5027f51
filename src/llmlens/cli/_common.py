"""What the subcommands share: errors, --url/--data/--config options, talking to a server or a store."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmlens.settings import Settings
    from llmlens.store import QueryResult, Store

DEFAULT_URL = "http://127.0.0.1:4318"


class CliError(Exception):
    """One clear line for the user, and an exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="llmlens.toml to read (default: $LLMLENS_CONFIG or ./llmlens.toml)")


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """--url (a running server) or --data (open the store directly)."""
    add_config_option(parser)
    parser.add_argument("--url", help=f"a running llmlens server (default: $LLMLENS_URL, else {DEFAULT_URL} if up)")
    parser.add_argument("--data", type=Path, help="open the store in this data directory instead of a server")
    parser.add_argument("--store", help="store URL (duckdb://PATH or clickhouse://...) instead of a server")
    parser.add_argument("--api-key", help="API key for the server (default: $LLMLENS_API_KEY)")
    parser.add_argument("--project", help="project (default: the server's default project)")


def load_cli_settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    from llmlens.settings import SettingsError, load_settings

    if getattr(args, "data", None) is not None:
        overrides.setdefault("data_dir", args.data)
    if getattr(args, "store", None):
        overrides.setdefault("store", args.store)
    try:
        return load_settings(getattr(args, "config", None), overrides=overrides)
    except SettingsError as exc:
        raise CliError(str(exc)) from None


@dataclass
class Target:
    """Where a reading command gets its data: a server over HTTP, or a store opened here."""

    url: str | None
    settings: Settings
    api_key: str | None
    project: str | None

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if self.project:
            headers["X-LLMLens-Project"] = self.project
        return headers

    def open_store(self, *, read_only: bool = True) -> Store:
        from llmlens.store import open_store

        try:
            return open_store(self.settings.store or None, self.settings.data_dir, read_only=read_only)
        except Exception as exc:
            if "lock" in str(exc).lower():
                raise CliError(
                    f"the store in {self.settings.data_dir} is in use by a running server; use --url instead"
                ) from None
            raise CliError(f"cannot open the store: {exc}") from None

    def post(self, path: str, payload: Any, *, timeout: float = 60.0) -> Any:
        import httpx

        assert self.url is not None
        try:
            response = httpx.post(self.url.rstrip("/") + path, json=payload, headers=self.headers(), timeout=timeout)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach {self.url}: {exc}") from None
        return _answer(response)

    def get(self, path: str, params: dict[str, Any] | None = None, *, timeout: float = 60.0) -> Any:
        import httpx

        assert self.url is not None
        try:
            response = httpx.get(self.url.rstrip("/") + path, params=params, headers=self.headers(), timeout=timeout)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach {self.url}: {exc}") from None
        return _answer(response)

    def sql(self, query: str) -> QueryResult:
        from llmlens.store import QueryResult, SqlFailed, SqlRejected

        if self.url:
            doc = self.post("/api/v1/sql", {"query": query})
            return QueryResult(
                columns=doc["columns"],
                rows=doc["rows"],
                types=doc.get("types", []),
                truncated=doc.get("truncated", False),
            )
        store = self.open_store()
        try:
            return store.user_sql(
                query,
                project=self.project or self.settings.project,
                max_rows=self.settings.sql_max_rows,
                timeout_s=self.settings.sql_timeout_s,
            )
        except (SqlRejected, SqlFailed) as exc:
            raise CliError(str(exc)) from None
        finally:
            store.close()


def _answer(response: Any) -> Any:
    try:
        doc = response.json()
    except json.JSONDecodeError:
        doc = None
    if response.status_code >= 400:
        message = doc.get("error") if isinstance(doc, dict) else response.text[:300]
        raise CliError(f"server answered {response.status_code}: {message}")
    return doc


def _server_up(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url.rstrip("/") + "/healthz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def resolve_target(args: argparse.Namespace) -> Target:
    """--url wins; then --data/--store; then $LLMLENS_URL; then a server on the default port; else ./.llmlens."""
    import os

    settings = load_cli_settings(args)
    api_key = getattr(args, "api_key", None) or os.environ.get("LLMLENS_API_KEY")
    project = getattr(args, "project", None)
    if getattr(args, "url", None):
        return Target(args.url, settings, api_key, project)
    if getattr(args, "data", None) is not None or getattr(args, "store", None):
        return Target(None, settings, api_key, project)
    env_url = os.environ.get("LLMLENS_URL")
    if env_url:
        return Target(env_url, settings, api_key, project)
    if _server_up(settings.url):
        return Target(settings.url, settings, api_key, project)
    return Target(None, settings, api_key, project)
