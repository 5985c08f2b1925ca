"""Poll planning from what providers say and what finished jobs taught: few polls, little added latency.

Per model key (provider, model and resolution) the bot learns two things from finished jobs: how long tasks
take, and how a task's time to its first "processing" answer relates to its whole duration. A running job
first looks for the moment its task starts processing, then predicts its own finish from that moment and
polls across the predicted window, then backs off. Once a key's history vouches for the windows, where to
look and how densely to poll are priced by `poll_costs` (polls against late results); until then, priors
shipped per model stand in and windows are polled sparsely. The plan is a pure function of what the job has
seen and of the key's current model, so re-planning after every poll and whenever the model changes (another
job of the key finished) is cheap. Pure code: no I/O, no clock.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from dataclasses import dataclass

from bot.jobs.poll_costs import PROMPT, search_plan, window_step

MIN_SAMPLES = 3  # finished jobs of a key before its learned figures are used at all
TRUSTED_SAMPLES = 10  # ...and before they replace the priors' wider windows
MAX_SAMPLES = 1000  # many: in a burst, the last ones to finish are the longest, so few would be biased
# Share of a task's duration spent before its first "processing" answer, assumed until learned (a wide band:
# the Hub's queue phase is short; a provider without one simply never narrows the window).
PRIOR_START_SHARE = (0.07, 0.13)
COLD_START_GAP = 0.3  # the spacing while looking for the start when the share is only a prior...
COLD_RELATIVE_GAP = 0.15  # ...and never finer than this share of the time elapsed
JITTER = 0.1  # a job's looks, and its first poll in a priced window, move by up to this share of their gap
COLD_GAP = 2.0  # the longest gap in a window known only from priors (no finish is likely anywhere in it)
WINDOW_FRACTION = 0.3  # in such a window, poll after this share of the window still ahead...
COLD_DENSE_GAP = 0.25  # ...but never closer than this
EARLY_LOOK_AFTER = 5.0  # a first poll later than this is preceded by looks for fast failures
BACKOFF_SHARE = 0.4  # past the window, wait this share of the time since its end
MAX_BRACKET = 0.5  # a start seen only this coarsely (relative to its time) teaches nothing about the ratio
SEARCH_PAST = 1.25  # keep looking for the start a little past where it usually is
RATIO_Q = 0.98  # each finished task bounds the ratio; nearly all bounds must agree


@dataclass(frozen=True)
class Estimate:
    """Where a task's duration likely falls, in seconds after submission."""

    early: float  # few tasks finish before this
    late: float  # few tasks finish after this


@dataclass
class Sighting:
    """What one job's polls have shown, in seconds after submission."""

    pending_until: float = 0.0  # the last poll that still saw the task waiting to start (0: submission)
    running_at: float | None = None  # the first poll that saw it processing
    last_poll: float | None = None

    def saw(self, at: float, running: bool | None) -> None:
        """Record a poll at `at`: running True/False, or None when the answer said neither.

        `at` is when the poll was sent. Under load the provider looks a little later; the ratio is learned from
        sightings timed the same way, so windows stay consistent (timing "processing" by the answer instead widens
        every bracket by the lag: simulated with answers up to 0.2 s late, the median delay rose from 0.29 to 0.50 s).
        """
        self.last_poll = at
        if running is True and self.running_at is None:
            self.running_at = at
        elif running is False and self.running_at is None:
            self.pending_until = at


@dataclass(frozen=True)
class Finished:
    """One finished task: its duration and, when seen, the bracket around its start of processing."""

    duration: float
    start_low: float | None = None
    start_high: float | None = None


