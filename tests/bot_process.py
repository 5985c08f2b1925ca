"""Real bot processes for crash tests: `bot.__main__.run(settings)` in its own process, killable at any moment.

    python -m tests.bot_process        (started by `BotLauncher`; settings come from the environment)

This launcher process imports the bot once, then forks one bot process per `start` line it reads on stdin, so a
restart costs milliseconds instead of a second of imports (a crash test restarts the bot 20 times on 2 cores).
Each child is a complete bot: its own event loop, database connections, HTTP clients and gateway session, run by
the same `run(settings)` that `python -m bot` uses, with discord.py pointed at the fake Discord named by
CRASH_DISCORD_URL. The protocol, one line each way:

    <- ready                 the launcher has imported everything
    -> start                 fork a bot
    <- pid N                 it runs as process N (its log goes to the launcher's stderr)
    <- exit N STATUS         it ended (killed by signal S: STATUS = -S)
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path

# Imported at the top: the launcher loads the bot once, and every forked child starts with everything loaded.
from bot.__main__ import configure_logging, run
from bot.config import Settings
from tests.fakes.discord import point_discord_py_at

LAUNCHER_MODULE = "tests.bot_process"


def _child() -> int:
    point_discord_py_at(os.environ["CRASH_DISCORD_URL"])
    settings = Settings()
    configure_logging(settings.log_level)
    return asyncio.run(run(settings))


def die_with_parent() -> None:
    """Linux: get SIGKILL when the parent process ends, so a crashed test run leaves no bot behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main() -> None:
    die_with_parent()
    out = sys.stdout
    print("ready", file=out, flush=True)
    for line in sys.stdin:
        if line.strip() != "start":
            continue
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                die_with_parent()
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                os.dup2(2, 1)  # the protocol is the launcher's; the bot's prints go to the log
                print(f"=== bot process {os.getpid()} starting ===", file=sys.stderr, flush=True)
                code = _child()
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        print(f"pid {pid}", file=out, flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {pid} {os.waitstatus_to_exitcode(status)}", file=out, flush=True)


class BotLauncher:
    """Test side of the launcher: start a bot process, SIGKILL it, SIGTERM it, know when it has gone."""

    def __init__(self, env: Mapping[str, str], cwd: Path, log: Path) -> None:
        self._env = dict(env)
        self._cwd = cwd
        self._log_path = log
        self._proc: asyncio.subprocess.Process | None = None
        self._exit: asyncio.Task[int] | None = None
        self._ending = asyncio.Lock()
        self.pid: int | None = None
        self.started = 0
        self.unexpected_exits: list[tuple[int, int]] = []  # (pid, status) of bots that ended without being told to

    async def __aenter__(self) -> BotLauncher:
        root = Path(__file__).resolve().parents[1]
        env = {**self._env, "PYTHONPATH": str(root)}
        self._log = self._log_path.open("ab")
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            LAUNCHER_MODULE,
            cwd=self._cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
        )
        assert await self._line(30) == "ready"
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self.kill()
        if self._proc is not None:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            try:
                await asyncio.wait_for(self._proc.wait(), 10)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        self._log.close()

    async def _line(self, timeout: float) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("the bot launcher exited")
        return line.decode().strip()

    @property
    def alive(self) -> bool:
        return self._exit is not None and not self._exit.done()

    async def start(self) -> int:
        assert self._proc is not None and self._proc.stdin is not None
        assert not self.alive, "a bot process is already running"
        self._proc.stdin.write(b"start\n")
        await self._proc.stdin.drain()
        kind, pid = (await self._line(10)).split()
        assert kind == "pid"
        self.pid = int(pid)
        self.started += 1
        self._exit = asyncio.create_task(self._wait_exit(self.pid))
        return self.pid

    async def _wait_exit(self, pid: int) -> int:
        kind, ended, status = (await self._line(3600)).split()
        assert kind == "exit" and int(ended) == pid
        return int(status)

    async def kill(self) -> None:
        """SIGKILL the running bot and return once it is gone (and reaped)."""
        await self._end(signal.SIGKILL, 10)

    async def stop(self, timeout: float = 20) -> int:
        """SIGTERM: the bot closes cleanly; returns its exit status."""
        return await self._end(signal.SIGTERM, timeout)

    async def _end(self, sig: signal.Signals, timeout: float) -> int:
        async with self._ending:
            return await self._end_now(sig, timeout)

    async def _end_now(self, sig: signal.Signals, timeout: float) -> int:
        if self._exit is None or self.pid is None:
            return 0
        if self._exit.done():
            status = self._exit.result()
            self.unexpected_exits.append((self.pid, status))
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
            status = await asyncio.wait_for(asyncio.shield(self._exit), timeout)
        self._exit = None
        return status


if __name__ == "__main__":
    main()
