from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.quota.policy import Limit, Period, Source, effective_limit, job_cost, next_reset, parse_limit, period_start


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("period", "now", "start", "reset"),
    [
        (Period.DAY, at(2026, 11, 21, 15, 30), at(2026, 11, 21), at(2026, 11, 22)),
        (Period.DAY, at(2026, 12, 31, 23, 59), at(2026, 12, 31), at(2027, 1, 1)),
        (Period.WEEK, at(2026, 11, 21, 15), at(2026, 11, 16), at(2026, 11, 23)),  # Saturday -> Monday
        (Period.WEEK, at(2026, 11, 16, 0), at(2026, 11, 16), at(2026, 11, 23)),  # Monday 00:00 starts a week
        (Period.MONTH, at(2026, 1, 31, 23, 59), at(2026, 1, 1), at(2026, 2, 1)),
        (Period.MONTH, at(2026, 12, 15), at(2026, 12, 1), at(2027, 1, 1)),
        (Period.MONTH, at(2028, 2, 29, 12), at(2028, 2, 1), at(2028, 3, 1)),  # leap day
        (Period.DAY, at(2028, 2, 28, 23), at(2028, 2, 28), at(2028, 2, 29)),
        (Period.WEEK, at(2028, 3, 1), at(2028, 2, 28), at(2028, 3, 6)),  # a week spanning the leap day
    ],
)
def test_periods_start_and_reset_at_utc_boundaries(
    period: Period, now: datetime, start: datetime, reset: datetime
) -> None:
    assert period_start(period, now) == start
    assert next_reset(period, now) == reset


def test_the_most_specific_limit_wins() -> None:
    bot = Limit(25, Period.DAY, Source.BOT)
    guild = Limit(10, Period.WEEK, Source.GUILD)
    small_role = Limit(5, Period.DAY, Source.ROLE, role_id=1)
    big_role = Limit(50, Period.DAY, Source.ROLE, role_id=2)
    user = Limit(1, Period.MONTH, Source.USER)
    assert effective_limit(None, [], None, bot) == bot
    assert effective_limit(None, [], guild, bot) == guild
    assert effective_limit(None, [small_role, big_role], guild, bot) == big_role  # the highest role limit
    assert effective_limit(user, [big_role], guild, bot) == user  # a user override beats everything
    unlimited_role = Limit(None, Period.DAY, Source.ROLE, role_id=3)
    assert effective_limit(None, [big_role, unlimited_role], guild, bot) == unlimited_role
    assert effective_limit(None, [unlimited_role, big_role], guild, bot) == unlimited_role


def test_costs_are_weighted_by_model_and_resolution() -> None:
    weights = {"nano-banana-pro": 2, "nano-banana-pro:4K": 4}
    assert job_cost("nano-banana", None, 1, weights, {}) == 1
    assert job_cost("nano-banana", None, 3, weights, {}) == 3
    assert job_cost("nano-banana-pro", "1K", 1, weights, {}) == 2
    assert job_cost("nano-banana-pro", "4K", 2, weights, {}) == 8
    assert job_cost("nano-banana-pro", "4K", 1, weights, {"nano-banana-pro": 7}) == 7  # guild override first
    assert job_cost("nano-banana", None, 2, weights, {"nano-banana": 0}) == 0


def test_limits_parse_from_admin_text() -> None:
    assert parse_limit("12") == 12
    assert parse_limit(" Unlimited ") is None
    for bad in ("-1", "lots", "1.5"):
        with pytest.raises(ValueError):
            parse_limit(bad)
