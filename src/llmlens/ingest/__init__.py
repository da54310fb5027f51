"""Decoded batches -> pricing -> redaction -> store, with group commit and backpressure."""

from ._content import content_transforms
from ._pipeline import FeedbackTransform, IngestPipeline, SpanTransform
from ._truncate import FieldTruncator, truncate_text
from ._writer import Backpressure, GroupCommitWriter, WriteListener, WriterStats

__all__ = [
    "Backpressure",
    "FeedbackTransform",
    "FieldTruncator",
    "GroupCommitWriter",
    "IngestPipeline",
    "SpanTransform",
    "WriteListener",
    "WriterStats",
    "content_transforms",
    "truncate_text",
]
