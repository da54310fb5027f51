"""The captured OTLP fixtures kept in this repository (the shared set and ours) with their ground-truth sidecars."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OWN_FIXTURES = Path(__file__).parent / "fixtures"
# Five OpenAI instrumentors captured by an outside harness (see its README.md); ours sit beside it.
SHARED_FIXTURES = OWN_FIXTURES / "shared"


@dataclass(frozen=True)
class Payload:
    path: Path
    expected: dict[str, Any]

    @property
    def signal(self) -> str:
        return str(self.expected["signal"])

    @property
    def instrumentor(self) -> str:
        return str(self.expected.get("instrumentor_variant") or self.path.parent.parent.name)

    @property
    def name(self) -> str:
        for root in (SHARED_FIXTURES, OWN_FIXTURES):
            if self.path.is_relative_to(root):
                return str(self.path.relative_to(root))
        return self.path.name

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": self.expected["content_type"]}
        if self.expected.get("content_encoding"):
            headers["Content-Encoding"] = self.expected["content_encoding"]
        return headers


def payloads(root: Path) -> list[Payload]:
    """Every payload under `root` with its sidecar; a missing or empty folder is an error, never an empty list."""
    out = []
    for sidecar in sorted(root.rglob("*.expected.json")):
        if root != SHARED_FIXTURES and sidecar.is_relative_to(SHARED_FIXTURES):
            continue  # the shared set is a collection of its own, with another sidecar format
        expected = json.loads(sidecar.read_text())
        out.append(Payload(sidecar.parent / expected["payload_file"], expected))
    if not out:
        raise FileNotFoundError(f"no OTLP fixtures under {root}: they are part of the repository, restore them")
    return out
