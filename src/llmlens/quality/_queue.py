"""A bounded queue of scores written by a background thread (for scores found after ingest commits)."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence

from llmlens.model import Score
from llmlens.store import Store

from ._record import ScoreTransform, reserved_name_error

logger = logging.getLogger("llmlens.quality")

_MAX_QUEUED = 100_000
_BATCH = 2_000


class ScoreQueue:
    """`put()` appends (dropping the oldest past the bound, counted); a daemon thread writes batches."""

    def __init__(self, store: Store, transforms: Sequence[ScoreTransform] = ()) -> None:
        self._store = store
        self._transforms = list(transforms)
        self._queue: deque[Score] = deque(maxlen=_MAX_QUEUED)
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.written = 0
        self.refused = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="llmlens-score-queue", daemon=True)
            self._thread.start()

    def put(self, scores: Sequence[Score]) -> None:
        if not scores:
            return
        with self._cond:
            overflow = len(self._queue) + len(scores) - _MAX_QUEUED
            if overflow > 0:
                self.dropped += overflow
            self._queue.extend(scores)
            self._cond.notify()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (within `timeout_s`), then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _take(self) -> list[Score]:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            return [self._queue.popleft() for _ in range(min(_BATCH, len(self._queue)))]

    def _run(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                return
            kept = []
            for score in batch:
                if reserved_name_error(score) is not None:
                    self.refused += 1
                    continue
                for transform in self._transforms:
                    transform(score)
                kept.append(score)
            try:
                result = self._store.write_scores(kept)
            except Exception:
                logger.exception("writing %d scores failed; they are dropped", len(kept))
                self.dropped += len(kept)
                continue
            self.written += result.written
            self.refused += len(result.type_conflicts)
