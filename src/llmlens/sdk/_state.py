"""The process-wide SDK state: None until `init`, so every hot path starts with one cheap check."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._config import SDKConfig
    from ._exporter import BatchExporter

exporter: BatchExporter | None = None
config: SDKConfig | None = None
