"""The captured OTLP fixtures (shared set and ours) with their ground-truth sidecars."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import SHARED_DIR

SHARED_FIXTURES = SHARED_DIR / "fixtures" / "otlp"
OWN_FIXTURES = Path(__file__).parent / "fixtures"


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
    if not root.is_dir():
        return []
    out = []
    for sidecar in sorted(root.rglob("*.expected.json")):
        expected = json.loads(sidecar.read_text())
        out.append(Payload(sidecar.parent / expected["payload_file"], expected))
    return out
