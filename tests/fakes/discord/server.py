"""The fake Discord server: state, gateway and REST routes, and a driving API for tests.

It behaves like Discord where bots get hurt: 3-second acknowledgement window (10062), 15-minute
interaction tokens (50027), per-file upload limit (413/40005), at most 10 files, enforce_nonce
de-duplication, 429s with `retry_after` and a `Via` header, and the exact `application/json` type.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import discord.http
import yarl
from aiohttp import web
from discord.gateway import DiscordWebSocket

from tests.fakes.discord import payloads as p

MAX_FILES = 10
REQUEST_LIMIT = 25 * 1024 * 1024
HEARTBEAT_RTT = 0.02
EPHEMERAL = 1 << 6
LOADING = 1 << 7


def point_discord_py_at(base_url: str) -> Callable[[], None]:
    """Patch discord.py's REST base and gateway URL (test harness only); returns the undo function."""
    old_base, old_gateway = discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = f"{base_url}/api/v10"
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(base_url.replace("http://", "ws://") + "/gateway")

    def undo() -> None:
        discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway

    return undo


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(data).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"code": code, "message": message}, status)


@dataclass
class FakeInteraction:
    id: int
    token: str
    type: int
    channel_id: int
    guild_id: int | None
    user_id: int
    sent_at: float
    acked_at: float | None = None
    response_type: int | None = None
    original_id: int | None = None
    modal: dict[str, Any] | None = None


@dataclass
class Stored:
    data: dict[str, Any]
    ephemeral: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    deleted: bool = False


@dataclass
class Event:
    at: float
    kind: str  # message_create | message_update | message_delete | callback | rejected
    data: dict[str, Any]


@dataclass
class RateLimit:
    method: str
    path: re.Pattern[str]
    remaining: int
    retry_after: float


