"""The fake gateway: HELLO, IDENTIFY -> READY + GUILD_CREATE, heartbeats, RESUME."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from typing import Any

from aiohttp import web

from tests.fakes.discord import payloads as p
from tests.fakes.discord.model import HEARTBEAT_RTT


class GatewayMixin:
    """Gateway half of FakeDiscord (state lives on FakeDiscord)."""

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        if self.gateway_refusing:  # type: ignore[attr-defined]
            return web.Response(status=503, text="gateway unavailable")
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
                    self.intents = int(payload["d"].get("intents", 0))
                    self._socket_shards[ws] = payload["d"].get("shard")  # type: ignore[attr-defined]
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

    def owns_guild(self, ws: web.WebSocketResponse, guild_id: object) -> bool:
        """Like Discord: a guild's events go to shard (guild_id >> 22) % shard_count only."""
        shard = self._socket_shards.get(ws)  # type: ignore[attr-defined]
        if not shard or guild_id is None or self.spread_shards:  # type: ignore[attr-defined]
            return True
        return bool((int(str(guild_id)) >> 22) % shard[1] == shard[0])

    async def _heartbeat_ack(self, ws: web.WebSocketResponse) -> None:
        await asyncio.sleep(HEARTBEAT_RTT)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(json.dumps({"op": 11}))
        self._background = {t for t in self._background if not t.done()}

    async def _ready(self, ws: web.WebSocketResponse, seq: list[int]) -> None:
        shard = self._socket_shards.get(ws)  # type: ignore[attr-defined]
        mine = self.owns_guild(ws, self.guild_id)
        ready: dict[str, Any] = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": str(self.guild_id), "unavailable": True}] if mine else [],
            "session_id": secrets.token_hex(16),
            "resume_gateway_url": self.url.replace("http", "ws") + "/gateway",
            "application": {"id": str(self.app_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        if shard:
            ready["shard"] = shard
        events = [("READY", ready)] + ([("GUILD_CREATE", self.guild_payload())] if mine else [])
        for event, data in events:
            seq[0] += 1
            await ws.send_str(json.dumps({"op": 0, "t": event, "s": seq[0], "d": data}))

    def guild_payload(self) -> dict[str, Any]:
        everyone = p.role(self.guild_id, "@everyone", p.MEMBER_PERMISSIONS)
        channels = [
            p.text_channel(c, self.guild_id, "general" if i == 0 else f"art-{i}", i)
            for i, c in enumerate(self.channel_ids)
        ]
        roles = [everyone] + [
            p.role(role_id, name, p.MEMBER_PERMISSIONS, i + 1) for i, (name, role_id) in enumerate(self.roles.items())
        ]
        members = [p.member(self.bot_user)] + [
            p.member(u, roles=self.member_roles.get(n)) for n, u in self.users.items()
        ]
        return p.guild(
            self.guild_id,
            "Fake Guild",
            int(self.users["admin"]["id"]),
            channels,
            roles,
            members,
            preferred_locale=self.guild_locale,
        )