@dataclass(frozen=True)
class KeyModel:
    """What is currently believed about one key's tasks."""

    duration: Estimate  # where the whole duration falls
    start: Estimate  # where the start of processing falls
    # A task's duration is `ratio` times its time to start of processing, plus `shift` seconds (low and high of
    # each): a ratio where waiting scales with the work, (1, 1) plus the processing time where it does not.
    ratio: tuple[float, float]
    learned: bool  # durations come from finished tasks
    paired: bool = False  # and so do ratio and shift
    spread: float = 0.0  # the width of the prior window
    shift: tuple[float, float] = (0.0, 0.0)

    def finish_after(self, waiting_at: float) -> float:
        """The earliest finish of a task still waiting at `waiting_at`."""
        return self.ratio[0] * waiting_at + self.shift[0]

    def finish_by(self, started_by: float) -> float:
        """The latest finish of a task that started by `started_by`."""
        return self.ratio[1] * started_by + self.shift[1]


class DurationStats:
    """Recent finished tasks per key and the model they give, recomputed only when a key learns something."""

    def __init__(self) -> None:
        self._samples: dict[str, deque[Finished]] = defaultdict(lambda: deque(maxlen=MAX_SAMPLES))
        self._models: dict[tuple[str, float, bool], KeyModel] = {}
        self.versions: dict[str, int] = defaultdict(int)
        self._added: dict[str, int] = defaultdict(int)  # samples ever added per key
        self._running: dict[str, Counter[int]] = defaultdict(Counter)  # polling jobs per key, by _added at start
        self._settled: dict[str, int] = {}  # per key: samples added before its oldest polling job began

    def begin(self, key: str) -> int:
        """A job of this key starts polling (see `model`); pass the returned token to `end`."""
        token = self._added[key]
        self._running[key][token] += 1
        self._settled.pop(key, None)
        return token

    def end(self, key: str, token: int) -> None:
        running = self._running[key]
        running[token] -= 1
        if running[token] <= 0:
            del running[token]
        self._settled.pop(key, None)

    def add(self, key: str, seconds: float, start: tuple[float, float] | None = None) -> None:
        """Learn one finished task (`start`: the polls just before and at its first "processing")."""
        if seconds <= 0:
            return
        if start is not None and 0 < start[0] < start[1] <= min(seconds, start[0] * (1 + MAX_BRACKET)):
            self._samples[key].append(Finished(seconds, start[0], start[1]))
        else:
            self._samples[key].append(Finished(seconds))
        self.versions[key] += 1
        self._added[key] += 1
        for cached in [c for c in self._models if c[0] == key]:
            del self._models[cached]

    def estimate(self, key: str, prior_seconds: float) -> Estimate:
        """Where the whole duration falls, learned or from the prior."""
        return self.model(key, prior_seconds).duration

    def model(self, key: str, prior_seconds: float) -> KeyModel:
        """The key's model. Tasks that finished while more of the key's jobs are still running are mostly the
        short ones of a burst: unless enough finished before it, durations stand in only as far as the prior
        agrees (the start-to-duration ratio has no such bias and is always used)."""
        samples = self._samples.get(key, ())
        suspect = False
        running = self._running.get(key)
        if running:
            settled = self._settled.get(key)
            if settled is None:
                settled = self._settled[key] = min(running)
            fresh = self._added[key] - settled
            suspect = settled < TRUSTED_SAMPLES and sum(running.values()) > fresh
        cached = self._models.get((key, prior_seconds, suspect))
        if cached is None:
            cached = _fit(list(samples), prior_seconds, suspect)
            self._models[(key, prior_seconds, suspect)] = cached
        return cached

    def predict(self, key: str, prior_seconds: float, seen: Sighting) -> Estimate:
        """Where this job's duration falls given what its polls have shown."""
        model = self.model(key, prior_seconds)
        return _predict(model, seen)


