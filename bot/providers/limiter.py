"""How many API requests may be in flight to one provider: found by AIMD, not fixed.

The limit grows by about one per round of accepted requests while it is what holds requests back and answers
come as fast as they did with fewer in flight (additive increase: a provider that slows down under load is not
pushed harder), halves on a 429 (multiplicative decrease, at most once per `cooldown`), and a Retry-After
pauses new requests until it has passed. It stays between `floor` and `ceiling` (MAX_ACTIVE_JOBS). Waiting
here costs nothing, unlike waiting in httpcore's pool, which rescans its queue and every connection on each
event (so more connections than needed cost CPU).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

START = 16
DECREASE = 0.5
MAX_PAUSE_SECONDS = 120.0
SLOWER = 1.5  # answers this much slower than the fastest recent one: more in flight would not help
FLOOR_RTT = 0.001  # below this, an answer counts as fast (timer noise)
RTT_MEMORY = 30.0  # seconds after which the fastest answer seen is forgotten


class AdaptiveLimit:
    """An async context manager around one request; call `answered` with its status inside it."""

    def __init__(
        self,
        ceiling: int,
        *,
        start: int = START,
        floor: int = 1,
        cooldown: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ceiling = max(floor, ceiling)
        self.floor = floor
        self.limit = float(min(max(start, floor), self.ceiling))
        self._cooldown = cooldown
        self._clock = clock
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._paused_until = 0.0
        self._last_decrease = -float("inf")
        self._was_full = False
        self._fastest = float("inf")
        self._fastest_at = 0.0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def __aenter__(self) -> AdaptiveLimit:
        while True:
            pause = self._paused_until - self._clock()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            if self._in_flight < int(self.limit) and not self._waiters:
                break
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif not waiter.cancelled():
                    self._wake()  # it was woken but will not use the turn: pass it on
                raise
            if self._in_flight < int(self.limit) and self._paused_until <= self._clock():
                break
        self._in_flight += 1
        self._was_full = self._in_flight >= int(self.limit)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._in_flight -= 1
        self._wake()

    def answered(self, status: int, retry_after: float | None = None, seconds: float = 0.0) -> None:
        """Feed back one answer that took `seconds`: 2xx-4xx but 429 count as accepted; 429 (and Retry-After)
        back off."""
        now = self._clock()
        if seconds < self._fastest or now - self._fastest_at > RTT_MEMORY:
            self._fastest, self._fastest_at = seconds, now
        if status == 429:
            if now - self._last_decrease >= self._cooldown:
                self.limit = max(float(self.floor), self.limit * DECREASE)
                self._last_decrease = now
            if retry_after:
                self._paused_until = max(self._paused_until, now + min(retry_after, MAX_PAUSE_SECONDS))
        elif status < 500 and (self._was_full or self._waiters) and seconds <= max(FLOOR_RTT, self._fastest * SLOWER):
            self.limit = min(float(self.ceiling), self.limit + 1 / self.limit)

    def _wake(self) -> None:
        free = int(self.limit) - self._in_flight
        while self._waiters and free > 0:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1
