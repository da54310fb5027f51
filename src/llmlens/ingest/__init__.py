"""Decoded batches -> pricing -> redaction -> store, with group commit and backpressure."""

from ._pipeline import IngestPipeline, SpanTransform
from ._writer import Backpressure, GroupCommitWriter, WriteListener, WriterStats

__all__ = [
    "Backpressure",
    "GroupCommitWriter",
    "IngestPipeline",
    "SpanTransform",
    "WriteListener",
    "WriterStats",
]
