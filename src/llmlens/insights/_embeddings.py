"""Prompt embeddings for the semantic tier of cacheable prompts: asked of an OpenAI-compatible
`/embeddings` endpoint on a configured upstream, in the insights worker (never on a request), and kept
in `<data_dir>/embeddings.sqlite3` keyed by (project, model, SHA-256 of the text), so a prompt is
embedded once whatever the number of refreshes or calls that sent it.

Configured by `insights_embedding_model` = "UPSTREAM:MODEL" (or "MODEL" for the `openai` upstream);
the key is the upstream's `<NAME>_API_KEY` from the server's environment, as for replays. Nothing is
sent anywhere while it is empty.
"""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import sys
import threading
import time
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from llmlens._private_files import create_private_file, make_private_dir
from llmlens.replay.providers import DEFAULT_UPSTREAMS, Upstream
from llmlens.settings import SettingsError

BATCH = 64  # texts per /embeddings request
MAX_CHARS = 8_000  # of a prompt sent to be embedded (embedding models read ~8k tokens at most)
KEEP_DAYS = 30  # an embedding not used by a refresh for this long is dropped

# Vectors are float32 arrays (typecode "f"); stored as their little-endian bytes, whatever the machine.


def from_blob(blob: bytes) -> array[float]:
    vector = array("f")
    vector.frombytes(blob)
    if sys.byteorder != "little":
        vector.byteswap()
    return vector


def to_blob(vector: array[float]) -> bytes:
    if sys.byteorder == "little":
        return vector.tobytes()
    swapped = array("f", vector)
    swapped.byteswap()
    return swapped.tobytes()


def unit(values: Sequence[float]) -> array[float]:
    """`values` scaled to length 1, as float32 (all zeros stay zeros)."""
    vector = array("f", values)
    norm = math.hypot(*vector) or 1.0
    return array("f", [x / norm for x in vector])


class EmbeddingError(Exception):
    """The embeddings could not be had: the message says from where and why."""


@dataclass(frozen=True, slots=True)
class EmbeddingModel:
    upstream: str
    model: str
    base_url: str
    api_key: str | None

    @classmethod
    def from_settings(cls, spec: str, upstreams: Mapping[str, str], env: Mapping[str, str]) -> EmbeddingModel | None:
        """None when `spec` is empty; ValueError naming what is wrong otherwise."""
        spec = spec.strip()
        if not spec:
            return None
        upstream, sep, model = spec.partition(":")
        if not sep:
            upstream, model = "openai", spec
        if not upstream or not model:
            raise ValueError(f"insights_embedding_model must be UPSTREAM:MODEL or MODEL, got {spec!r}")
        urls = {**DEFAULT_UPSTREAMS, **upstreams}  # the replay's and judges' upstreams, keys named alike
        if upstream not in urls:
            raise ValueError(
                f"insights_embedding_model names upstream {upstream!r}, which is not configured "
                f"(configured: {', '.join(sorted(urls))}); add it under [upstreams]"
            )
        endpoint = Upstream(upstream, urls[upstream].rstrip("/"), "openai")
        return cls(upstream, model, endpoint.base_url, env.get(endpoint.key_variable) or None)

    @property
    def name(self) -> str:
        return f"{self.upstream}:{self.model}"


def text_key(text: str) -> str:
    return hashlib.sha256(text[:MAX_CHARS].encode("utf-8", "replace")).hexdigest()


class EmbeddingStore:
    """Vectors by (project, model, text key): a SQLite file, or memory when `path` is None. Thread-safe."""

    def __init__(self, path: Path | None) -> None:
        if path is not None:
            create_private_file(path)
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS embeddings (project TEXT NOT NULL, model TEXT NOT NULL, "
                "text_key TEXT NOT NULL, vector BLOB NOT NULL, used_at REAL NOT NULL, "
                "PRIMARY KEY (project, model, text_key))"
            )

    def get(self, project: str, model: str, keys: Sequence[str]) -> dict[str, array[float]]:
        found: dict[str, array[float]] = {}
        now = time.time()
        with self._lock, self._db:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ", ".join("?" * len(chunk))
                where = f"project = ? AND model = ? AND text_key IN ({marks})"
                for key, blob in self._db.execute(
                    f"SELECT text_key, vector FROM embeddings WHERE {where}", [project, model, *chunk]
                ):
                    found[key] = from_blob(blob)
                self._db.execute(f"UPDATE embeddings SET used_at = ? WHERE {where}", [now, project, model, *chunk])
        return found

    def put(self, project: str, model: str, vectors: Mapping[str, array[float]]) -> None:
        now = time.time()
        rows = [(project, model, k, to_blob(v), now) for k, v in vectors.items()]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)", rows)
            self._db.execute("DELETE FROM embeddings WHERE used_at < ?", [now - KEEP_DAYS * 86_400])


class Embeddings:
    """Unit vectors for prompts of one project: from the store, else from the model (then stored)."""

    def __init__(
        self,
        model: EmbeddingModel,
        store: EmbeddingStore,
        *,
        threshold: float = 0.95,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model = model
        self.store = store
        self.threshold = threshold
        self._client = httpx.Client(timeout=timeout_s, transport=transport, trust_env=False)

    def vectors(self, project: str, texts: Sequence[str]) -> dict[str, array[float]]:
        """Unit vector per text key of `texts`; EmbeddingError when the model cannot be asked."""
        by_key = {text_key(t): t[:MAX_CHARS] for t in texts}
        found = self.store.get(project, self.model.name, list(by_key))
        missing = [k for k in by_key if k not in found]
        for start in range(0, len(missing), BATCH):
            keys = missing[start : start + BATCH]
            fresh = dict(zip(keys, self._embed([by_key[k] for k in keys]), strict=True))
            self.store.put(project, self.model.name, fresh)
            found.update(fresh)
        return found

    def _embed(self, texts: list[str]) -> list[array[float]]:
        url = f"{self.model.base_url}/embeddings"
        headers = {"authorization": f"Bearer {self.model.api_key}"} if self.model.api_key else {}
        try:
            response = self._client.post(url, json={"model": self.model.model, "input": texts}, headers=headers)
        except httpx.HTTPError as exc:
            raise EmbeddingError(f"cannot reach {url} for {self.model.name}: {exc or type(exc).__name__}") from exc
        if response.status_code != 200:
            raise EmbeddingError(f"{url} answered {response.status_code} for {self.model.name}: {response.text[:200]}")
        try:
            data = sorted(response.json()["data"], key=lambda d: d["index"])
            vectors = [unit(d["embedding"]) for d in data]
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(f"{url} sent no embeddings list for {self.model.name}: {exc!r}") from exc
        if len(vectors) != len(texts):
            raise EmbeddingError(f"{url} sent {len(vectors)} embeddings for {len(texts)} texts")
        return vectors


def open_embeddings(
    spec: str,
    threshold: float,
    upstreams: Mapping[str, str],
    data_dir: Path | None,
    *,
    transport: httpx.BaseTransport | None = None,
) -> Embeddings | None:
    """The configured embeddings, or None when none is configured; SettingsError (which stops start-up) names
    a bad setting."""
    if not 0 < threshold <= 1:
        raise SettingsError(f"insights_semantic_threshold must be above 0 and at most 1, got {threshold!r}")
    try:
        model = EmbeddingModel.from_settings(spec, upstreams, os.environ)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    if model is None:
        return None
    path = make_private_dir(data_dir) / "embeddings.sqlite3" if data_dir else None
    return Embeddings(model, EmbeddingStore(path), threshold=threshold, transport=transport)
