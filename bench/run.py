"""Benchmark: K concurrent /imagine jobs through the real bot, the fake Discord and the fake Hub.

    .venv/bin/python -m bench.run [--ks 1,100,500,1000] [--modes cold,warm,restarted] [--duration 20] [--warmup 20]
                                  [--single-rounds 5]

The bot runs in its own process (so RSS and loop lag are the bot's alone) with production timing
settings; this process runs both fakes and measures, per K:
  ack latency        interaction sent -> callback received at the fake Discord
  added latency      task ready at the fake Hub -> message with the file at the fake Discord
  polls per job      the bot's task polls, and a fixed 2-second poller's on the same tasks (baseline,
                     polling the same fake Hub in the same run; at K = 1,000 this process is too busy for it
                     to keep time, so the ratio to one that never runs late is printed too)
  peak RSS           VmHWM of the bot process
  loop lag p99       the bot's event loop, sampled every 10 ms
Cold: a fresh bot with an empty database for each K. Warm: one fresh bot that first runs a warm-up batch, so it
has learned typical durations as a bot in service has, then every K in turn. Restarted (not in the defaults):
a bot runs the warm-up batch and stops, then a fresh bot on the same database runs every K in turn, as after
a deploy. Where the added latency goes:
"wait" (task ready -> the bot's poll that saw it done), "fetch" (-> its result file served), "post" (-> the
message at the fake Discord).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.bot_process import probe_lag
from tests.fakes.discord import FakeDiscord
from tests.fakes.hub import FakeHub, Plan

ROOT = Path(__file__).resolve().parents[1]
BASELINE_INTERVAL = 2.0
MEMBERS = 500  # K jobs come from K different members, as in a real server


@dataclass
class Round:
    k: int
    ack: list[float]
    added: list[float]
    polls: list[int]
    baseline_polls: list[int]
    baseline_added: list[float]
    nominal_polls: list[int]  # what a 2-s poller that is never late makes on the same tasks
    rss_mb: float
    detect: list[float]
    deliver: list[float]
    fetch: list[float]
    post: list[float]
    cpu: float
    wall: float


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


async def baseline_poller(
    client: httpx.AsyncClient, hub: FakeHub, task_id: str, in_flight: asyncio.Semaphore
) -> tuple[int, float]:
    """A fixed 2-second poller on one task: (polls, seconds from ready to seeing it done)."""
    task = hub.tasks[task_id]
    polls = 0
    while True:
        await asyncio.sleep(max(0.0, task.created + (polls + 1) * BASELINE_INTERVAL - time.time()))
        polls += 1
        # Bounded here, not in httpcore's pool, whose wait queue costs quadratic CPU (and this loop also
        # serves the fake Hub the bot polls).
        async with in_flight:
            response = await client.get(f"/hub/v1/tasks/{task_id}", headers={"X-Bench-Baseline": "1"})
        response.raise_for_status()
        if response.json().get("ready"):
            return polls, time.time() - task.ready_at


async def one_round(
    k: int, discord_fake: FakeDiscord, hub: FakeHub, bot_pid: int, lag_window: list[float], measure: bool = True
) -> Round | None:
    started = time.time()
    cpu_start = cpu_seconds(bot_pid)
    first_task = len(hub.tasks)
    event_cursor = len(discord_fake.events)
    prompts = {f"bench {started:.0f} job {i}" for i in range(k)}
    sent = await asyncio.gather(
        *(
            discord_fake.slash(
                "imagine",
                {"prompt": prompt, "model": "nano-banana-2"},
                user=f"member{i % MEMBERS}",
                channel_id=discord_fake.channel_ids[i % len(discord_fake.channel_ids)],
            )
            for i, prompt in enumerate(sorted(prompts))
        )
    )
    delivered: dict[str, float] = {}
    baseline: list[asyncio.Task[tuple[int, float]]] = []
    seen_tasks = first_task
    auth = {"Authorization": f"Bearer {hub.api_key}"}
    in_flight = asyncio.Semaphore(40)
    async with httpx.AsyncClient(
        base_url=hub.url, timeout=30, headers=auth, limits=httpx.Limits(max_connections=50)
    ) as client:
        deadline = time.time() + 180
        while len(delivered) < k and time.time() < deadline:
            await asyncio.sleep(0.05)
            task_ids = list(hub.tasks)
            for task_id in task_ids[seen_tasks:]:
                baseline.append(asyncio.create_task(baseline_poller(client, hub, task_id, in_flight)))
            seen_tasks = len(task_ids)
            for event in discord_fake.events[event_cursor:]:
                if event.kind == "message_create" and event.data["attachments"]:
                    prompt = event.data["embeds"][0]["description"]
                    if prompt in prompts:
                        delivered.setdefault(prompt, event.at)
            event_cursor = len(discord_fake.events)
        baseline_results = await asyncio.gather(*baseline)
    if len(delivered) < k:
        print(f"  K={k}: only {len(delivered)}/{k} delivered in time", file=sys.stderr)
    if not measure:
        return None
    tasks = [hub.tasks[t] for t in list(hub.tasks)[first_task:]]
    done = [t for t in tasks if t.input["prompt"] in delivered and t.first_seen_done is not None]
    added = [delivered[t.input["prompt"]] - t.ready_at for t in done]
    detect = [t.first_seen_done - t.ready_at for t in done]  # type: ignore[operator]
    deliver = [delivered[t.input["prompt"]] - t.first_seen_done for t in done]  # type: ignore[operator]
    fetched = [t for t in done if t.fetched_at is not None]
    fetch = [t.fetched_at - t.first_seen_done for t in fetched]  # type: ignore[operator]
    post = [delivered[t.input["prompt"]] - t.fetched_at for t in fetched]  # type: ignore[operator]
    acks = [i.acked_at - i.sent_at for i in sent if i.acked_at is not None]
    lag_window[:] = [started, time.time()]
    return Round(
        k=k,
        ack=acks,
        added=added,
        polls=[t.polls for t in tasks],
        baseline_polls=[b[0] for b in baseline_results],
        baseline_added=[b[1] for b in baseline_results],
        nominal_polls=[math.ceil(t.plan.duration / BASELINE_INTERVAL) for t in tasks],
        rss_mb=vm_hwm_mb(bot_pid),
        detect=detect,
        deliver=deliver,
        fetch=fetch,
        post=post,
        cpu=cpu_seconds(bot_pid) - cpu_start,
        wall=time.time() - started,
    )


def merged(rounds: list[Round]) -> Round:
    """Rounds of the same K as one (K = 1 is repeated: one task is one sample)."""
    first = rounds[0]
    return Round(
        k=first.k,
        ack=[x for r in rounds for x in r.ack],
        added=[x for r in rounds for x in r.added],
        polls=[x for r in rounds for x in r.polls],
        baseline_polls=[x for r in rounds for x in r.baseline_polls],
        baseline_added=[x for r in rounds for x in r.baseline_added],
        nominal_polls=[x for r in rounds for x in r.nominal_polls],
        rss_mb=max(r.rss_mb for r in rounds),
        detect=[x for r in rounds for x in r.detect],
        deliver=[x for r in rounds for x in r.deliver],
        fetch=[x for r in rounds for x in r.fetch],
        post=[x for r in rounds for x in r.post],
        cpu=sum(r.cpu for r in rounds),
        wall=sum(r.wall for r in rounds),
    )


def report(title: str, rounds: list[Round], lag_samples: list[tuple[float, float]], windows: list[list[float]]) -> None:
    print()
    print(f"{title}:")
    print(
        "   K | ack p50 | ack p99 | added p50 | added p95 | polls/job | 2s-poller polls/job (added p50) "
        "| ratio (to one never late) | peak RSS | loop lag p99"
    )
    for r, (start, end) in zip(rounds, windows, strict=True):
        lag = [value for at, value in lag_samples if start <= at <= end]
        ours, theirs = sum(r.polls) / len(r.polls), sum(r.baseline_polls) / len(r.baseline_polls)
        nominal = sum(r.nominal_polls) / len(r.nominal_polls)
        print(
            f"{r.k:>4} | {pct(r.ack, 0.5) * 1000:5.0f}ms | {pct(r.ack, 0.99) * 1000:5.0f}ms "
            f"| {pct(r.added, 0.5):7.2f} s | {pct(r.added, 0.95):7.2f} s "
            f"| {ours:9.1f} | {theirs:10.1f} "
            f"({pct(r.baseline_added, 0.5):.2f} s)      | {ours / theirs:5.2f} ({ours / nominal:4.2f})"
            f"              | {r.rss_mb:5.0f} MB "
            f"| {pct(lag, 0.99) * 1000:7.1f} ms"
        )
    print()
    print("   K | added = wait p50/p95 + fetch p50/p95 + post p50/p95 (s) | delivered | bot CPU (s) / wall (s)")
    for r in rounds:
        print(
            f"{r.k:>4} | {pct(r.detect, 0.5):5.2f} / {pct(r.detect, 0.95):5.2f} "
            f"+ {pct(r.fetch, 0.5):5.3f} / {pct(r.fetch, 0.95):5.3f} "
            f"+ {pct(r.post, 0.5):5.3f} / {pct(r.post, 0.95):5.3f}"
            f" | {len(r.added):>4}/{len(r.polls):<4} | {r.cpu:6.1f} / {r.wall:5.1f}"
        )


async def session(
    ks: list[int],
    warmup: int,
    discord_fake: FakeDiscord,
    hub: FakeHub,
    single_rounds: int = 1,
    database: Path | None = None,
) -> tuple[list[Round], list[list[float]], list[tuple[float, float]]]:
    """One fresh bot process, with an empty database unless `database` is given: `warmup` jobs unmeasured, then
    one round per K (K = 1: `single_rounds` rounds, one after another, reported as one)."""
    with tempfile.TemporaryDirectory() as tmp:
        lag_file = Path(tmp) / "lag.json"
        env = {
            **os.environ,
            "BENCH_DISCORD_URL": discord_fake.url,
            "BENCH_LAG_FILE": str(lag_file),
            "DISCORD_TOKEN": FakeDiscord.TOKEN,
            "MOUNTSEA_API_KEY": hub.api_key,
            "MOUNTSEA_BASE_URL": hub.url,
            "RESULT_URLS_ALLOW_PRIVATE": "true",  # the fake Hub serves results from 127.0.0.1
            "DATABASE_PATH": str(database or Path(tmp) / "bench.db"),
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            "PYTHONPATH": str(ROOT),
        }
        identified = discord_fake.identifies
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.bot_process", cwd=tmp, env=env)
        rounds: list[Round] = []
        windows: list[list[float]] = []
        try:
            async with asyncio.timeout(30):
                # Ready once it has identified on the gateway (after its setup: commands synced, jobs resumed).
                while discord_fake.identifies <= identified:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            if warmup:
                print(f"  bot pid {proc.pid}: warming up with {warmup} jobs", flush=True)
                await one_round(warmup, discord_fake, hub, proc.pid, [], measure=False)
            for k in ks:
                print(f"  K={k} ...", flush=True)
                repeats: list[Round] = []
                spans: list[list[float]] = []
                for _ in range(single_rounds if k == 1 else 1):
                    window: list[float] = []
                    result = await one_round(k, discord_fake, hub, proc.pid, window)
                    assert result is not None
                    repeats.append(result)
                    spans.append(window)
                rounds.append(merged(repeats))
                windows.append([spans[0][0], spans[-1][1]])
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:  # never leave it running: a restarted bot would share its database
                proc.kill()
                await proc.wait()
        lag_samples = json.loads(lag_file.read_text()) if lag_file.exists() else []
    return rounds, windows, lag_samples


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ks", default="1,100,500,1000")
    parser.add_argument("--modes", default="cold,warm")
    parser.add_argument("--duration", type=float, default=20.0, help="mean provider task duration (s)")
    parser.add_argument("--spread", type=float, default=0.25, help="uniform spread around the mean")
    parser.add_argument("--warmup", type=int, default=20, help="jobs run first (warm mode) so durations are learned")
    parser.add_argument("--single-rounds", type=int, default=5, help="rounds of K = 1 (one task is one sample)")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    modes = args.modes.split(",")
    rng = random.Random(42)
    low, high = args.duration * (1 - args.spread), args.duration * (1 + args.spread)

    fake_lag: list[tuple[float, float]] = []
    fake_probe = asyncio.create_task(probe_lag(fake_lag), name="fake-lag-probe")
    results: list[tuple[str, list[Round], list[list[float]], list[tuple[float, float]]]] = []
    async with FakeDiscord(channels=50, members=MEMBERS) as discord_fake, FakeHub() as hub:
        hub.default_plan = lambda: Plan(duration=rng.uniform(low, high))
        print(f"tasks take {low:.0f}-{high:.0f} s; load average {os.getloadavg()[0]:.2f}")
        if "cold" in modes:
            rounds, windows, lag = [], [], []
            for k in ks:
                print(f"cold (fresh bot, empty database), K={k}", flush=True)
                repeats, spans = [], []
                for _ in range(args.single_rounds if k == 1 else 1):  # each K = 1 round with a fresh bot too
                    one, window, samples = await session([k], 0, discord_fake, hub)
                    repeats += one
                    spans += window
                    lag += samples
                rounds.append(merged(repeats))
                windows.append([spans[0][0], spans[-1][1]])
            results.append(("cold: a fresh bot and an empty database for each K", rounds, windows, lag))
        if "warm" in modes:
            print(f"warm (one bot, {args.warmup} warm-up jobs first)", flush=True)
            rounds, windows, lag = await session(ks, args.warmup, discord_fake, hub, args.single_rounds)
            results.append((f"warm: one bot after {args.warmup} warm-up jobs, K in turn", rounds, windows, lag))
        if "restarted" in modes:
            print(f"restarted (a bot runs {args.warmup} jobs and stops; a fresh one takes its database)", flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                database = Path(tmp) / "kept.db"
                await session([], args.warmup, discord_fake, hub, database=database)
                rounds, windows, lag = await session(ks, 0, discord_fake, hub, args.single_rounds, database=database)
            title = f"restarted: a fresh bot on the database of one that ran {args.warmup} jobs, K in turn"
            results.append((title, rounds, windows, lag))
    fake_probe.cancel()
    for title, rounds, windows, lag in results:
        report(title, rounds, lag, windows)
    print()
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    for title, rounds, windows, _ in results:
        for r, (start, end) in zip(rounds, windows, strict=True):
            lag_ = [value for at, value in fake_lag if start <= at <= end]
            print(f"{title.split(':')[0]} K={r.k}: the fakes' own loop lag p99 {pct(lag_, 0.99) * 1000:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
