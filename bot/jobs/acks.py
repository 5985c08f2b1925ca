"""Acknowledgements first: Discord fails a request that is not acknowledged within 3 seconds, while a job's first
message and its submission can wait a moment.

In a burst (a thousand `/imagine` at once) every acknowledgement competes for the CPU and for connections with the
status messages and submissions of the jobs acknowledged just before it; the last ones of the burst came after
3 s and were lost. Jobs therefore start (claim, queue place, submission, status message) once no acknowledgement is
in flight, or after at most `MAX_HOLD_SECONDS` (a steady stream of requests never starves them).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

MAX_HOLD_SECONDS = 2.0


class AcksFirst:
    """Counts acknowledgements in flight; `quiet()` waits until there are none (bounded)."""

    def __init__(self, max_hold: float = MAX_HOLD_SECONDS) -> None:
        self._max_hold = max_hold
        self._in_flight = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @contextlib.contextmanager
    def acknowledging(self) -> Iterator[None]:
        """Wrap one acknowledgement."""
        self._in_flight += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._quiet.set()

    async def quiet(self) -> None:
        """Return once no acknowledgement is in flight, or after the longest hold."""
        if self._in_flight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), self._max_hold)
