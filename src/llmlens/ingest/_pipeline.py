"""Decoded records -> pricing -> redaction -> group-committed store write."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from llmlens.model import Feedback, Span
from llmlens.pricing import PriceBook
from llmlens.store import current_project, force_project

from ._cpu_limiter import CpuLimiter
from ._writer import Backpressure, GroupCommitWriter

SpanTransform = Callable[[Span], None]
FeedbackTransform = Callable[[Feedback], None]
# Smaller batches are priced and redacted on the event loop: a thread hop would cost more.
INLINE_PREPARE_EVENTS = 200


class IngestPipeline:
    """Every ingestion path (native API, OTLP, gateway, import, demo) ends here."""

    def __init__(self, writer: GroupCommitWriter, prices: PriceBook) -> None:
        self.writer = writer
        self.prices = prices
        # Run on every span before it is stored, in order (e.g. redaction, trace context inheritance).
        self.transforms: list[SpanTransform] = []
        self.feedback_transforms: list[FeedbackTransform] = []
        # Decoding, pricing and redacting large batches: in a few threads, never on the event loop.
        self.cpu = CpuLimiter()

    @staticmethod
    def confine(spans: Sequence[Span], feedback: Sequence[Feedback] = ()) -> None:
        """Within a request confined to one project, every event belongs to it, whatever project it named.

        Whatever groups or looks up events by project (the trace assembler, the stores) must run after this.
        """
        project = current_project.get()
        if project is not None:
            force_project(spans, feedback, project)

    def prepare(
        self,
        spans: Sequence[Span],
        feedback: Sequence[Feedback] = (),
        *,
        transformed: bool = False,
        untransformed: Sequence[Span] = (),
    ) -> None:
        """Price every span and run the transforms on it, or (`transformed`) only on `untransformed`."""
        self.confine(spans, feedback)
        for fb in feedback:
            for fb_transform in self.feedback_transforms:
                fb_transform(fb)
        price = self.prices.price_span
        transforms = self.transforms
        for span in spans:
            price(span)
        for span in untransformed if transformed else spans:
            for transform in transforms:
                transform(span)

    async def ingest(self, spans: Sequence[Span], feedback: Sequence[Feedback]) -> None:
        """Price, transform and commit; returns once durable. Raises Backpressure when full."""
        if not spans and not feedback:
            return
        if len(spans) + len(feedback) <= INLINE_PREPARE_EVENTS:
            self.prepare(spans, feedback)
        else:
            if self.writer.full:  # do not price and redact a batch that would be refused
                raise Backpressure(retry_after_s=1.0)
            # ~15 µs an event: a large batch on the event loop would hold up every other request.
            await self.cpu.run(self.prepare, spans, feedback)
        await asyncio.wrap_future(self.writer.submit(spans, feedback))

    def ingest_sync(self, spans: Sequence[Span], feedback: Sequence[Feedback]) -> None:
        if not spans and not feedback:
            return
        self.prepare(spans, feedback)
        self.writer.write_now(spans, feedback)
