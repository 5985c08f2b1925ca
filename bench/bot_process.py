"""The bot as `python -m bot` runs it, pointed at the fake Discord, with an event-loop lag probe.

Started by bench/run.py; settings come from the environment it sets. On SIGTERM the bot closes cleanly
and the lag samples are written to the file named by BENCH_LAG_FILE. With BENCH_PROFILE=path, the whole run
is profiled (cProfile) and the statistics are written there.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import time

from bot.__main__ import run
from bot.config import Settings
from bot.ops.logs import configure_logging
from tests.fakes.discord import point_discord_py_at

PROBE_INTERVAL = 0.01


async def probe_lag(samples: list[tuple[float, float]]) -> None:
    while True:
        started = time.perf_counter()
        await asyncio.sleep(PROBE_INTERVAL)
        samples.append((time.time(), time.perf_counter() - started - PROBE_INTERVAL))


async def main() -> None:
    point_discord_py_at(os.environ["BENCH_DISCORD_URL"])
    settings = Settings()  # type: ignore[call-arg]
    configure_logging(settings.log_level)
    samples: list[tuple[float, float]] = []
    probe = asyncio.create_task(probe_lag(samples), name="lag-probe")
    try:
        await run(settings)
    finally:
        probe.cancel()
        with open(os.environ["BENCH_LAG_FILE"], "w") as out:
            json.dump(samples, out)


if __name__ == "__main__":
    if os.environ.get("BENCH_PROFILE"):
        profiler = cProfile.Profile()
        try:
            profiler.runcall(asyncio.run, main())
        finally:
            profiler.dump_stats(os.environ["BENCH_PROFILE"])
    else:
        asyncio.run(main())
