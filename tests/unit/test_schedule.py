"""The poll plan as a user would notice it: fewer polls than a fixed poller for the same or less delay, plans
that move when the estimate does, and priors that give way to what is learned. Simulated time only."""

from __future__ import annotations

import heapq
import itertools
import random
import statistics
from dataclasses import dataclass, field

from bot.jobs.poll_costs import LATE, PROMPT, search_plan, window_step
from bot.jobs.schedule import DurationStats, Estimate, Sighting, next_poll

KEY = "hub:nano-banana-2:default"
PRIOR = 20.0


@dataclass
class SimJob:
    duration: float
    phase: float
    seen: Sighting = field(default_factory=Sighting)
    polls: int = 0
    delay: float | None = None  # task ready -> the poll that saw it done


def burst(
    stats: DurationStats,
    durations: list[float],
    share: float,
    rng: random.Random,
    share_spread: float = 0.0,
    waits: list[float] | None = None,
) -> list[SimJob]:
    """Run jobs submitted together against a task that starts processing after `share` of its duration (give or
    take `share_spread` of it, per task), re-planning each job at least every second and learning from each
    finish, as the runner does. With `waits`, task i instead waits waits[i] in a queue, then processes for
    durations[i]."""
    if waits is not None:
        durations = [wait + work for wait, work in zip(waits, durations, strict=True)]
    jobs = [SimJob(d, rng.random()) for d in durations]
    shares = [share * (1 + rng.uniform(-share_spread, share_spread)) for _ in jobs]
    if waits is not None:
        shares = [wait / job.duration for wait, job in zip(waits, jobs, strict=True)]
    tokens = [stats.begin(KEY) for _ in jobs]
    events = [(0.0, i, False) for i in range(len(jobs))]
    while events:
        now, index, is_poll = heapq.heappop(events)
        job = jobs[index]
        if is_poll:
            job.polls += 1
            if now >= job.duration:
                job.delay = now - job.duration
                seen = job.seen
                start = (seen.pending_until, seen.running_at) if seen.running_at and seen.pending_until else None
                stats.add(KEY, job.duration, start)
                stats.end(KEY, tokens[index])
                continue
            job.seen.saw(now, now >= shares[index] * job.duration)
        window = stats.predict(KEY, PRIOR, job.seen)
        at = next_poll(stats.model(KEY, PRIOR), job.seen, window, job.phase, 0.2, 15.0)
        heapq.heappush(events, (max(at, now), index, True) if at <= now + 1.0 else (now + 1.0, index, False))
    return jobs


