"""Where to poll next when a finish is equally likely anywhere in a window, priced by dynamic programming.

A poll costs 1. A result seen more than PROMPT seconds after it was ready costs LATE_COST polls' worth, and more
than LATE seconds after, VERY_LATE_COST more. The tables below minimise the expected total, first for a finish
spread evenly over a window of a given width, then for the search for a task's start of processing that
narrows its window (`SearchPlan`). Because lateness is priced per job, the cheapest plans are uneven: jobs whose
start was pinned closely get a dense window, those whose window is wide get one poll every LATE seconds (a late
result, never a very late one), which is how the median and the 95th percentile are both kept low for fewer
polls than an even spacing needs. The prices leave room for polls answered late under load (a simulation with
answers up to 0.4 s late, as in the benchmark at K = 500, chose them). Pure code, computed once per shape and
cached.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

PROMPT = 0.2
LATE = 0.7
LATE_COST = 5.0
VERY_LATE_COST = 20.0
STEP = 0.05  # the tables' resolution, in seconds
WIDEST = 12.0  # the table's widest window: wider ones are polled as it is, every LATE seconds or less
SEARCH_POINTS = 40  # the start search's resolution: this many steps across the start's range


@functools.cache
def _window_table() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """For each width (in STEPs): the expected cost of a finish spread evenly over it, and the best first step."""
    size = round(WIDEST / STEP)
    cost, step = [0.0] * (size + 1), [STEP] * (size + 1)
    for width in range(1, size + 1):
        best, best_at = float("inf"), width
        for at in range(1, width + 1):
            seconds = at * STEP
            lateness = LATE_COST * max(0.0, seconds - PROMPT) + VERY_LATE_COST * max(0.0, seconds - LATE)
            # Found within this step (chance at/width, lateness spread over it), or the rest of the window remains.
            value = 1.0 + lateness / (width * STEP) + (width - at) / width * cost[width - at]
            if value < best:
                best, best_at = value, at
        cost[width], step[width] = best, round(best_at * STEP, 9)
    return tuple(cost), tuple(step)


def _index(width: float) -> int:
    return min(round(WIDEST / STEP), max(1, round(width / STEP)))


def window_cost(width: float) -> float:
    """The expected cost of finding a finish spread evenly over `width` seconds."""
    if width <= 0:
        return 0.0
    cost = _window_table()[0]
    if width <= WIDEST:
        return cost[_index(width)]
    # Past the table a window is polled at its widest steps throughout, so its cost grows at their rate.
    span = round(2.0 / STEP)
    return cost[-1] + (width - WIDEST) * (cost[-1] - cost[-1 - span]) / (span * STEP)


def window_step(width: float) -> float:
    """How far into a window of `width` seconds (counted from where the finish may first be) to poll next."""
    return _window_table()[1][_index(width)]


@dataclass(frozen=True)
class SearchPlan:
    """When to look for a task's start of processing: after a poll that saw it waiting at points[i], next at
    points[follow[i]], or (follow[i] < 0) stop looking and poll its finish window."""

    points: tuple[float, ...]
    follow: tuple[int, ...]

    def next_after(self, pending_until: float) -> float | None:
        """The next look after the last poll that saw the task waiting (below the range: none yet)."""
        span, last = self.points[-1] - self.points[0], len(self.points) - 1
        if pending_until < self.points[0]:
            index = 0
        elif span <= 0 or pending_until >= self.points[-1]:
            index = last
        else:
            index = min(last, int((pending_until - self.points[0]) / span * last + 1e-9))
        follow = self.follow[index]
        return None if follow < 0 else self.points[follow]


@functools.lru_cache(maxsize=256)
def search_plan(
    start: tuple[float, float],
    ratio: tuple[float, float],
    whole: tuple[float, float],
    shift: tuple[float, float] = (0.0, 0.0),
) -> SearchPlan:
    """The cheapest looks for a start spread evenly over `start` (seconds after submission), for a task whose
    duration is `ratio` times its time to start plus `shift` and falls in `whole` (as `schedule` predicts
    windows)."""
    low, high = start
    count = SEARCH_POINTS
    points = tuple(low + (high - low) * i / count for i in range(count + 1))
    latest = max(whole[1], ratio[1] * high + shift[1])

    def bracketed(before: float, at: float) -> float:  # the finish window a start seen between these gives
        own = (max(at, ratio[0] * before + shift[0]), ratio[1] * at + shift[1])
        clipped = min(own[1], latest) - max(own[0], whole[0])
        return clipped if clipped > 0 else own[1] - own[0]  # as schedule._predict_paired does

    def unbracketed(after: float) -> float:  # ...and the one left when the search stops at `after`
        return latest - max(whole[0], ratio[0] * after + shift[0])

    cost = [0.0] * (count + 1)
    follow = [-1] * (count + 1)
    cost[count] = window_cost(unbracketed(points[count]))
    for i in range(count - 1, -1, -1):
        best, best_at = window_cost(unbracketed(points[i])), -1
        for j in range(i + 1, count + 1):
            seen = (j - i) / (count - i)  # the chance this look sees it processing
            value = 1.0 + seen * window_cost(bracketed(points[i], points[j])) + (1 - seen) * cost[j]
            if value < best:
                best, best_at = value, j
        cost[i], follow[i] = best, best_at
    return SearchPlan(points, tuple(follow))
