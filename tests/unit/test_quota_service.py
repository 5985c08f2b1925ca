"""Quota reservation and refunds through the real job service and runner, on a real database."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from bot.jobs.models import JobState
from bot.jobs.service import Requester
from bot.providers.catalog import ImageOptions
from bot.quota.policy import Limit, Period
from bot.quota.service import QuotaConfig, QuotaExceeded, QuotaService, TooManyJobs
from tests.fakes.hub import Plan
from tests.unit.world import ALICE, World, finished, wait_state

THREE_A_DAY = QuotaConfig(
    default_limit=Limit(3, Period.DAY),
    weights={"nano-banana-pro": 2},
    max_running_per_user=100,
    max_waiting_per_user=1000,
)


async def ledger(world: World, kind: str) -> int:
    row = await world.db.fetchone("SELECT COUNT(*) FROM quota_ledger WHERE kind = ?", (kind,))
    return int(row[0]) if row else 0


async def test_fifty_concurrent_requests_with_three_credits_start_exactly_three(world: World) -> None:
    runner, service = world.make(quota_config=THREE_A_DAY)
    world.hub.default_plan = lambda: Plan(duration=0.05)
    results = await asyncio.gather(
        *(service.create_generate(ALICE, "nano-banana", f"p{i}", ImageOptions()) for i in range(50)),
        return_exceptions=True,
    )
    started = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(started) == 3 and len(refused) == 47
    for job in started:
        await finished(world, job.id, runner)
    assert world.hub.submit_calls == 3
    assert "needs **1** credit and you have **0** left" in refused[0].message
    assert "come back <t:" in refused[0].message


async def test_weighted_jobs_and_the_limit(world: World) -> None:
    _, service = world.make(quota_config=THREE_A_DAY)
    job = await service.create_generate(ALICE, "nano-banana-pro", "p", ImageOptions())
    assert job.cost == 2
    with pytest.raises(QuotaExceeded, match=r"needs \*\*2\*\* credits and you have \*\*1\*\* left"):
        await service.create_generate(ALICE, "nano-banana-pro", "p", ImageOptions())
    assert world.hub.submit_calls <= 1


async def test_failed_jobs_are_refunded_once_even_across_a_restart(world: World) -> None:
    first, service = world.make(quota_config=THREE_A_DAY)
    world.hub.plan_next(duration=0.5, outcome="failed")
    job = await service.create_generate(ALICE, "nano-banana", "p", ImageOptions())
    await wait_state(world, job.id, lambda j: j.state in (JobState.SUBMITTED, JobState.RUNNING))
    await first.close()  # the process stops with the credit reserved
    quota = world.make(quota_config=THREE_A_DAY)
    second = quota[0]
    await second.start()
    job = await finished(world, job.id, second)
    assert job.state is JobState.FAILED
    assert await ledger(world, "refund") == 1
    async with world.db.transaction() as tx:  # a second refund attempt changes nothing
        assert not await quota[1]._quota.refund(tx, job.id)  # type: ignore[attr-defined]
    assert await ledger(world, "refund") == 1
    usage = await quota[1]._quota.usage(world.db, ALICE.guild_id, ALICE.user_id, ())  # type: ignore[attr-defined]
    assert usage.used == 0 and usage.remaining == 3


async def test_successful_jobs_keep_the_charge(world: World) -> None:
    runner, service = world.make(quota_config=THREE_A_DAY)
    job = await finished(world, (await service.create_generate(ALICE, "nano-banana", "p", ImageOptions())).id, runner)
    assert job.state is JobState.SUCCEEDED and await ledger(world, "refund") == 0
    usage = await service._quota.usage(world.db, ALICE.guild_id, ALICE.user_id, ())  # type: ignore[attr-defined]
    assert usage.used == 1 and usage.remaining == 2


async def test_bonus_is_spent_after_the_period_and_refunds_restore_it(world: World) -> None:
    runner, service = world.make(quota_config=dataclasses.replace(THREE_A_DAY, default_limit=Limit(1, Period.DAY)))
    quota = service._quota  # type: ignore[attr-defined]
    assert await quota.grant(10, 99, ALICE.user_id, 2) == 2
    ok = await service.create_generate(ALICE, "nano-banana", "a", ImageOptions())  # period credit
    await finished(world, ok.id, runner)
    world.hub.plan_next(duration=0.05, outcome="failed")
    failing = await service.create_generate(ALICE, "nano-banana", "b", ImageOptions())  # bonus credit
    usage = await quota.usage(world.db, ALICE.guild_id, ALICE.user_id, ())
    assert (usage.used, usage.bonus, usage.remaining) == (1, 1, 1)
    assert (await finished(world, failing.id, runner)).state is JobState.FAILED
    usage = await quota.usage(world.db, ALICE.guild_id, ALICE.user_id, ())
    assert (usage.used, usage.bonus, usage.remaining) == (1, 2, 2)


async def test_reset_and_limits_are_audited_and_per_guild(world: World) -> None:
    _, service = world.make(quota_config=THREE_A_DAY)
    quota = service._quota  # type: ignore[attr-defined]
    await quota.set_limit(10, 99, "user", ALICE.user_id, 1, None)
    await service.create_generate(ALICE, "nano-banana", "a", ImageOptions())
    with pytest.raises(QuotaExceeded):
        await service.create_generate(ALICE, "nano-banana", "b", ImageOptions())
    other_guild = dataclasses.replace(ALICE, guild_id=11)  # the override lives in guild 10 only
    assert (await service.create_generate(other_guild, "nano-banana", "c", ImageOptions())).cost == 1
    assert await quota.reset_user(10, 99, ALICE.user_id, ()) == 1
    await service.create_generate(ALICE, "nano-banana", "d", ImageOptions())
    log = await quota.audit_log(10)
    assert [(e.action, e.old_value, e.new_value) for e in log] == [
        ("reset usage", "1", "0"),
        ("set user limit", "none", "1 per day"),
    ]
    assert await quota.audit_log(11) == []


async def test_roles_give_the_highest_limit(world: World) -> None:
    _, service = world.make(quota_config=THREE_A_DAY)
    quota = service._quota  # type: ignore[attr-defined]
    await quota.set_limit(10, 99, "role", 500, 5, Period.WEEK)
    await quota.set_limit(10, 99, "role", 501, None, None)
    await quota.set_limit(10, 99, "guild", 10, 0, None)
    vip = Requester(user_id=2, guild_id=10, channel_id=100, upload_limit=10_000_000, role_ids=(500,))
    usage = await quota.usage(world.db, 10, vip.user_id, vip.role_ids)
    assert usage.limit.credits == 5 and usage.limit.period is Period.WEEK
    assert (await quota.usage(world.db, 10, 3, (500, 501))).remaining is None
    with pytest.raises(QuotaExceeded):
        await service.create_generate(dataclasses.replace(vip, role_ids=()), "nano-banana", "x", ImageOptions())


async def test_too_many_jobs_in_flight_are_refused(world: World) -> None:
    capped = dataclasses.replace(
        THREE_A_DAY, default_limit=Limit(None, Period.DAY), max_running_per_user=1, max_waiting_per_user=1
    )
    _, service = world.make(quota_config=capped)
    world.hub.default_plan = lambda: Plan(duration=5)
    await service.create_generate(ALICE, "nano-banana", "a", ImageOptions())
    await service.create_generate(ALICE, "nano-banana", "b", ImageOptions())
    with pytest.raises(TooManyJobs, match="2 images in progress or waiting"):
        await service.create_generate(ALICE, "nano-banana", "c", ImageOptions())


async def test_dms_can_be_disabled(world: World) -> None:
    _, service = world.make(quota_config=dataclasses.replace(THREE_A_DAY, allow_dms=False))
    with pytest.raises(QuotaExceeded, match="not available in DMs"):
        await service.create_generate(dataclasses.replace(ALICE, guild_id=None), "nano-banana", "x", ImageOptions())


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


WEDNESDAY_NOON = 1_795_608_000.0  # 2026-11-25 12:00 UTC


async def test_a_refund_after_a_reset_never_lifts_a_member_above_the_limit(world: World) -> None:
    _, service = world.make(quota_config=dataclasses.replace(THREE_A_DAY, default_limit=Limit(10, Period.DAY)))
    quota = service._quota  # type: ignore[attr-defined]
    world.hub.default_plan = lambda: Plan(duration=30)
    job = await service.create_generate(ALICE, "nano-banana", "a", ImageOptions(count=4))
    assert await quota.reset_user(10, 99, ALICE.user_id, ()) == 4
    async with world.db.transaction() as tx:
        assert await quota.refund(tx, job.id)  # e.g. the job failed after the reset
    usage = await quota.usage(world.db, 10, ALICE.user_id, ())
    assert usage.remaining == 10  # not 14


async def test_roles_are_compared_per_period(world: World) -> None:
    _, service = world.make(quota_config=THREE_A_DAY)
    quota = service._quota  # type: ignore[attr-defined]
    await quota.set_limit(10, 99, "role", 500, 20, Period.MONTH)
    await quota.set_limit(10, 99, "role", 501, 10, Period.DAY)
    usage = await quota.usage(world.db, 10, 2, (500, 501))
    assert (usage.limit.credits, usage.limit.period) == (10, Period.DAY)  # 10 a day is more than 20 a month


async def test_changing_the_period_mid_period_keeps_what_was_used(world: World) -> None:
    clock = Clock(WEDNESDAY_NOON)
    five_a_day = dataclasses.replace(THREE_A_DAY, default_limit=Limit(5, Period.DAY))
    quota = QuotaService(world.db, five_a_day, clock)
    await quota.set_limit(10, 99, "guild", 10, 5, Period.DAY)
    for job_id in (1, 2, 3):
        await world.db.execute(
            "INSERT INTO jobs (id, kind, state, provider, model, params, prompt, duration_key, user_id, channel_id, "
            "upload_limit, created_at, idempotency_key) "
            "VALUES (?, 'generate', 'succeeded', 'hub', 'nano-banana', '{}', 'p', 'k', ?, 1, 1, 0, ?)",
            (job_id, ALICE.user_id, f"key{job_id}"),
        )
        async with world.db.transaction() as tx:
            limit = (await quota.usage(tx, 10, ALICE.user_id, ())).limit
            await quota.record_charge(
                tx, job_id, 10, ALICE.user_id, await quota.admit(tx, 10, ALICE.user_id, limit, 1), 1
            )
    await quota.set_limit(10, 99, "guild", 10, 5, Period.WEEK)  # on a Wednesday
    usage = await quota.usage(world.db, 10, ALICE.user_id, ())
    assert usage.used == 3 and usage.remaining == 2  # not 5 fresh credits
    clock.now += 7 * 86400  # next week: the week's credits are back
    assert (await quota.usage(world.db, 10, ALICE.user_id, ())).remaining == 5
