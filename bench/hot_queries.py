"""Benchmark: the job/credit core at 1,000,000 job rows.

    .venv/bin/python -m bench.hot_queries [--jobs 1000000] [--users 100000] [--runs 200] [--keep PATH]

Builds a real migrated database file in a temp dir (tests/history.py: ~100k users, most jobs closed and
succeeded, a few hundred open, a ledger row per job and a refund per failed one), then measures:

  1. each hot statement (tests/hot_statements.py): median and p99 over --runs runs (fewer for slow ones, at
     most ~2 s each), on a plain sqlite3 connection, with its plan; then the statements with a proposed fix,
     with the fix applied (target <= 5 ms);
  2. credit reservations per second through the real JobService/QuotaService (runner never started, enqueue a
     no-op) from many concurrent members, each asking for more than their credits; every member must get
     exactly their credits' worth of jobs (target >= 1,000/s);
  3. the acknowledgement latency of /imagine creations (request -> job row written and ack called) arriving
     every 10 ms while 20 four-image edits (4 x 7 MB inputs) are created concurrently (target p99 <= 300 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.config import DEFAULT_COSTS
from bot.db import Database
from bot.errors import UserFacingError
from bot.jobs.messages import RunnerConfig
from bot.jobs.models import Job
from bot.jobs.runner import JobRunner
from bot.jobs.service import JobService, Requester
from bot.jobs.store import JobStore
from bot.media import InputImage
from bot.providers.catalog import ImageOptions
from bot.providers.router import Router
from bot.quota.policy import Limit, Period
from bot.quota.service import QuotaConfig, QuotaService
from tests.fakes.images import noise_png
from tests.history import BIG_GUILD, History, fill
from tests.hot_statements import HOT, PARTIAL_INDEXES, Hot, Sample, plan_problems
from tests.unit.world import Chat, MemoryPublisher

QUERY_TARGET_MS = 5.0
RESERVE_TARGET = 1000.0
ACK_TARGET_MS = 300.0
QUERY_BUDGET_S = 2.0  # per statement: slow ones get fewer runs
FIRST_MEMBER = 10_000_000  # bench members are new users (no history)


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# -- 1. hot statements -------------------------------------------------------------------------------


def time_statement(conn: sqlite3.Connection, sql: str, params: Any, runs: int) -> list[float]:
    times: list[float] = []
    spent = 0.0
    while len(times) < runs and (spent < QUERY_BUDGET_S or len(times) < 5):
        started = time.perf_counter()
        conn.execute(sql, params).fetchall()
        elapsed = time.perf_counter() - started
        times.append(elapsed * 1000)
        spent += elapsed
    return times


def measure_statements(path: Path, sample: Sample, runs: int) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path, isolation_level=None)  # autocommit, as the bot runs single statements
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA synchronous = NORMAL")  # as the bot sets it
    rows: list[dict[str, Any]] = []

    def one(name: str, hot: Hot, sql: str, fixed: bool) -> None:
        params = hot.params(sample)
        plan = [str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
        partial = {str(r[0]) for r in conn.execute(PARTIAL_INDEXES)}
        times = time_statement(conn, sql, params, runs)
        rows.append(
            {
                "name": name + (" (proposed)" if fixed else ""),
                "p50": statistics.median(times),
                "p99": pct(times, 0.99),
                "runs": len(times),
                "plan": " | ".join(plan),
                "ok": not plan_problems(hot, plan, partial),
            }
        )

    for name, hot in HOT.items():
        one(name, hot, hot.sql, fixed=False)
    conn.close()
    return rows


def print_statements(rows: list[dict[str, Any]], jobs: int) -> None:
    print(f"\n1. Hot statements at {jobs:,} job rows (target <= {QUERY_TARGET_MS:.0f} ms)")
    print(f"{'statement':<34} {'p50 ms':>9} {'p99 ms':>9} {'runs':>5}  {'index-only plan':<15} plan")
    for r in rows:
        met = "" if r["p99"] <= QUERY_TARGET_MS else "  <-- misses target"
        plan_ok = "yes" if r["ok"] else "NO"
        print(f"{r['name']:<34} {r['p50']:>9.3f} {r['p99']:>9.3f} {r['runs']:>5}  {plan_ok:<15} {r['plan']}{met}")
    print("   (recent_durations runs once, at startup, and returns 5,000 rows: its time is mostly building them)")


# -- the job service, as the bot builds it, with a runner that never runs anything ------------------


class IdleRunner(JobRunner):
    """The real runner, never started: creating a job queues nothing."""

    def enqueue(self, job_id: int) -> None:
        pass


class OfflineProvider:
    """Serves every model (the route); never called, as nothing is submitted."""

    name = "hub"
    idempotent_submit = False

    def unsupported(self, model: str, params: dict[str, Any]) -> str | None:
        return None


def job_service(db: Database, credits: int, cap: int) -> JobService:
    quota = QuotaService(
        db,
        QuotaConfig(
            default_limit=Limit(credits, Period.DAY),
            weights=DEFAULT_COSTS,
            max_running_per_user=2,
            max_waiting_per_user=cap - 2,
        ),
    )
    store = JobStore(db)
    providers: dict[str, Any] = {"hub": OfflineProvider()}
    runner = IdleRunner(store, providers, MemoryPublisher(Chat()), quota, RunnerConfig())
    return JobService(db, store, runner, quota, Router(providers, {}))


def member(n: int) -> Requester:
    return Requester(user_id=FIRST_MEMBER + n, guild_id=BIG_GUILD, channel_id=5001, upload_limit=10 * 1024 * 1024)


# -- 2. credit reservations --------------------------------------------------------------------------


async def measure_reservations(path: Path, members: int, credits: int, extra: int, first: int = 0) -> dict[str, Any]:
    """`members` new members (numbered from `first`) each send credits + extra one-credit /imagine requests at
    once."""
    db = await Database.open(path)
    service = job_service(db, credits, cap=credits + extra + 10)
    outcome: Counter[str] = Counter()
    per_member: Counter[int] = Counter()

    async def attempt(n: int) -> None:
        try:
            await service.create_generate(member(first + n), "nano-banana", "a lighthouse", ImageOptions())
        except UserFacingError as exc:
            outcome[type(exc).__name__] += 1
        else:
            outcome["charged"] += 1
            per_member[n] += 1

    # Interleaved: every member's requests are spread through the burst.
    order = [n for _ in range(credits + extra) for n in range(members)]
    warm_up = (service.create_generate(member(-1 - k), "nano-banana", "warm-up", ImageOptions()) for k in range(5))
    await asyncio.gather(*warm_up, return_exceptions=True)
    started = time.perf_counter()
    await asyncio.gather(*(attempt(n) for n in order))
    wall = time.perf_counter() - started
    ledger = await db.fetchall(
        "SELECT user_id, SUM(period_credits + bonus_credits) FROM quota_ledger WHERE user_id BETWEEN ? AND ?"
        " GROUP BY user_id",
        (FIRST_MEMBER + first, FIRST_MEMBER + first + members - 1),
    )
    await db.close()
    spent = {int(r[0]) - FIRST_MEMBER - first: int(r[1]) for r in ledger}
    exact = all(per_member[n] == credits and spent.get(n) == credits for n in range(members))
    return {
        "attempts": len(order),
        "charged": outcome["charged"],
        "refused": {k: v for k, v in outcome.items() if k != "charged"},
        "wall": wall,
        "per_second": outcome["charged"] / wall,
        "attempts_per_second": len(order) / wall,
        "exact": exact,
        "members": members,
        "credits": credits,
    }


def print_reservations(label: str, r: dict[str, Any]) -> None:
    met = "" if r["per_second"] >= RESERVE_TARGET else "  <-- misses target"
    print(
        f"{label:<26} {r['per_second']:>8.0f}/s charged ({r['attempts_per_second']:.0f}/s attempts; "
        f"{r['charged']:,} charged, {sum(r['refused'].values()):,} refused {dict(r['refused'])}, {r['wall']:.2f} s); "
        f"{r['members']} members x {r['credits']} credits: "
        f"{'each got exactly its credits' if r['exact'] else 'OVERSPENT OR SHORT'}{met}"
    )


# -- 3. acknowledgements while big edits are created -------------------------------------------------


def big_images(count: int, size: int) -> list[InputImage]:
    """Real PNGs of about `size` bytes each (random pixels do not compress)."""
    side = int((size / 3) ** 0.5)
    return [InputImage(noise_png(side + i, side), f"input{i}.png", "image/png", side + i, side) for i in range(count)]


async def measure_acks(
    path: Path, edits: int, images_per_edit: int, image_bytes: int, interval: float
) -> dict[str, Any]:
    db = await Database.open(path)
    service = job_service(db, credits=10_000, cap=10_000)
    images = big_images(images_per_edit, image_bytes)

    async def read() -> tuple[list[InputImage], InputImage | None]:
        return images, None

    async def imagine(n: int, acks: list[float]) -> None:
        arrived = time.perf_counter()

        async def ack(_: Job) -> None:
            acks.append((time.perf_counter() - arrived) * 1000)

        await service.create_generate(member(100_000 + n), "nano-banana", "a lighthouse", ImageOptions(), ack=ack)

    async def stream(acks: list[float], until: Callable[[], bool], first: int) -> int:
        tasks = []
        n = first
        next_at = time.perf_counter()
        while not until():
            tasks.append(asyncio.create_task(imagine(n, acks)))
            n += 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await asyncio.gather(*tasks)
        return n

    # Baseline: the same stream for a second with nothing else going on.
    quiet: list[float] = []
    deadline = time.perf_counter() + 1.0
    n = await stream(quiet, lambda: time.perf_counter() > deadline, 0)

    edit_acks: list[float] = []
    edit_done: list[float] = []

    async def edit(k: int) -> None:
        arrived = time.perf_counter()

        async def ack(_: Job) -> None:
            edit_acks.append((time.perf_counter() - arrived) * 1000)

        await service.create_edit(
            member(200_000 + k), "nano-banana-2-edit", "make it night", images_per_edit, ImageOptions(), read, ack=ack
        )
        edit_done.append(time.perf_counter() - arrived)

    busy: list[float] = []
    started = time.perf_counter()
    edit_tasks = asyncio.gather(*(edit(k) for k in range(edits)))
    await stream(busy, edit_tasks.done, n)
    await edit_tasks
    wall = time.perf_counter() - started
    await db.close()
    return {
        "quiet": quiet,
        "busy": busy,
        "edit_acks": edit_acks,
        "edits_wall": max(edit_done),
        "wall": wall,
        "bytes": edits * images_per_edit * image_bytes,
    }


def print_acks(r: dict[str, Any], edits: int, images_per_edit: int, image_bytes: int, label: str = "") -> None:
    busy_p99 = pct(r["busy"], 0.99)
    met = "" if busy_p99 <= ACK_TARGET_MS else "  <-- misses target"
    mb = image_bytes / 1e6
    print(f"\n3. /imagine ack, request -> row written and ack called (target p99 <= {ACK_TARGET_MS:.0f} ms){label}")
    print(
        f"   alone:                      p50 {pct(r['quiet'], 0.5):6.1f} ms  p99 {pct(r['quiet'], 0.99):6.1f} ms"
        f"  max {max(r['quiet']):6.1f} ms  ({len(r['quiet'])} creations)"
    )
    print(
        f"   during {edits} edits of {images_per_edit} x {mb:.0f} MB: p50 {pct(r['busy'], 0.5):6.1f} ms  p99 "
        f"{busy_p99:6.1f} ms  max {max(r['busy']):6.1f} ms  ({len(r['busy'])} creations){met}"
    )
    print(
        f"   the edits' own acks:        p50 {pct(r['edit_acks'], 0.5):6.1f} ms  p99 {pct(r['edit_acks'], 0.99):6.1f}"
        f" ms; all {edits} stored and queued after {r['edits_wall']:.2f} s ({r['bytes'] / 1e6:.0f} MB)"
    )


# -- main --------------------------------------------------------------------------------------------


async def build(path: Path, history: History) -> History:
    db = await Database.open(path)
    try:
        await db.execute("PRAGMA cache_size = -262144")  # 256 MB while building
        return await fill(db, history)
    finally:
        await db.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--open", type=int, default=300)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--credits", type=int, default=25)
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--image-mb", type=float, default=6.0)  # 4 x 6 MB fit one message as they are
    parser.add_argument("--interval-ms", type=float, default=10.0)
    parser.add_argument("--ack-rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the database here (and keep it) instead of a temp dir")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="imagebot-bench-") as tmp:
        path = args.keep or Path(tmp) / "bot.db"
        for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
        started = time.perf_counter()
        history = await build(path, History(jobs=args.jobs, users=args.users, open_jobs=args.open))
        print(f"built {args.jobs:,} jobs ({args.users:,} users) in {time.perf_counter() - started:.1f} s: {path}")

        print_statements(measure_statements(path, Sample.of(history), args.runs), args.jobs)

        print(f"\n2. Credit reservations through JobService (target >= {RESERVE_TARGET:.0f}/s, never overspent)")
        empty = Path(tmp) / "empty.db"
        print_reservations("empty database", await measure_reservations(empty, args.members, args.credits, 3))
        result = await measure_reservations(path, args.members, args.credits, 3)
        print_reservations(f"{args.jobs:,} old jobs", result)

        image_bytes = int(args.image_mb * 1e6)
        for round_ in range(args.ack_rounds):
            acks = await measure_acks(path, args.edits, 4, image_bytes, args.interval_ms / 1000)
            print_acks(acks, args.edits, 4, image_bytes, f" (round {round_ + 1} of {args.ack_rounds})")


if __name__ == "__main__":
    asyncio.run(main())
