"""Provider concurrency: more requests in flight while the provider keeps up, fewer after a 429."""

from __future__ import annotations

import asyncio

import httpx

from bot.providers.http import RetryPolicy, reset_time_to_send, send, time_to_send
from bot.providers.limiter import AdaptiveLimit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def fill(limit: AdaptiveLimit, status: int, rounds: int, retry_after: float | None = None) -> None:
    """`rounds` rounds of as many requests as the limit allows plus a queue behind them, all answered `status`."""

    async def one() -> None:
        async with limit:
            await asyncio.sleep(0)
            limit.answered(status, retry_after, 0.001)

    for _ in range(rounds):
        await asyncio.gather(*(one() for _ in range(int(limit.limit) * 2)))


async def test_the_limit_grows_while_the_provider_accepts_everything() -> None:
    limit = AdaptiveLimit(500, start=16)
    await fill(limit, 200, 20)
    assert limit.limit > 30


async def test_the_limit_never_passes_max_active_jobs() -> None:
    limit = AdaptiveLimit(20, start=16)
    await fill(limit, 200, 30)
    assert limit.limit == 20


async def test_a_429_halves_the_limit_and_retry_after_pauses_new_requests() -> None:
    clock = Clock()
    limit = AdaptiveLimit(500, start=64, clock=clock)
    async with limit:
        limit.answered(429, 3.0, 0.001)
        limit.answered(429, None, 0.001)  # the same burst: halved once, not twice
    assert limit.limit == 32
    entered = asyncio.Event()

    async def later() -> None:
        async with limit:
            entered.set()

    task = asyncio.create_task(later())
    await asyncio.sleep(0.05)
    assert not entered.is_set()  # paused for Retry-After
    clock.now = 3.5
    await asyncio.wait_for(task, 5)
    clock.now = 5.0
    async with limit:
        limit.answered(429, None, 0.001)
    assert limit.limit == 16


async def test_requests_beyond_the_limit_wait_their_turn() -> None:
    limit = AdaptiveLimit(2, start=2)
    inside, most = 0, 0

    async def one() -> None:
        nonlocal inside, most
        async with limit:
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1
            limit.answered(200, None, 0.5)

    await asyncio.gather(*(one() for _ in range(10)))
    assert most == 2 and limit.in_flight == 0


async def test_slower_answers_do_not_grow_the_limit() -> None:
    limit = AdaptiveLimit(500, start=16)

    async def one(seconds: float) -> None:
        async with limit:
            await asyncio.sleep(0)
            limit.answered(200, None, seconds)

    await asyncio.gather(*(one(0.05) for _ in range(4)))
    before = limit.limit
    await asyncio.gather(*(one(0.5) for _ in range(64)))
    assert limit.limit == before


async def test_a_poll_waiting_for_the_cap_is_timed_from_when_it_left() -> None:
    """Its answer describes the task when it left, which is what the poll plan learns from."""
    limit = AdaptiveLimit(1, start=1, floor=1)
    client = httpx.AsyncClient(
        base_url="https://api.example", transport=httpx.MockTransport(lambda _: httpx.Response(200, json={}))
    )

    async def hold() -> float:
        async with limit:
            await asyncio.sleep(0.2)
        return time_to_send()

    async def poll() -> float:
        reset_time_to_send()
        await send(
            client,
            lambda: client.build_request("GET", "/t"),
            policy=RetryPolicy(),
            idempotent=True,
            what="poll",
            limiter=limit,
        )
        return time_to_send()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waited = await poll()
    assert 0.15 <= waited < 1.0
    assert await holder == 0.0  # per task: another task's wait is not this one's
    await client.aclose()