def _fit(samples: list[Finished], prior: float, suspect: bool = False) -> KeyModel:
    durations = sorted(s.duration for s in samples)
    learned = len(durations) >= MIN_SAMPLES
    guess = Estimate(prior * 0.5, prior * 1.5)
    duration = guess
    if learned:
        # Widened by the gap a sample of this size leaves past its extremes (it shrinks as samples accrue).
        low, high = _quantile(durations, 0.02), _quantile(durations, 0.98)
        pad = (high - low) / (len(durations) + 1)
        duration = Estimate(max(0.0, low - pad), high + pad)
    if len(durations) < TRUSTED_SAMPLES or suspect:
        duration = _union(duration, guess)
        learned = learned and not suspect
    paired = [s for s in samples if s.start_low is not None and s.start_high is not None]
    if len(paired) >= MIN_SAMPLES:
        brackets = [(s.duration, s.start_low, s.start_high) for s in paired if s.start_low and s.start_high]
        # Low end from the polls that still saw each task waiting: a bound a start is rarely below.
        start = Estimate(
            _quantile(sorted(b[1] for b in brackets), 0.02), _quantile(sorted(b[2] for b in brackets), 0.98)
        )
        if len(paired) < TRUSTED_SAMPLES:
            start = _union(start, Estimate(duration.early * PRIOR_START_SHARE[0], duration.late * PRIOR_START_SHARE[1]))
        # Each task bounds its ratio: duration / (poll at start) <= ratio <= duration / (poll before start)...
        ratio = _agreed([d / high for d, _, high in brackets], [d / low for d, low, _ in brackets])
        # ...or by the time after it: duration - (poll at start) <= processing <= duration - (poll before start).
        # Where waiting does not scale with the work (a queue), this is the narrower of the two.
        shift = (0.0, 0.0)
        processing = _agreed([d - high for d, _, high in brackets], [d - low for d, low, _ in brackets])
        narrower = processing[1] - processing[0] < (ratio[1] - ratio[0]) * (start.early + start.late) / 2
        # Processing times, like durations, are biased while a burst's first finishes are all there is.
        if narrower and learned:
            ratio, shift = (1.0, 1.0), processing
        # Polls bracket each start only as closely as they were spaced; where durations and the model are both
        # known, the shortest durations bound it more tightly (not the longest: a burst's first finishes are
        # its short tasks).
        implied = (duration.early - shift[1]) / ratio[1]
        if learned and implied < start.late:
            start = Estimate(max(start.early, implied), start.late)
        return KeyModel(duration, start, ratio, learned, paired=True, spread=guess.late - guess.early, shift=shift)
    low_share, high_share = PRIOR_START_SHARE
    start = Estimate(duration.early * low_share, duration.late * high_share)
    return KeyModel(duration, start, (1 / high_share, 1 / low_share), learned, spread=guess.late - guess.early)


def _agreed(lower_bounds: list[float], upper_bounds: list[float]) -> tuple[float, float]:
    """The range nearly all tasks' bounds agree on (its ends swapped where they disagree: the value varies)."""
    low, high = _quantile(sorted(lower_bounds), RATIO_Q), _quantile(sorted(upper_bounds), 1 - RATIO_Q)
    return (low, high) if low <= high else (high, low)


def _union(a: Estimate, b: Estimate) -> Estimate:
    return Estimate(min(a.early, b.early), max(a.late, b.late))


def _predict(model: KeyModel, seen: Sighting) -> Estimate:
    if model.paired:
        return _predict_paired(model, seen)
    whole = model.duration
    if seen.running_at is None or seen.pending_until <= 0:
        return whole
    early = max(seen.running_at, model.ratio[0] * seen.pending_until)
    late = model.ratio[1] * seen.running_at
    # Compared with the whole spread as first learned or assumed, not as it is now: during a burst, the
    # tasks finished so far are the short ones, so the current spread is both biased and too narrow.
    if late - early >= max(whole.late - whole.early, model.spread):
        return whole  # what the start said is no sharper than the durations alone
    return Estimate(early, late)


def _predict_paired(model: KeyModel, seen: Sighting) -> Estimate:
    """With the key's start-to-finish model learned: a window from this task's own start, within the key's
    range (its latest end also from the latest start, which a burst's first finishes do not bias)."""
    latest = max(model.duration.late, model.finish_by(model.start.late))
    if seen.running_at is None:  # still waiting: it cannot finish before its start allows
        return Estimate(min(max(model.duration.early, model.finish_after(seen.pending_until)), latest), latest)
    # Processing at its first look: it started after the key's usual earliest start.
    pending = seen.pending_until if seen.pending_until > 0 else min(model.start.early, seen.running_at)
    own = Estimate(max(seen.running_at, model.finish_after(pending)), model.finish_by(seen.running_at))
    clipped = Estimate(max(own.early, model.duration.early), min(own.late, latest))
    return clipped if clipped.early < clipped.late else own


