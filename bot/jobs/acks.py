"""Acknowledgements first: Discord fails a request that is not acknowledged within 3 seconds, while a job's first
message and its submission can wait a moment.

In a burst (a thousand `/imagine` at once) every acknowledgement competes for the CPU and for connections with the
status messages and submissions of the jobs acknowledged just before it; the last ones of the burst came after
3 s and were lost. So while a burst of acknowledgements is in flight, new jobs wait to start (claim, queue place,
submission, status message), for at most `MAX_HOLD_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

MAX_HOLD_SECONDS = 2.0
BURST = 16  # acknowledgements in flight at once that make new jobs wait (ordinary traffic never has this many)


class AcksFirst:
    """Counts acknowledgements in flight; `quiet()` waits while a burst of them is (bounded)."""

    def __init__(self, burst: int = BURST, max_hold: float = MAX_HOLD_SECONDS) -> None:
        self._burst = burst
        self._max_hold = max_hold
        self._in_flight = 0
        self._calm = asyncio.Event()
        self._calm.set()

    @contextlib.contextmanager
    def acknowledging(self) -> Iterator[None]:
        """Wrap one acknowledgement."""
        self._in_flight += 1
        if self._in_flight >= self._burst:
            self._calm.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight < self._burst:
                self._calm.set()

    async def quiet(self) -> None:
        """Return once fewer than a burst of acknowledgements are in flight, or after the longest hold."""
        if not self._calm.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._calm.wait(), self._max_hold)
