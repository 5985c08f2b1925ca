"""Adaptive polling: sparse early, dense around the likely finish, backing off after it.

Durations are learned per model and resolution from finished jobs; until enough are known, the model's
typical duration is the prior. Pure code: no I/O, no clock.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass

MIN_SAMPLES = 5
MAX_SAMPLES = 50
DENSE_INTERVAL_CAP = 2.0
WINDOW_FRACTION = 0.15
BACKOFF_FACTOR = 1.4


@dataclass(frozen=True)
class Estimate:
    """Where a task's duration likely falls, in seconds after submission."""

    early: float  # few tasks finish before this
    late: float  # few tasks finish after this


class DurationStats:
    """Recent task durations per key (model and resolution)."""

    def __init__(self) -> None:
        self._samples: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=MAX_SAMPLES))

    def add(self, key: str, seconds: float) -> None:
        if seconds > 0:
            self._samples[key].append(seconds)

    def estimate(self, key: str, prior_seconds: float) -> Estimate:
        samples = sorted(self._samples.get(key, ()))
        if len(samples) < MIN_SAMPLES:
            return Estimate(early=prior_seconds * 0.5, late=prior_seconds * 1.5)
        return Estimate(early=_quantile(samples, 0.02), late=_quantile(samples, 0.95))


def _quantile(sorted_values: list[float], q: float) -> float:
    index = q * (len(sorted_values) - 1)
    low = int(index)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (index - low)


def poll_offsets(estimate: Estimate, min_interval: float, max_interval: float) -> Iterator[float]:
    """Seconds after submission at which to poll, forever (the caller stops at the deadline).

    Early looks (never further apart than `max_interval`) catch fast failures such as safety blocks.
    Across the likely window the interval is a fraction of the window still ahead: polls get denser as
    the finish becomes more likely for a task not done yet (its hazard rate rises), and a late poll is
    only paid for by the tasks still running. After the window, back off up to `max_interval`.
    """
    first = max(min_interval, estimate.early)
    if first > 6 * min_interval:
        early = max(min_interval, min(first * 0.3, max_interval))
        while early < first:
            yield early
            early += max_interval
    t = first
    while t <= estimate.late:
        yield t
        t += min(DENSE_INTERVAL_CAP, max_interval, max(min_interval, (estimate.late - t) * WINDOW_FRACTION))
    interval = min_interval
    while True:
        yield t
        interval = min(max_interval, interval * BACKOFF_FACTOR)
        t += interval