class FakeDiscord:
    """`async with FakeDiscord() as discord_fake:`; then run a discord.py client against `.url`."""

    TOKEN = "fake-bot-token"

    def __init__(
        self,
        *,
        upload_limit: int = 10 * 1024 * 1024,
        ack_deadline: float = 3.0,
        token_lifetime: float = 15 * 60,
        channels: int = 2,
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
        self.users = {name: p.user(self.ids.next(), name) for name in ("alice", "bob", "admin")}
        self.app_permissions: dict[int, int] = {}
        self.messages: dict[int, Stored] = {}
        self.channel_order: dict[int, list[int]] = {}
        self.nonces: dict[tuple[int, str], int] = {}
        self.commands: dict[str, dict[str, Any]] = {}
        self.guild_commands: dict[int, dict[str, dict[str, Any]]] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self._by_token: dict[str, FakeInteraction] = {}
        self.events: list[Event] = []
        self.requests: list[tuple[float, str, str]] = []
        self.rate_limits: list[RateLimit] = []
        self.identifies = 0
        self.resumes = 0
        self._sockets: list[tuple[web.WebSocketResponse, list[int]]] = []
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
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
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
                return _json(
                    {"message": "You are being rate limited.", "retry_after": limit.retry_after, "global": False},
                    429,
                    {"Via": "1.1 google", "X-RateLimit-Scope": "user", "Retry-After": "1"},
                )
        needs_bot_auth = path.startswith("/api/v10/") and not path.startswith(
            ("/api/v10/interactions/", "/api/v10/webhooks/")
        )
        if needs_bot_auth and request.headers.get("Authorization") != f"Bot {self.TOKEN}":
            return _error(401, 0, "401: Unauthorized")
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

    # -- gateway ----------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        seq = [0]
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        try:
            async for msg in ws:
                if msg.type != web.WSMsgType.TEXT:
                    continue
                payload = json.loads(msg.data)
                op = payload.get("op")
                if op == 1:
                    # Real ACKs take a network round trip; an instant one races discord.py's keep-alive
                    # thread (it records the send time after the send) and reads as a 41 s latency.
                    self._background.add(asyncio.create_task(self._heartbeat_ack(ws)))
                elif op == 2:
                    self.identifies += 1
                    self._sockets.append((ws, seq))
                    await self._ready(ws, seq)
                elif op == 6:
                    self.resumes += 1
                    self._sockets.append((ws, seq))
                    seq[0] = payload["d"].get("seq") or 0
                    seq[0] += 1
                    await ws.send_str(json.dumps({"op": 0, "t": "RESUMED", "s": seq[0], "d": {}}))
        finally:
            self._sockets = [(w, s) for w, s in self._sockets if w is not ws]
        return ws

    async def _heartbeat_ack(self, ws: web.WebSocketResponse) -> None:
        await asyncio.sleep(HEARTBEAT_RTT)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(json.dumps({"op": 11}))
        self._background = {t for t in self._background if not t.done()}

    async def _ready(self, ws: web.WebSocketResponse, seq: list[int]) -> None:
        ready = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": secrets.token_hex(16),
            "resume_gateway_url": self.url.replace("http", "ws") + "/gateway",
            "application": {"id": str(self.app_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        for event, data in (("READY", ready), ("GUILD_CREATE", self.guild_payload())):
            seq[0] += 1
            await ws.send_str(json.dumps({"op": 0, "t": event, "s": seq[0], "d": data}))

    def guild_payload(self) -> dict[str, Any]:
        everyone = p.role(self.guild_id, "@everyone", p.MEMBER_PERMISSIONS)
        channels = [
            p.text_channel(c, self.guild_id, "general" if i == 0 else f"art-{i}", i)
            for i, c in enumerate(self.channel_ids)
        ]
        members = [p.member(self.bot_user)] + [p.member(u) for u in self.users.values()]
        return p.guild(self.guild_id, "Fake Guild", int(self.users["admin"]["id"]), channels, [everyone], members)

    # -- application & commands -------------------------------------------------------------------

    async def _me(self, _: web.Request) -> web.Response:
        return _json(self.bot_user)

    async def _get_commands(self, _: web.Request) -> web.Response:
        return _json(list(self.commands.values()))

    @staticmethod
    async def _no_content(_: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _app_info(self, _: web.Request) -> web.Response:
        return _json(
            {
                "id": str(self.app_id),
                "name": "ImageBot",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.users["admin"],
                "verify_key": "0" * 64,
                "flags": 0,
                "team": None,
                "summary": "",
            }
        )

    async def _put_commands(self, request: web.Request) -> web.Response:
        body = await request.json()
        guild = request.match_info.get("guild")
        registered = {}
        for command in body:
            stored = {
                **command,
                "id": str(self.ids.next()),
                "application_id": str(self.app_id),
                "version": str(self.ids.next()),
                "type": command.get("type", 1),
            }
            if guild:
                stored["guild_id"] = guild
            registered[command["name"]] = stored
        if guild:
            self.guild_commands[int(guild)] = registered
        else:
            self.commands = registered
        return _json(list(registered.values()))

    # -- interactions -----------------------------------------------------------------------------

    def _token_interaction(self, token: str) -> FakeInteraction | None:
        return self._by_token.get(token)

    async def _callback(self, request: web.Request) -> web.Response:
        interaction = self.interactions.get(int(request.match_info["id"]))
        now = time.time()
        if interaction is None or interaction.token != request.match_info["token"]:
            return _error(404, 10062, "Unknown interaction")
        if now - p.snowflake_time(interaction.id) > self.ack_deadline:
            await self._record("rejected", {"reason": "late_ack", "interaction": interaction.id})
            return _error(404, 10062, "Unknown interaction")
        if interaction.acked_at is not None:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        body, files = await self._read(request)
        kind = int(body["type"])
        data = body.get("data") or {}
        interaction.acked_at, interaction.response_type = now, kind
        message = None
        if kind in (4, 5):
            flags = int(data.get("flags") or 0) | (LOADING if kind == 5 else 0)
            message = await self._new_message(
                interaction.channel_id,
                {**data, "flags": flags},
                files,
                interaction=interaction,
                ephemeral=bool(flags & EPHEMERAL),
            )
            interaction.original_id = int(message["id"])
        elif kind == 7 and interaction.original_id:
            message = await self._edit(interaction.original_id, data, files)
        elif kind == 9:
            interaction.modal = data
        await self._record("callback", {"interaction": interaction.id, "type": kind, "data": data})
        if request.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        result: dict[str, Any] = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(message and message["flags"] & EPHEMERAL),
            }
        }
        if message is not None:
            result["interaction"]["response_message_id"] = message["id"]
            result["resource"] = {"type": kind, "message": message}
        return _json(result)

    def _live_token(self, request: web.Request) -> FakeInteraction | web.Response:
        interaction = self._token_interaction(request.match_info["token"])
        if interaction is None or time.time() - p.snowflake_time(interaction.id) > self.token_lifetime:
            return _error(401, 50027, "Invalid Webhook Token")
        return interaction

    async def _followup(self, request: web.Request) -> web.Response:
        interaction = self._live_token(request)
        if isinstance(interaction, web.Response):
            return interaction
        body, files = await self._read(request)
        original = self.messages.get(interaction.original_id or 0)
        if original is not None and original.data["flags"] & LOADING:
            # After a deferred response the first follow-up fills in the "thinking" message.
            return _json(
                await self._edit(int(original.data["id"]), {**body, "flags": original.data["flags"] & ~LOADING}, files)
            )
        flags = int(body.get("flags") or 0)
        message = await self._new_message(
            interaction.channel_id, body, files, interaction=interaction, ephemeral=bool(flags & EPHEMERAL)
        )
        return _json(message)

    async def _webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._live_token(request)
        if isinstance(interaction, web.Response):
            return interaction
        raw = request.match_info["message"]
        message_id = interaction.original_id if raw == "@original" else int(raw)
        stored = self.messages.get(message_id or 0)
        if stored is None or stored.deleted:
            return _error(404, 10008, "Unknown Message")
        if request.method == "GET":
            return _json(stored.data)
        if request.method == "DELETE":
            await self._delete(int(stored.data["id"]))
            return web.Response(status=204)
        body, files = await self._read(request)
        body.setdefault("flags", stored.data["flags"] & ~LOADING)
        body["flags"] = int(body["flags"]) | (stored.data["flags"] & EPHEMERAL)
        return _json(await self._edit(int(stored.data["id"]), body, files))

    # -- channel messages -------------------------------------------------------------------------

    def _check_files(self, files: list[tuple[str, bytes]]) -> web.Response | None:
        if len(files) > MAX_FILES:
            return _json(
                {
                    "code": 50035,
                    "message": "Invalid Form Body",
                    "errors": {"files": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}},
                },
                400,
            )
        if any(len(data) > self.upload_limit for _, data in files) or sum(len(d) for _, d in files) > REQUEST_LIMIT:
            return _error(413, 40005, "Request entity too large")
        return None

    async def _create_message(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel"])
        if not self._can_post(channel_id):
            return _error(403, 50013, "Missing Permissions")
        body, files = await self._read(request)
        if (refused := self._check_files(files)) is not None:
            await self._record("rejected", {"reason": "files", "channel": channel_id})
            return refused
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            existing = self.nonces.get((channel_id, str(nonce)))
            if existing is not None:
                return _json(self.messages[existing].data)
        message = await self._new_message(channel_id, body, files, author=self.bot_user)
        if nonce is not None:
            self.nonces[(channel_id, str(nonce))] = int(message["id"])
        return _json(message)

    def _can_post(self, channel_id: int) -> bool:
        perms = self.app_permissions.get(channel_id, p.BOT_PERMISSIONS)
        return bool(perms & (1 << 11))

    async def _history(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel"])
        ids = [m for m in self.channel_order.get(channel_id, []) if self._visible(m)]
        if "after" in request.query:
            ids = [m for m in ids if m > int(request.query["after"])]
            ids = ids[: int(request.query.get("limit", 50))]
        else:
            if "before" in request.query:
                ids = [m for m in ids if m < int(request.query["before"])]
            ids = ids[-int(request.query.get("limit", 50)) :]
        return _json([self.messages[m].data for m in reversed(ids)])

    def _visible(self, message_id: int) -> bool:
        stored = self.messages[message_id]
        return not stored.deleted and not stored.ephemeral

    async def _channel_message(self, request: web.Request) -> web.Response:
        message_id = int(request.match_info["message"])
        stored = self.messages.get(message_id)
        if stored is None or not self._visible(message_id):
            return _error(404, 10008, "Unknown Message")
        if request.method == "GET":
            return _json(stored.data)
        if request.method == "DELETE":
            await self._delete(message_id)
            return web.Response(status=204)
        if stored.data["author"]["id"] != self.bot_user["id"]:
            return _error(403, 50005, "Cannot edit a message authored by another user")
        body, files = await self._read(request)
        if (refused := self._check_files(files)) is not None:
            return refused
        return _json(await self._edit(message_id, body, files))

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        for stored in self.messages.values():
            for attachment in stored.data["attachments"]:
                if attachment["id"] == request.match_info["attachment"]:
                    return web.Response(
                        body=stored.files[attachment["filename"]],
                        content_type=attachment.get("content_type") or "application/octet-stream",
                    )
        return web.Response(status=404)

    async def _new_message(
        self,
        channel_id: int,
        body: dict[str, Any],
        files: list[tuple[str, bytes]],
        *,
        author: dict[str, Any] | None = None,
        interaction: FakeInteraction | None = None,
        ephemeral: bool = False,
    ) -> dict[str, Any]:
        message_id = self.ids.next()
        attachments = self._attachments(channel_id, files)
        data = p.message(
            message_id,
            channel_id,
            self.guild_id if channel_id in self._guild_channels() else None,
            author or self.bot_user,
            body,
            attachments,
            webhook_id=self.app_id if interaction else None,
            interaction_user=self.users_by_id(interaction.user_id) if interaction else None,
        )
        if interaction is not None:
            data["application_id"] = str(self.app_id)
        self.messages[message_id] = Stored(data, ephemeral, dict(files))
        self.channel_order.setdefault(channel_id, []).append(message_id)
        await self._record("message_create", data)
        if not ephemeral:
            await self._dispatch("MESSAGE_CREATE", data)
        return data

    def _attachments(self, channel_id: int, files: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
        out = []
        for filename, data in files:
            attachment_id = self.ids.next()
            url = f"{self.url}/cdn/attachments/{channel_id}/{attachment_id}/{filename}"
            kind = {
                "png": "image/png",
                "jpg": "image/jpeg",
                "jpeg": "image/jpeg",
                "webp": "image/webp",
                "gif": "image/gif",
            }.get(filename.rsplit(".", 1)[-1].lower())
            out.append(
                {
                    "id": str(attachment_id),
                    "filename": filename,
                    "size": len(data),
                    "url": url,
                    "proxy_url": url,
                    "content_type": kind,
                }
            )
        return out

    async def _edit(self, message_id: int, body: dict[str, Any], files: list[tuple[str, bytes]]) -> dict[str, Any]:
        stored = self.messages[message_id]
        data = stored.data
        for key in ("content", "embeds", "components", "flags"):
            if key in body:
                data[key] = body[key] if body[key] is not None else ([] if key != "content" else "")
        if files or "attachments" in body:
            kept_ids = {str(a.get("id")) for a in body.get("attachments") or []}
            kept = [a for a in data["attachments"] if a["id"] in kept_ids]
            data["attachments"] = kept + self._attachments(int(data["channel_id"]), files)
            stored.files.update(dict(files))
        data["edited_timestamp"] = p.iso()
        await self._record("message_update", data)
        if not stored.ephemeral:
            await self._dispatch("MESSAGE_UPDATE", data)
        return data

    async def _delete(self, message_id: int) -> None:
        stored = self.messages[message_id]
        stored.deleted = True
        await self._record("message_delete", stored.data)
        if not stored.ephemeral:
            await self._dispatch(
                "MESSAGE_DELETE",
                {"id": str(message_id), "channel_id": stored.data["channel_id"], "guild_id": str(self.guild_id)},
            )

    def _guild_channels(self) -> set[int]:
        return set(self.channel_ids)

    def users_by_id(self, user_id: int) -> dict[str, Any]:
        return next(u for u in self.users.values() if int(u["id"]) == user_id)

    # -- driving API for tests --------------------------------------------------------------------

    def command(self, name: str) -> dict[str, Any]:
        for registered in (self.commands, *self.guild_commands.values()):
            if name in registered:
                return registered[name]
        raise KeyError(f"command {name!r} was never synced; synced: {sorted(self.commands)}")

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: str = "alice",
        channel_id: int | None = None,
        sent_at: float | None = None,
        member_permissions: int = p.MEMBER_PERMISSIONS,
    ) -> FakeInteraction:
        """Send a slash command as `user`, like Discord does after the user presses enter."""
        command = self.command(name)
        types = {o["name"]: o["type"] for o in command.get("options", [])}
        unknown = set(options or {}) - set(types)
        if unknown:
            raise KeyError(f"/{name} has no option(s) {unknown}")
        data = {
            "id": command["id"],
            "name": name,
            "type": 1,
            "options": [{"name": k, "type": types[k], "value": v} for k, v in (options or {}).items()],
        }
        return await self._send_interaction(2, data, user, channel_id, sent_at, member_permissions)

    async def _send_interaction(
        self,
        kind: int,
        data: dict[str, Any],
        user: str,
        channel_id: int | None,
        sent_at: float | None,
        member_permissions: int,
    ) -> FakeInteraction:
        channel_id = channel_id or self.channel_id
        interaction = FakeInteraction(
            id=self.ids.next(sent_at),
            token=secrets.token_urlsafe(48),
            type=kind,
            channel_id=channel_id,
            guild_id=self.guild_id,
            user_id=int(self.users[user]["id"]),
            sent_at=time.time(),
        )
        self.interactions[interaction.id] = interaction
        self._by_token[interaction.token] = interaction
        channel = p.text_channel(channel_id, self.guild_id, "general" if channel_id == self.channel_id else "art")
        payload = {
            "id": str(interaction.id),
            "application_id": str(self.app_id),
            "type": kind,
            "token": interaction.token,
            "version": 1,
            "attachment_size_limit": self.upload_limit,
            "guild_id": str(self.guild_id),
            "channel_id": str(channel_id),
            "channel": channel,
            "member": p.member(self.users[user], permissions=member_permissions),
            "app_permissions": str(self.app_permissions.get(channel_id, p.BOT_PERMISSIONS)),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "data": data,
        }
        await self._dispatch("INTERACTION_CREATE", payload)
        return interaction

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        """The first event (past or future) matching `predicate`."""
        async with asyncio.timeout(timeout), self._changed:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                await self._changed.wait()

    async def wait_for_message(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 10.0,
        kinds: tuple[str, ...] = ("message_create",),
    ) -> dict[str, Any]:
        event = await self.wait_for(lambda e: e.kind in kinds and predicate(e.data), timeout)
        return event.data

    def channel_messages(self, channel_id: int | None = None) -> list[dict[str, Any]]:
        """Public, undeleted messages of a channel, oldest first, as they are now."""
        ids = self.channel_order.get(channel_id or self.channel_id, [])
        return [self.messages[m].data for m in ids if self._visible(m)]

    def original(self, interaction: FakeInteraction) -> dict[str, Any] | None:
        stored = self.messages.get(interaction.original_id or 0)
        return None if stored is None or stored.deleted else stored.data

    def attachment_bytes(self, attachment: dict[str, Any]) -> bytes:
        for stored in self.messages.values():
            if any(a["id"] == attachment["id"] for a in stored.data["attachments"]):
                return stored.files[attachment["filename"]]
        raise KeyError(attachment["id"])