def _quantile(sorted_values: list[float], q: float) -> float:
    index = q * (len(sorted_values) - 1)
    low = int(index)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (index - low)


def next_poll(
    model: KeyModel, seen: Sighting, window: Estimate, phase: float, min_interval: float, max_interval: float
) -> float:
    """Seconds after submission of the next poll, from the job's last poll (none yet: from submission).

    `phase` in [0, 1) is the job's own jitter, so jobs submitted together do not poll in waves.
    """
    last = seen.last_poll
    cap = max(min_interval, max_interval)
    floor = (last or 0.0) + min_interval
    if model.paired and seen.running_at is None:
        plan = search_plan(
            (_round(model.start.early), _round(model.start.late)),
            (_round(model.ratio[0], 0.01), _round(model.ratio[1], 0.01)),
            (_round(model.duration.early), _round(model.duration.late)),
            (_round(model.shift[0]), _round(model.shift[1])),
        )
        after = seen.pending_until if last is not None and last >= plan.points[0] else plan.points[0] - 1
        look = plan.next_after(after)
        if look is not None:
            previous = max(after, plan.points[0])
            look += phase * JITTER * (look - previous)
            return max(floor, _early_looks(last or 0.0, look, cap) if after < plan.points[0] else look)
    elif seen.running_at is None:
        search_until = model.start.late * SEARCH_PAST
        if (last is None or last < search_until) and search_until < window.early:
            # Look for the start of processing: it pins this task's finish far better than the prior's spread.
            first = max(min_interval, model.start.early + phase * COLD_START_GAP)
            if last is None or last < first:
                return max(floor, _early_looks(last or 0.0, first, cap))
            return last + max(min_interval, COLD_START_GAP, COLD_RELATIVE_GAP * last)
    if model.learned or model.paired:
        return max(floor, _priced(window, last, phase, min_interval, cap))
    return max(floor, _in_window(window, last, phase, min_interval, min(cap, COLD_GAP), cap))


def _round(value: float, step: float = 0.05) -> float:
    """Plans are cached per model shape; nearby shapes share one."""
    return round(value / step) * step


def _priced(window: Estimate, last: float | None, phase: float, min_interval: float, cap: float) -> float:
    """Polls across a window the key's history vouches for, spaced by `poll_costs` (the first one moved by the
    job's phase: jobs of a burst may share one window)."""
    if last is not None and last >= window.late:
        return last + min(cap, max(min_interval, PROMPT, (last - window.late) * BACKOFF_SHARE))
    base = max(window.early, last or 0.0)
    step = window_step(window.late - base)
    if last is None or last < window.early:
        step *= 1 + phase * JITTER
    return _early_looks(last or 0.0, base + min(cap, max(min_interval, step)), cap)


def _early_looks(last: float, target: float, cap: float) -> float:
    """`target`, unless it is far off: then a look every `cap` seconds before it."""
    if target - last > cap or (last == 0.0 and target > EARLY_LOOK_AFTER):
        return min(target, last + max(min(cap, target * 0.3), 0.01)) if last == 0.0 else last + cap
    return target


def _in_window(
    window: Estimate, last: float | None, phase: float, min_interval: float, longest: float, cap: float
) -> float:
    """Polls across a window known only from priors: sparse, at most `longest` apart, denser towards its end."""
    low_gap, high_gap = max(min_interval, COLD_DENSE_GAP), max(min_interval, longest)

    def gap_at(t: float) -> float:
        return min(high_gap, max(low_gap, (window.late - t) * WINDOW_FRACTION))

    if last is None or last < window.early:
        first = window.early + phase * gap_at(window.early)
        return _early_looks(last or 0.0, first, cap)
    if last < window.late:
        return last + gap_at(last)
    return last + min(cap, max(low_gap, (last - window.late) * BACKOFF_SHARE))