def fixed_poller(durations: list[float], every: float = 2.0) -> tuple[float, list[float]]:
    polls = [int(-(-d // every)) for d in durations]
    return statistics.mean(polls), sorted(p * every - d for p, d in zip(polls, durations, strict=True))


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


def test_a_warm_bot_polls_far_less_than_a_two_second_poller_and_finds_results_sooner() -> None:
    """Ten servers, each with its own history of 20 jobs, then a burst of 300 (pooled: one history can be unlucky)."""
    polls, base_polls, delays, base_delays = [], [], [], []
    for seed in range(10):
        rng = random.Random(seed)
        stats = DurationStats()
        burst(stats, [rng.uniform(15, 25) for _ in range(20)], 0.1, rng)  # warm-up
        durations = [rng.uniform(15, 25) for _ in range(300)]
        jobs = burst(stats, durations, 0.1, rng)
        polls += [j.polls for j in jobs]
        delays += [j.delay for j in jobs if j.delay is not None]
        base_polls.append(fixed_poller(durations)[0])
        base_delays += fixed_poller(durations)[1]
    assert statistics.mean(polls) <= 0.6 * statistics.mean(base_polls)
    assert quantile(delays, 0.5) <= 0.3 and quantile(delays, 0.95) <= 1.0
    assert quantile(base_delays, 0.5) > quantile(delays, 0.5)


def test_single_jobs_of_a_warm_bot_poll_little_and_find_results_promptly() -> None:
    """One job at a time (a quiet server): nothing to learn from in flight, only from the key's history."""
    rng = random.Random(8)
    stats = DurationStats()
    burst(stats, [rng.uniform(15, 25) for _ in range(20)], 0.1, rng)
    durations = [rng.uniform(15, 25) for _ in range(200)]
    jobs = [burst(stats, [duration], 0.1, rng)[0] for duration in durations]
    delays = [j.delay for j in jobs if j.delay is not None]
    assert statistics.mean(j.polls for j in jobs) <= 0.6 * fixed_poller(durations)[0]
    assert quantile(delays, 0.5) <= 0.3 and quantile(delays, 0.95) <= 1.0


def test_a_finish_anywhere_in_a_window_is_seen_within_a_second_and_a_narrow_window_at_once() -> None:
    for width in (0.2, 0.5, 1.0, 2.0, 5.0, 30.0):
        assert 0 < window_step(width) <= LATE
    assert window_step(0.5) <= PROMPT  # a start pinned closely: its finish is polled densely


def test_a_cold_burst_learns_from_its_first_finishes_and_polls_no_more_than_the_fixed_poller() -> None:
    rng = random.Random(3)
    durations = [rng.uniform(15, 25) for _ in range(300)]
    jobs = burst(DurationStats(), durations, 0.1, rng)
    base_polls, _ = fixed_poller(durations)
    delays = [j.delay for j in jobs if j.delay is not None]
    assert statistics.mean(j.polls for j in jobs) <= base_polls
    assert quantile(delays, 0.95) <= 1.0


def test_the_start_share_is_learned_not_assumed() -> None:
    """A provider whose tasks spend a fifth of their time waiting: still few polls once learned."""
    rng = random.Random(11)
    stats = DurationStats()
    burst(stats, [rng.uniform(15, 25) for _ in range(40)], 0.2, rng)
    low, high = stats.model(KEY, PRIOR).ratio
    assert 4.5 <= low <= 5.0 <= high <= 5.5
    durations = [rng.uniform(15, 25) for _ in range(200)]
    jobs = burst(stats, durations, 0.2, rng)
    assert statistics.mean(j.polls for j in jobs) < 0.85 * fixed_poller(durations)[0]


def test_the_plan_moves_when_the_estimate_does() -> None:
    stats = DurationStats()
    seen = Sighting()
    seen.saw(1.8, running=False)
    seen.saw(2.0, running=True)  # this task started processing at about 2 s
    model = stats.model(KEY, PRIOR)
    before = next_poll(model, seen, stats.predict(KEY, PRIOR, seen), 0.5, 0.2, 30.0)
    for duration in (15.0, 16.0, 17.0, 18.0):  # other jobs finish: a tenth of their time was spent waiting
        stats.add(KEY, duration, (duration * 0.1 - 0.1, duration * 0.1 + 0.05))
    window = stats.predict(KEY, PRIOR, seen)
    after = next_poll(stats.model(KEY, PRIOR), seen, window, 0.5, 0.2, 30.0)
    assert 17.0 < window.early < window.late < 21.5  # about 10 x its own start, not the prior's 10-30 s
    assert after != before and window.early <= after <= window.late


def test_priors_give_way_to_learned_durations() -> None:
    stats = DurationStats()
    assert stats.estimate(KEY, 20) == Estimate(early=10, late=30)
    for _ in range(12):
        stats.add(KEY, 100)
    assert stats.estimate(KEY, 20) == Estimate(early=100, late=100)


def test_polls_never_come_closer_than_the_minimum_nor_further_apart_than_the_maximum() -> None:
    stats = DurationStats()
    for duration in range(60, 72):
        stats.add(KEY, float(duration))
    seen, times = Sighting(), []
    model = stats.model(KEY, PRIOR)
    for _ in range(40):
        at = next_poll(model, seen, stats.predict(KEY, PRIOR, seen), 0.3, 0.5, 10.0)
        times.append(at)
        seen.saw(at, running=None)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.5 - 1e-9 and max(gaps) <= 10.0 + 1e-9
    assert times[0] < 60 and any(60 <= t <= 71 for t in times)


def test_the_first_finishers_of_a_burst_do_not_pull_the_others_window_in() -> None:
    """They are the short ones: a job that learned nothing of its own start still looks as late as the prior."""
    stats = DurationStats()
    tokens = [stats.begin(KEY) for _ in range(100)]
    for token, duration in zip(
        tokens, (15.0, 15.1, 15.2, 15.3, 15.4, 15.5, 15.6, 15.7, 15.8, 15.9, 16.0), strict=False
    ):
        stats.add(KEY, duration)
        stats.end(KEY, token)
    assert stats.predict(KEY, PRIOR, Sighting()).late >= 30
    for token in tokens[11:]:
        stats.end(KEY, token)
    assert stats.predict(KEY, PRIOR, Sighting()).late < 17  # nothing is running: what finished is the truth


def test_without_a_waiting_phase_a_cold_burst_still_polls_no_more_than_the_fixed_poller() -> None:
    rng = random.Random(5)
    durations = [rng.uniform(15, 25) for _ in range(300)]
    jobs = burst(DurationStats(), durations, 0.0, rng)
    assert statistics.mean(j.polls for j in jobs) <= fixed_poller(durations)[0]


def test_a_slow_model_with_widely_spread_durations_still_searches_for_the_start() -> None:
    """33-57 s tasks waiting 9-11 % of their time: a finish window wider than the cost tables still costs what
    polling it does, so looking for the start stays worth it."""
    rng = random.Random(12)
    stats = DurationStats()
    burst(stats, [rng.uniform(33, 57) for _ in range(20)], 0.1, rng, share_spread=0.1)
    durations = [rng.uniform(33, 57) for _ in range(200)]
    jobs = burst(stats, durations, 0.1, rng, share_spread=0.1)
    delays = [j.delay for j in jobs if j.delay is not None]
    assert statistics.mean(j.polls for j in jobs) <= 0.6 * fixed_poller(durations)[0]
    assert quantile(delays, 0.5) <= 0.3 and quantile(delays, 0.95) <= 1.0


def test_a_task_waiting_long_past_its_usual_start_is_not_polled_at_the_minimum_interval() -> None:
    assert search_plan((2.0, 2.0), (9.9, 10.1), (10.0, 30.0)).next_after(100.0) is None
    assert search_plan((1.5, 2.5), (9.9, 10.1), (15.0, 25.0)).next_after(2.6) is None


def test_failed_polls_are_retried_no_sooner_than_the_minimum_interval() -> None:
    rng = random.Random(2)
    stats = DurationStats()
    burst(stats, [rng.uniform(15, 25) for _ in range(20)], 0.1, rng)
    seen, times = Sighting(), []
    for _ in range(30):  # the provider is unreachable: every answer says neither waiting nor processing
        model = stats.model(KEY, PRIOR)
        at = next_poll(model, seen, stats.predict(KEY, PRIOR, seen), 0.7, 0.2, 15.0)
        times.append(at)
        seen.saw(at, running=None)
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.2 - 1e-9


def test_jobs_of_a_burst_sharing_one_window_do_not_poll_in_waves() -> None:
    """A provider without a waiting phase: every job of a burst gets the key's window."""
    rng = random.Random(6)
    stats = DurationStats()
    burst(stats, [rng.uniform(15, 25) for _ in range(20)], 0.0, rng)
    model = stats.model(KEY, PRIOR)
    seen = Sighting()
    seen.saw(1.0, running=True)  # processing from the first look, as such a provider answers
    window = stats.predict(KEY, PRIOR, seen)
    firsts = [next_poll(model, seen, window, rng.random(), 0.2, 30.0) for _ in range(100)]
    assert max(firsts) - min(firsts) >= 0.05 and len({round(t, 3) for t in firsts}) > 50


def test_a_provider_whose_queue_wait_does_not_scale_with_the_task_is_polled_from_its_start() -> None:
    """Waits of 0.5-10 s before 15-25 s of work: the finish is the start plus the work, not a multiple of it."""
    polls, base, delays = [], [], []
    for seed in range(3):
        rng = random.Random(seed)
        stats = DurationStats()
        burst(stats, [rng.uniform(15, 25) for _ in range(20)], 0, rng, waits=[rng.uniform(0.5, 10) for _ in range(20)])
        work, waits = [rng.uniform(15, 25) for _ in range(100)], [rng.uniform(0.5, 10) for _ in range(100)]
        jobs = burst(stats, work, 0, rng, waits=waits)
        polls += [j.polls for j in jobs]
        base.append(fixed_poller([a + b for a, b in zip(waits, work, strict=True)])[0])
        delays += [j.delay for j in jobs if j.delay is not None]
    assert statistics.mean(polls) <= statistics.mean(base)
    assert quantile(delays, 0.5) <= 0.3 and quantile(delays, 0.95) <= 1.0
