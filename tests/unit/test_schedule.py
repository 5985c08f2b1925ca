from __future__ import annotations

import bisect
import itertools
import random

from bot.jobs.schedule import DurationStats, Estimate, poll_offsets


def simulate(offsets: list[float], durations: list[float]) -> tuple[float, list[float]]:
    """Mean polls per task and the added latency of each task for a fixed poll plan."""
    polls, latency = [], []
    for duration in durations:
        index = bisect.bisect_left(offsets, duration)
        polls.append(index + 1)
        latency.append(offsets[index] - duration)
    return sum(polls) / len(polls), sorted(latency)


def test_learned_schedule_beats_a_fixed_two_second_poller() -> None:
    rng = random.Random(7)
    stats = DurationStats()
    for _ in range(50):
        stats.add("hub:nano-banana:1K", rng.uniform(15, 25))
    durations = [rng.uniform(15, 25) for _ in range(2000)]
    ours = list(itertools.islice(poll_offsets(stats.estimate("hub:nano-banana:1K", 12), 0.75, 15), 200))
    baseline = [2.0 * i for i in range(1, 200)]
    our_polls, our_latency = simulate(ours, durations)
    base_polls, base_latency = simulate(baseline, durations)
    assert our_polls < base_polls
    assert our_latency[len(our_latency) // 2] < 0.5
    assert our_latency[int(len(our_latency) * 0.95)] < 1.5
    assert base_latency[len(base_latency) // 2] > our_latency[len(our_latency) // 2]


def test_prior_is_used_until_enough_samples() -> None:
    stats = DurationStats()
    for _ in range(4):
        stats.add("k", 100)
    assert stats.estimate("k", 20) == Estimate(early=10, late=30)
    stats.add("k", 100)
    assert stats.estimate("k", 20) == Estimate(early=100, late=100)


def test_offsets_are_increasing_sparse_early_and_capped_late() -> None:
    offsets = list(itertools.islice(poll_offsets(Estimate(early=30, late=40), 1.0, 10.0), 80))
    assert offsets == sorted(offsets)
    early = [t for t in offsets if t < 30]
    assert early == [9.0, 19.0, 29.0]  # a few looks for fast failures, no gap over the cap
    assert offsets[len(early)] == 30.0  # then dense from the likely start
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert max(gaps) <= 10.0 + 1e-9
    assert gaps[-1] == 10.0
