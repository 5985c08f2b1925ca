"""The fake REST API: application, commands, interaction callbacks, webhooks, channel messages, CDN."""

from __future__ import annotations

import io
import time
import warnings
from typing import Any

from aiohttp import web
from PIL import Image

from tests.fakes.discord import payloads as p
from tests.fakes.discord.model import (
    EPHEMERAL,
    LOADING,
    MAX_FILES,
    REQUEST_LIMIT,
    FakeInteraction,
    Stored,
    error_response,
    json_response,
)


class RestMixin:
    """REST half of FakeDiscord (state lives on FakeDiscord)."""

    async def _me(self, _: web.Request) -> web.Response:
        return json_response(self.bot_user)

    async def _get_commands(self, _: web.Request) -> web.Response:
        return json_response(list(self.commands.values()))

    @staticmethod
    async def _no_content(_: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _app_info(self, _: web.Request) -> web.Response:
        return json_response(
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
                # Discord always returns these, whatever was sent.
                "description": "",
                "default_member_permissions": None,
                "nsfw": False,
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
        return json_response(list(registered.values()))

    # -- interactions -----------------------------------------------------------------------------

    def _token_interaction(self, token: str) -> FakeInteraction | None:
        return self._by_token.get(token)

    async def _callback(self, request: web.Request) -> web.Response:
        interaction = self.interactions.get(int(request.match_info["id"]))
        now = time.time()
        if interaction is None or interaction.token != request.match_info["token"]:
            return error_response(404, 10062, "Unknown interaction")
        if now - p.snowflake_time(interaction.id) > self.ack_deadline:
            await self._record("rejected", {"reason": "late_ack", "interaction": interaction.id})
            return error_response(404, 10062, "Unknown interaction")
        if interaction.acked_at is not None:
            return error_response(400, 40060, "Interaction has already been acknowledged.")
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
        elif kind in (6, 7) and interaction.source_message_id:
            interaction.original_id = interaction.source_message_id
            if kind == 7:
                message = await self._edit(interaction.source_message_id, data, files)
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
        return json_response(result)

    def _live_token(self, request: web.Request) -> FakeInteraction | web.Response:
        interaction = self._token_interaction(request.match_info["token"])
        if interaction is None or time.time() - p.snowflake_time(interaction.id) > self.token_lifetime:
            return error_response(401, 50027, "Invalid Webhook Token")
        return interaction

    async def _followup(self, request: web.Request) -> web.Response:
        interaction = self._live_token(request)
        if isinstance(interaction, web.Response):
            return interaction
        body, files = await self._read(request)
        original = self.messages.get(interaction.original_id or 0)
        if original is not None and original.data["flags"] & LOADING:
            # After a deferred response the first follow-up fills in the "thinking" message.
            return json_response(
                await self._edit(int(original.data["id"]), {**body, "flags": original.data["flags"] & ~LOADING}, files)
            )
        flags = int(body.get("flags") or 0)
        message = await self._new_message(
            interaction.channel_id, body, files, interaction=interaction, ephemeral=bool(flags & EPHEMERAL)
        )
        return json_response(message)

    async def _webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._live_token(request)
        if isinstance(interaction, web.Response):
            return interaction
        raw = request.match_info["message"]
        message_id = interaction.original_id if raw == "@original" else int(raw)
        stored = self.messages.get(message_id or 0)
        if stored is None or stored.deleted:
            return error_response(404, 10008, "Unknown Message")
        if request.method == "GET":
            return json_response(stored.data)
        if request.method == "DELETE":
            await self._delete(int(stored.data["id"]))
            return web.Response(status=204)
        body, files = await self._read(request)
        body.setdefault("flags", stored.data["flags"] & ~LOADING)
        body["flags"] = int(body["flags"]) | (stored.data["flags"] & EPHEMERAL)
        return json_response(await self._edit(int(stored.data["id"]), body, files))

    # -- channel messages -------------------------------------------------------------------------

    def _check_files(self, files: list[tuple[str, bytes]]) -> web.Response | None:
        if len(files) > MAX_FILES:
            return json_response(
                {
                    "code": 50035,
                    "message": "Invalid Form Body",
                    "errors": {"files": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}},
                },
                400,
            )
        if any(len(data) > self.upload_limit for _, data in files) or sum(len(d) for _, d in files) > REQUEST_LIMIT:
            return error_response(413, 40005, "Request entity too large")
        return None

    async def _create_dm(self, request: web.Request) -> web.Response:
        """Open (or reopen) the DM channel with a user."""
        user_id = int((await request.json())["recipient_id"])
        channel_id = next((c for c, u in self.dm_channels.items() if u == user_id), None) or self.ids.next()
        self.dm_channels[channel_id] = user_id
        recipient = self.users_by_id(user_id)
        return json_response({"id": str(channel_id), "type": 1, "recipients": [recipient], "last_message_id": None})

    def dm_messages(self, user: str) -> list[dict[str, Any]]:
        """What the bot sent `user` by DM, oldest first."""
        user_id = int(self.users[user]["id"])
        channels = [c for c, u in self.dm_channels.items() if u == user_id]
        return [m for c in channels for m in self.channel_messages(c)]

    async def _create_message(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel"])
        if not self._can_post(channel_id):
            return error_response(403, 50013, "Missing Permissions")
        recipient = self.dm_channels.get(channel_id)
        if recipient is not None and self.users_by_id(recipient)["username"] in self.closed_dms:
            return error_response(403, 50007, "Cannot send messages to this user")
        body, files = await self._read(request)
        if (refused := self._check_files(files)) is not None:
            await self._record("rejected", {"reason": "files", "channel": channel_id})
            return refused
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            existing = self.nonces.get((channel_id, str(nonce)))
            if existing is not None:
                return json_response(self.messages[existing].data)
        message = await self._new_message(channel_id, body, files, author=self.bot_user)
        if nonce is not None:
            self.nonces[(channel_id, str(nonce))] = int(message["id"])
        return json_response(message)

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
        return json_response([self.messages[m].data for m in reversed(ids)])

    def _visible(self, message_id: int) -> bool:
        stored = self.messages[message_id]
        return not stored.deleted and not stored.ephemeral

    async def _channel_message(self, request: web.Request) -> web.Response:
        message_id = int(request.match_info["message"])
        stored = self.messages.get(message_id)
        if stored is None or not self._visible(message_id):
            return error_response(404, 10008, "Unknown Message")
        if request.method == "GET":
            return json_response(stored.data)
        if request.method == "DELETE":
            await self._delete(message_id)
            return web.Response(status=204)
        if stored.data["author"]["id"] != self.bot_user["id"]:
            return error_response(403, 50005, "Cannot edit a message authored by another user")
        body, files = await self._read(request)
        if (refused := self._check_files(files)) is not None:
            return refused
        return json_response(await self._edit(message_id, body, files))

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["attachment"] in self.uploads:
            return web.Response(body=self.uploads[request.match_info["attachment"]])
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
        dispatch: bool = True,
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
        self._ping_replied_author(data, body)
        self.messages[message_id] = Stored(data, ephemeral, dict(files))
        self.channel_order.setdefault(channel_id, []).append(message_id)
        await self._record("message_create", data)
        if dispatch and not ephemeral:
            await self._dispatch("MESSAGE_CREATE", data)
        return data

    def _ping_replied_author(self, data: dict[str, Any], body: dict[str, Any]) -> None:
        """A reply pings the replied-to author unless `allowed_mentions.replied_user` is false (absent
        allowed_mentions = the default ping, as Discord's own client sends): the author joins `mentions`
        although the content holds no `<@id>`."""
        reference = body.get("message_reference")
        allowed = body.get("allowed_mentions")
        if not reference or (allowed is not None and not allowed.get("replied_user", False)):
            return
        replied = self.messages.get(int(reference["message_id"]))
        if replied is None or replied.deleted:
            return
        author = replied.data["author"]
        if all(m["id"] != author["id"] for m in data["mentions"]):
            data["mentions"].append(dict(author))

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
            attachment: dict[str, Any] = {
                "id": str(attachment_id),
                "filename": filename,
                "size": len(data),
                "url": url,
                "proxy_url": url,
                "content_type": kind,
            }
            attachment.update(_image_size(data))
            out.append(attachment)
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


def _image_size(data: bytes) -> dict[str, int]:
    """Discord gives an image attachment's width and height (read from its header; nothing for other files)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # a header is all it reads
            with Image.open(io.BytesIO(data)) as image:
                return {"width": image.width, "height": image.height}
    except Exception:
        return {}
