"""The training clock. Only the runner holds one; submissions get read-only numbers."""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    """Accumulates training time over start/stop segments, synchronizing the device first.

    ``synchronize`` is called before every read, so queued device work is charged to the
    segment that launched it (docs/design.md#the-clock).
    """

    def __init__(self, synchronize: Callable[[], None], elapsed_s: float = 0.0):
        self._sync = synchronize
        self.elapsed_s = elapsed_s  # accumulated training time
        self._t0: float | None = None

    @property
    def running(self) -> bool:
        return self._t0 is not None

    def start(self) -> None:
        assert self._t0 is None, "clock already running"
        self._sync()
        self._t0 = time.perf_counter()

    def now_s(self) -> float:
        """Training time so far, including a running segment; no synchronize (an estimate for
        a preempted run's lost time, never a measurement)."""
        extra = time.perf_counter() - self._t0 if self._t0 is not None else 0.0
        return self.elapsed_s + extra

    def stop(self) -> float:
        """Stop the segment; returns its length in seconds."""
        assert self._t0 is not None, "clock not running"
        self._sync()
        dt = time.perf_counter() - self._t0
        self._t0 = None
        self.elapsed_s += dt
        return dt
