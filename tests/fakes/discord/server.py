"""The fake Discord server: state, gateway and REST routes, and a driving API for tests.

It behaves like Discord where bots get hurt: 3-second acknowledgement window (10062), 15-minute
interaction tokens (50027), per-file upload limit (413/40005), at most 10 files, enforce_nonce
de-duplication, 429s with `retry_after` and a `Via` header, and the exact `application/json` type.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

import discord.http
import yarl
from aiohttp import web
from discord.gateway import DiscordWebSocket

from tests.fakes.discord import payloads as p
from tests.fakes.discord.driver import DriverMixin
from tests.fakes.discord.gateway import GatewayMixin
from tests.fakes.discord.model import Event, FakeInteraction, RateLimit, Stored, error_response, json_response
from tests.fakes.discord.rest import RestMixin
from tests.fakes.loopback import serve


def point_discord_py_at(base_url: str) -> Callable[[], None]:
    """Patch discord.py's REST base and gateway URL (test harness only); returns the undo function."""
    old_base, old_gateway = discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = f"{base_url}/api/v10"
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(base_url.replace("http://", "ws://") + "/gateway")

    def undo() -> None:
        discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway

    return undo


class FakeDiscord(DriverMixin, RestMixin, GatewayMixin):
    """`async with FakeDiscord() as discord_fake:`; then run a discord.py client against `.url`."""

    TOKEN = "fake-bot-token"

    def __init__(
        self,
        *,
        upload_limit: int = 10 * 1024 * 1024,
        ack_deadline: float = 3.0,
        token_lifetime: float = 15 * 60,
        channels: int = 2,
        members: int = 0,
        bucket_limit: int = 50,
    ) -> None:
        self.ids = p.Snowflakes()
        self.upload_limit = upload_limit
        self.ack_deadline = ack_deadline
        self.token_lifetime = token_lifetime
        self.bucket_limit = bucket_limit
        self.app_id = self.ids.next()
        self.bot_user = p.user(self.ids.next(), "ImageBot", bot=True)
        self.guild_id = self.ids.next()
        self.channel_ids = [self.ids.next() for _ in range(max(2, channels))]
        self.channel_id, self.other_channel_id = self.channel_ids[0], self.channel_ids[1]
        names = ["alice", "bob", "admin"] + [f"member{i}" for i in range(members)]
        self.users = {name: p.user(self.ids.next(), name) for name in names}
        self.roles = {name: self.ids.next() for name in ("artists", "vip")}
        self.member_roles: dict[str, list[int]] = {}  # user name -> role ids
        # Languages: each member's Discord client (`locale` on their interactions) and the server's preferred locale
        # (`guild_locale` on interactions, `preferred_locale` in GUILD_CREATE). Real Discord always sends both.
        self.user_locales: dict[str, str] = {}  # user name -> locale; unset: en-US
        self.guild_locale = "en-US"
        self.app_permissions: dict[int, int] = {}
        self.messages: dict[int, Stored] = {}
        self.channel_order: dict[int, list[int]] = {}
        self.nonces: dict[tuple[int, str], int] = {}
        self.commands: dict[str, dict[str, Any]] = {}
        self.guild_commands: dict[int, dict[str, dict[str, Any]]] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.uploads: dict[str, bytes] = {}
        self.intents = 0
        self.dm_channels: dict[int, int] = {}  # DM channel id -> the user it is with
        self.closed_dms: set[str] = set()  # user names whose DMs refuse the bot (50007)
        self._by_token: dict[str, FakeInteraction] = {}
        self.events: list[Event] = []
        self.requests: list[tuple[float, str, str]] = []
        self.rate_limits: list[RateLimit] = []
        self.identifies = 0
        self.resumes = 0
        self.gateway_refusing = False  # answer gateway connections with 503 (an outage)
        self._sockets: list[tuple[web.WebSocketResponse, list[int]]] = []
        self._socket_shards: dict[web.WebSocketResponse, list[int] | None] = {}
        self.dispatched: list[tuple[str, list[int] | None]] = []  # (event, shard it went to)
        # Benchmarks: stand in for many guilds spread over the shards (every shard sees the guild, and
        # interactions go to the shard channel_id % shard_count), so sharded processes share the load.
        self.spread_shards = False
        self._changed = asyncio.Condition()
        self._background: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._middleware])
        r = app.router
        r.add_get("/gateway", self._gateway)
        r.add_get("/api/v10/users/@me", self._me)
        r.add_get("/api/v10/oauth2/applications/@me", self._app_info)
        r.add_post("/api/v10/users/@me/channels", self._create_dm)
        r.add_put("/api/v10/applications/{app}/commands", self._put_commands)
        r.add_get("/api/v10/applications/{app}/commands", self._get_commands)
        r.add_put("/api/v10/applications/{app}/guilds/{guild}/commands", self._put_commands)
        r.add_post("/api/v10/interactions/{id}/{token}/callback", self._callback)
        r.add_post("/api/v10/webhooks/{app}/{token}", self._followup)
        r.add_route("*", "/api/v10/webhooks/{app}/{token}/messages/{message}", self._webhook_message)
        r.add_post("/api/v10/channels/{channel}/messages", self._create_message)
        r.add_get("/api/v10/channels/{channel}/messages", self._history)
        r.add_route("*", "/api/v10/channels/{channel}/messages/{message}", self._channel_message)
        r.add_post("/api/v10/channels/{channel}/typing", self._no_content)
        r.add_route("*", "/api/v10/channels/{channel}/messages/{message}/reactions/{rest:.*}", self._no_content)
        r.add_get("/cdn/attachments/{channel}/{attachment}/{filename}", self._cdn)
        self._runner, self.url = await serve(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ws, _ in list(self._sockets):
            await ws.close()
        if self._runner:
            await self._runner.cleanup()

    # -- plumbing ---------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        self.requests.append((time.time(), request.method, path))
        for limit in self.rate_limits:
            if limit.remaining > 0 and limit.method == request.method and limit.path.search(path):
                limit.remaining -= 1
                return json_response(
                    {"message": "You are being rate limited.", "retry_after": limit.retry_after, "global": False},
                    429,
                    {"Via": "1.1 google", "X-RateLimit-Scope": "user", "Retry-After": "1"},
                )
        needs_bot_auth = path.startswith("/api/v10/") and not path.startswith(
            ("/api/v10/interactions/", "/api/v10/webhooks/")
        )
        if needs_bot_auth and request.headers.get("Authorization") != f"Bot {self.TOKEN}":
            return error_response(401, 0, "401: Unauthorized")
        response: web.StreamResponse = await handler(request)
        if path.startswith("/api/v10/") and response.status != 429:
            # Discord sends these on every answer; without them discord.py allows one request per bucket.
            bucket = re.sub(r"\d{15,}", "{id}", f"{request.method} {path}")
            response.headers.update(
                {
                    "X-RateLimit-Limit": str(self.bucket_limit),
                    "X-RateLimit-Remaining": str(self.bucket_limit - 1),
                    "X-RateLimit-Reset-After": "1.000",
                    "X-RateLimit-Bucket": hashlib.sha1(bucket.encode()).hexdigest()[:16],
                }
            )
        return response

    def rate_limit(self, method: str, path_regex: str, count: int = 1, retry_after: float = 0.05) -> None:
        """Answer the next `count` matching requests with 429."""
        self.rate_limits.append(RateLimit(method, re.compile(path_regex), count, retry_after))

    async def _record(self, kind: str, data: dict[str, Any]) -> None:
        async with self._changed:
            self.events.append(Event(time.time(), kind, copy.deepcopy(data)))
            self._changed.notify_all()

    async def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        for ws, seq in list(self._sockets):
            if not self.owns_guild(ws, data.get("guild_id")):
                continue
            shard = self._socket_shards.get(ws)
            spread = self.spread_shards and shard and event == "INTERACTION_CREATE"
            if spread and int(data["channel_id"]) % shard[1] != shard[0]:  # type: ignore[index]
                continue
            self.dispatched.append((event, self._socket_shards.get(ws)))
            seq[0] += 1
            try:
                await ws.send_str(json.dumps({"op": 0, "t": event, "s": seq[0], "d": data}))
            except ConnectionError:
                continue

    async def _read(self, request: web.Request) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
        """JSON body, or multipart `payload_json` + `files[n]`."""
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            body = json.loads(str(form.get("payload_json", "{}")))
            files = []
            for key, value in form.items():
                if key.startswith("files[") and isinstance(value, web.FileField):
                    files.append((value.filename, value.file.read()))
            return body, files
        if request.can_read_body:
            return await request.json(), []
        return {}, []
