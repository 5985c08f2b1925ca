"""Claims under contention: several runners (each with its own connections, as separate processes have) race over
one backlog; every job is driven by exactly one of them, and a dead runner's jobs are taken over after expiry."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections import Counter
from pathlib import Path

import pytest

from bot.db import Database
from bot.jobs.delivery import Phase
from bot.jobs.models import JobState
from bot.jobs.store import JobStore
from bot.providers.catalog import ImageOptions
from tests.fakes.hub import Plan
from tests.unit.world import ALICE, FAST, World, finished, wait_state

JOBS = 1000
RUNNERS = 8


async def queue_jobs(db: Database, count: int) -> list[int]:
    store = JobStore(db)
    now = time.time()
    ids = []
    async with db.transaction() as tx:
        for i in range(count):
            job = await store.insert(
                tx,
                kind="generate",
                state="queued",
                provider="hub",
                model="nano-banana",
                params={},
                prompt=f"p{i}",
                duration_key="hub:nano-banana",
                user_id=1 + i % 50,
                guild_id=10,
                channel_id=100,
                upload_limit=1,
                cost=1,
                reply_to_message_id=None,
                route=["hub"],
                created_at=now,
                idempotency_key=secrets.token_hex(16),
                lease_owner=None,
                lease_expires_at=None,
                answer_token=None,
            )
            ids.append(job.id)
    return ids


@pytest.mark.dialects("postgresql", "sqlite")
async def test_eight_runners_drive_a_thousand_jobs_each_exactly_once(db_target: str | Path) -> None:
    setup = await Database.open(db_target)
    ids = await queue_jobs(setup, JOBS)
    dbs = [await Database.open(db_target) for _ in range(RUNNERS)]
    driven: Counter[int] = Counter()
    by_runner: Counter[str] = Counter()

    async def runner(db: Database, owner: str) -> None:
        store = JobStore(db)
        while batch := await store.claim_batch(owner, time.time(), ttl=60, limit=10):
            for job_id in batch:
                driven[job_id] += 1
                by_runner[owner] += 1
                await asyncio.sleep(0)  # "drive" it, letting the others race meanwhile
                await store.close(job_id, time.time())

    try:
        await asyncio.wait_for(asyncio.gather(*(runner(db, f"r{i}") for i, db in enumerate(dbs))), 120)
        assert sorted(driven) == ids
        assert set(driven.values()) == {1}
        if setup.dialect == "postgresql":
            assert len(by_runner) == RUNNERS  # they shared the work rather than queueing behind one another
        left = await setup.fetchone("SELECT COUNT(*) FROM jobs WHERE closed_at IS NULL OR lease_owner IS NOT NULL")
        assert left is not None and int(left[0]) == 0
    finally:
        for db in [setup, *dbs]:
            await db.close()


async def test_a_dead_runners_jobs_are_taken_over_only_after_the_lease_expires(db_target: str | Path) -> None:
    a, b = await Database.open(db_target), await Database.open(db_target)
    try:
        ids = await queue_jobs(a, 20)
        now = time.time()
        assert await JobStore(a).claim_batch("a", now, ttl=5) == ids  # then runner a dies without a word
        assert await JobStore(b).claim_batch("b", now + 1, ttl=5) == []  # its lease is still live
        assert await JobStore(b).claim_batch("b", now + 6, ttl=5) == ids  # expired: b takes over
        assert not await JobStore(a).claim(ids[0], "a", now + 7, 5)  # and a, back, cannot take them again
    finally:
        await a.close()
        await b.close()


async def test_a_cancel_answered_by_another_process_stops_polling_here_within_seconds(world: World) -> None:
    quick = dataclasses.replace(FAST, cancel_check_interval=0.2)
    driver, service = world.make(quick)
    await driver.start()
    world.hub.default_plan = lambda: Plan(duration=60)
    job = await service.create_generate(ALICE, "nano-banana", "a cat", ImageOptions())
    await wait_state(world, job.id, lambda j: j.state in (JobState.SUBMITTED, JobState.RUNNING))
    other, _ = world.make(quick)  # the process that received the Cancel click
    cancelled = await other.cancel(job.id)
    assert cancelled.state is JobState.CANCELLED
    started = time.monotonic()
    done = await wait_state(world, job.id, lambda j: j.closed_at is not None)  # the driver noticed and finished
    assert time.monotonic() - started < 3
    task = next(iter(world.hub.tasks.values()))
    polls = task.polls
    await asyncio.sleep(0.5)
    assert task.polls == polls  # nobody polls the task any more
    assert done.state is JobState.CANCELLED and world.chat.statuses[job.id][-1].phase is Phase.CANCELLED


async def test_the_bot_wide_cap_holds_across_processes(world: World) -> None:
    one_at_a_time = dataclasses.replace(FAST, max_active=1, slot_retry_interval=0.02)
    a, service_a = world.make(one_at_a_time)
    b, service_b = world.make(one_at_a_time)
    world.hub.default_plan = lambda: Plan(duration=0.3)
    bob = dataclasses.replace(ALICE, user_id=2)
    jobs = [
        (await service_a.create_generate(ALICE, "nano-banana", "a", ImageOptions()), a),
        (await service_b.create_generate(bob, "nano-banana", "b", ImageOptions()), b),
    ]
    done = [await finished(world, job.id, runner) for job, runner in jobs]
    assert all(j.state is JobState.SUCCEEDED for j in done)
    first, second = sorted(done, key=lambda j: j.submitted_at or 0)
    assert first.finished_at is not None and second.submitted_at is not None
    assert second.submitted_at >= first.finished_at  # never both at the image service at once


async def test_the_per_user_cap_holds_across_processes(world: World) -> None:
    one_each = dataclasses.replace(FAST, max_running_per_user=1, slot_retry_interval=0.02)
    a, service_a = world.make(one_each)
    b, service_b = world.make(one_each)
    world.hub.default_plan = lambda: Plan(duration=0.3)
    jobs = [
        (await service_a.create_generate(ALICE, "nano-banana", "a", ImageOptions()), a),
        (await service_b.create_generate(ALICE, "nano-banana", "b", ImageOptions()), b),
    ]
    done = [await finished(world, job.id, runner) for job, runner in jobs]
    first, second = sorted(done, key=lambda j: j.submitted_at or 0)
    assert first.finished_at is not None and second.submitted_at is not None
    assert second.submitted_at >= first.finished_at


async def test_a_process_keeps_working_when_a_newer_one_adds_columns(world: World) -> None:
    """Several processes on PostgreSQL are upgraded one at a time: the first new one migrates the shared database
    while the others still run, and the ones still running the old version must go on reading job rows."""
    runner, service = world.make()
    await world.db.execute("ALTER TABLE jobs ADD COLUMN from_a_newer_version INTEGER")
    world.hub.default_plan = lambda: Plan(duration=0.05)
    job = await service.create_generate(ALICE, "nano-banana", "a", ImageOptions())
    assert (await finished(world, job.id, runner)).state is JobState.SUCCEEDED


async def test_durations_learned_by_one_process_reach_the_others(world: World) -> None:
    learner, service = world.make(dataclasses.replace(FAST, poll_max_interval=0.02))
    other, _ = world.make(dataclasses.replace(FAST, durations_refresh_interval=0))
    await other.start()
    world.hub.default_plan = lambda: Plan(duration=1.0)  # "pending" for 0.1 s: polls see it start
    job = await service.create_generate(ALICE, "nano-banana", "a", ImageOptions())
    done = await finished(world, job.id, learner)
    assert done.duration_ms is not None and not other.stats._samples.get(done.duration_key)
    await other.sweep()
    [mine], [theirs] = learner.stats._samples[done.duration_key], other.stats._samples[done.duration_key]
    assert theirs.duration == done.duration_ms / 1000 and theirs.start_low and theirs.start_high  # when it started too
    assert (theirs.start_low, theirs.start_high) == pytest.approx((mine.start_low, mine.start_high), abs=0.001)
    await learner.learn_durations()  # its own result is not learned a second time
    assert len(learner.stats._samples[done.duration_key]) == 1
