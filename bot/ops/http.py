"""`GET /healthz` and `GET /metrics` on the bot's own event loop (aiohttp), when HTTP_PORT is set."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from bot.db import Database
from bot.ops.metrics import CONTENT_TYPE, COUNT_JOBS, Metrics

log = logging.getLogger(__name__)

DB_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Gateway:
    """What /healthz needs to know about the Discord connection."""

    connected: Callable[[], bool]
    guilds: Callable[[], int]


class OpsServer:
    """A small aiohttp app: health for orchestrators, Prometheus text for scrapers."""

    def __init__(self, db: Database, metrics: Metrics, gateway: Gateway) -> None:
        self._db = db
        self._metrics = metrics
        self._gateway = gateway
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_text)
        return app

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (port 0 picks a free one; the chosen port is in `self.port`)."""
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        addresses = self._runner.addresses  # (host, port, ...) of each listening socket
        self.port = int(addresses[0][1]) if addresses else port
        log.info("health and metrics on http://%s:%d/healthz and /metrics", host, self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _database_answers(self) -> bool:
        try:
            # Through the writer (reads have their own connection): a stuck write means no job can move.
            await asyncio.wait_for(self._db.execute("SELECT 1"), DB_TIMEOUT_SECONDS)
        except Exception as exc:
            log.warning("health check: the database did not answer: %s", exc)
            return False
        return True

    async def _healthz(self, request: web.Request) -> web.Response:
        gateway = self._gateway.connected()
        database = await self._database_answers()
        healthy = gateway and database
        body = {
            "status": "ok" if healthy else "unavailable",
            "gateway": gateway,
            "database": database,
            "guilds": self._gateway.guilds(),
        }
        return web.json_response(body, status=200 if healthy else 503)

    async def _counts(self) -> tuple[int, int]:
        """(queued, active) jobs, counted in the database."""
        row = await self._db.fetchone(COUNT_JOBS)
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def _metrics_text(self, request: web.Request) -> web.Response:
        body = await self._metrics.render(self._counts)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
