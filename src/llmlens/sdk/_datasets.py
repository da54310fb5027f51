"""`llmlens.add_dataset_items`: put items into a dataset of the server, from the app or a script.

Unlike the other SDK calls this one waits for the server's answer (it returns the dataset's new version),
so call it from a script or a test, not on a request path. Like them it never raises into the caller: a
failure is logged and gives None. Adding items changes a dataset: the key needs the `admin` role (an
`ingest` key is refused with a 403, logged).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from . import _internal, _state
from ._transport import USER_AGENT

_TIMEOUT_S = 60.0


def add_dataset_items(
    dataset: str, items: Sequence[Mapping[str, Any]], *, description: str | None = None
) -> int | None:
    """Add `items` (`{"messages": [...]}` or `{"input": "..."}`, with optional `expected_output`, `metadata`,
    `tools`, `context`, `id`) to `dataset`, made on first use. Returns its new version, or None (not
    initialised, or the server refused: logged)."""
    config = _state.config
    if config is None:
        return None
    try:
        body: dict[str, Any] = {"items": [dict(item) for item in items]}
        if description:
            body["description"] = description
        status, answer = _post(config.url, f"/api/v1/datasets/{quote(dataset, safe='')}/items", body, config)
    except (TypeError, ValueError) as exc:
        _internal.warn_once(f"dataset:{dataset}:items", "llmlens: dataset %r: items are not JSON: %s", dataset, exc)
        return None
    except (OSError, http.client.HTTPException) as exc:
        _internal.logger.warning("llmlens: could not add items to dataset %r: %s", dataset, exc)
        return None
    if status != 200:
        _internal.logger.warning(
            "llmlens: the server refused items for dataset %r (%s): %s", dataset, status, answer.get("error")
        )
        return None
    rejected = answer.get("rejected") or []
    if rejected:
        _internal.logger.warning(
            "llmlens: dataset %r: %d item(s) refused, first: %s", dataset, len(rejected), rejected[0].get("error")
        )
    version = answer.get("version")
    return int(version) if isinstance(version, int) else None


def _post(url: str, path: str, body: dict[str, Any], config: Any) -> tuple[int, dict[str, Any]]:
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = connection_class(parts.hostname or "", parts.port, timeout=_TIMEOUT_S)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    if config.project:
        headers["X-LLMLens-Project"] = config.project
    try:
        conn.request("POST", parts.path.rstrip("/") + path, body=json.dumps(body).encode(), headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    try:
        answer = json.loads(data) if data else {}
    except ValueError:
        answer = {"error": data[:300].decode("utf-8", "replace")}
    return response.status, answer if isinstance(answer, dict) else {}
