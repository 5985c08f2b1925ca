"""Quota rules as pure functions: periods, which limit applies, what a job costs."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.i18n import Msg, msg


class Period(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @property
    def this(self) -> Msg:
        """ "this day/week/month", as a catalogue message."""
        return msg({"day": "period.this_day", "week": "period.this_week", "month": "period.this_month"}[self.value])

    @property
    def per(self) -> Msg:
        """ "per day/week/month", as a catalogue message."""
        return msg({"day": "period.per_day", "week": "period.per_week", "month": "period.per_month"}[self.value])


class Source(enum.StrEnum):
    """Where the limit that applies to a user comes from."""

    USER = "user"
    ROLE = "role"
    GUILD = "guild"
    BOT = "bot"


@dataclass(frozen=True)
class Limit:
    """Credits per period; `credits is None` means unlimited."""

    credits: int | None
    period: Period
    source: Source = Source.BOT
    role_id: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.credits is None


def period_start(period: Period, now: datetime) -> datetime:
    """Start (UTC midnight) of the period containing `now`. Weeks start on Monday."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        return day
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_reset(period: Period, now: datetime) -> datetime:
    """When the period containing `now` ends and credits come back."""
    start = period_start(period, now)
    if period is Period.DAY:
        return start + timedelta(days=1)
    if period is Period.WEEK:
        return start + timedelta(weeks=1)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def effective_limit(user: Limit | None, roles: Iterable[Limit], guild: Limit | None, bot_default: Limit) -> Limit:
    """Most specific first: the user's override, else the best of their roles, else the guild's, else the bot's."""
    if user is not None:
        return user
    best: Limit | None = None
    for limit in roles:
        if best is None or _more_generous(limit, best):
            best = limit
    if best is not None:
        return best
    return guild if guild is not None else bot_default


_DAYS = {Period.DAY: 1.0, Period.WEEK: 7.0, Period.MONTH: 30.0}


def _more_generous(a: Limit, b: Limit) -> bool:
    """Compared per day, so 20 a month is less than 10 a day."""
    if a.unlimited or b.unlimited:
        return a.unlimited and not b.unlimited
    assert a.credits is not None and b.credits is not None
    return a.credits / _DAYS[a.period] > b.credits / _DAYS[b.period]


def family_of(model: str) -> str:
    """The priced model family: an edit model costs what its text-to-image twin costs."""
    return model.removesuffix("-edit")


# Custom GPT Image 2 sizes are priced at the nearest named resolution by pixel count.
_RESOLUTION_PIXELS = {"1K": 1024 * 1024, "2K": 2048 * 2048, "4K": 3840 * 2160}


def normalised_resolution(params: Mapping[str, object]) -> str | None:
    """The resolution a request asks for, as 1K/2K/4K (or 0.5K), from `resolution` or a custom `image_size`."""
    resolution = params.get("resolution")
    if isinstance(resolution, str):
        return resolution
    size = params.get("image_size")
    if isinstance(size, Mapping):
        width, height = size.get("width"), size.get("height")
        if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
            pixels = width * height
            return min(_RESOLUTION_PIXELS, key=lambda name: abs(math.log(pixels / _RESOLUTION_PIXELS[name])))
    if isinstance(size, str):
        return "1K"  # the named presets are all about one megapixel
    return None


def job_cost(
    model: str, resolution: str | None, count: int, weights: Mapping[str, int], overrides: Mapping[str, int]
) -> int:
    """Credits for a job: per-image weight for `family:resolution`, else `family`, else 1; guild overrides first."""
    family = family_of(model)
    keys = ([f"{family}:{resolution}"] if resolution else []) + [family]
    for table in (overrides, weights):
        for key in keys:
            if key in table:
                return table[key] * count
    return count


def parse_limit(text: str) -> int | None:
    """'unlimited' -> None; a whole number >= 0 -> itself; anything else -> ValueError."""
    cleaned = text.strip().lower()
    if cleaned in ("unlimited", "infinite", "none", "∞"):
        return None
    value = int(cleaned)
    if value < 0:
        raise ValueError("a limit cannot be negative")
    return value
