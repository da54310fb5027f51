"""What every stored span's content goes through, in order: numbers checked, redaction, then truncation."""

from __future__ import annotations

from llmlens.model import drop_out_of_range_numbers
from llmlens.redaction import Redactor

from ._pipeline import FeedbackTransform, SpanTransform
from ._truncate import FieldTruncator


def content_transforms(redactor: Redactor, max_field_chars: int) -> tuple[list[SpanTransform], list[FeedbackTransform]]:
    """Redact first (a secret cut in half by truncation could slip past its pattern), then truncate.

    Each transform is idempotent, so a span that gains content later (OTLP log records) can go
    through them again. The truncator is always there: besides cutting long text it repairs text
    no store can encode. (Redaction of text with lone surrogates works on str.)
    """
    # First, numbers no store or sketch can take (an infinite latency fails the commit it is in) are cleared.
    spans: list[SpanTransform] = [drop_out_of_range_numbers]
    feedback: list[FeedbackTransform] = []
    if redactor.active:
        spans.append(redactor.redact_span)
        feedback.append(redactor.redact_feedback)
    truncator = FieldTruncator(max_field_chars)
    spans.append(truncator)
    feedback.append(truncator.feedback)
    return spans, feedback
