"""The driving API tests use: act as users (commands, messages, clicks, modals) and await what the bot did."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any

from tests.fakes.discord import payloads as p
from tests.fakes.discord.model import Event, FakeInteraction


class DriverMixin:
    """Test-facing half of FakeDiscord (state lives on FakeDiscord)."""

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
        """Send a slash command as `user`, like Discord does after the user presses enter.

        An ATTACHMENT option takes `(filename, bytes)`: it is uploaded to the CDN and resolved, as Discord does.
        """
        parts = name.split()
        command = self.command(parts[0])
        chain, declared = [], command.get("options", [])
        for sub in parts[1:]:  # "quota set user" walks subcommand groups and subcommands
            node = next((o for o in declared if o["name"] == sub and o["type"] in (1, 2)), None)
            if node is None:
                raise KeyError(f"/{name}: no subcommand {sub!r}")
            chain.append(node)
            declared = node.get("options", [])
        types = {o["name"]: o["type"] for o in declared}
        unknown = set(options or {}) - set(types)
        if unknown:
            raise KeyError(f"/{name} has no option(s) {unknown}")
        resolved: dict[str, Any] = {}
        sent_options: list[dict[str, Any]] = []
        for key, given in (options or {}).items():
            value = self._resolve_option(types[key], given, resolved)
            sent_options.append({"name": key, "type": types[key], "value": value})
        for node in reversed(chain):
            sent_options = [{"name": node["name"], "type": node["type"], "options": sent_options}]
        data: dict[str, Any] = {"id": command["id"], "name": parts[0], "type": 1, "options": sent_options}
        if resolved:
            data["resolved"] = resolved
        return await self._send_interaction(2, data, user, channel_id, sent_at, member_permissions)

    def _resolve_option(self, kind: int, given: Any, resolved: dict[str, Any]) -> Any:
        """Options Discord resolves: ATTACHMENT (filename, bytes); USER a user name; CHANNEL an id; ROLE a name."""
        if kind == 11:
            attachment = self.upload(*given)
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            return attachment["id"]
        if kind == 6:
            user = self.users[given]
            resolved.setdefault("users", {})[user["id"]] = user
            member = {k: v for k, v in p.member(user, roles=self.member_roles.get(given)).items() if k != "user"}
            resolved.setdefault("members", {})[user["id"]] = {**member, "permissions": str(p.MEMBER_PERMISSIONS)}
            return user["id"]
        if kind == 7:  # a channel id; Discord resolves it to a partial channel with the member's permissions
            name = "general" if int(given) == self.channel_id else "art"
            channel = {**p.text_channel(int(given), self.guild_id, name), "permissions": str(p.MEMBER_PERMISSIONS)}
            resolved.setdefault("channels", {})[str(given)] = channel
            return str(given)
        if kind == 8:
            role_id = self.roles[given]
            resolved.setdefault("roles", {})[str(role_id)] = p.role(role_id, given, p.MEMBER_PERMISSIONS, 1)
            return str(role_id)
        return given

    async def context_menu(
        self, name: str, message: dict[str, Any], *, user: str = "alice", member_permissions: int = p.MEMBER_PERMISSIONS
    ) -> FakeInteraction:
        """Use a message context-menu command on `message` (Discord sends the full message, no intent needed)."""
        command = self.command(name)
        data = {
            "id": command["id"],
            "name": name,
            "type": 3,
            "target_id": message["id"],
            "resolved": {"messages": {message["id"]: message}},
        }
        return await self._send_interaction(2, data, user, int(message["channel_id"]), None, member_permissions)

    async def click(
        self,
        message: dict[str, Any],
        custom_id: str,
        *,
        user: str = "alice",
        member_permissions: int = p.MEMBER_PERMISSIONS,
    ) -> FakeInteraction:
        """Click the button `custom_id` on `message`."""
        ids = [c.get("custom_id") for row in message.get("components", []) for c in row.get("components", [])]
        if custom_id not in ids:
            raise KeyError(f"message {message['id']} has no button {custom_id!r}; it has {ids}")
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._send_interaction(
            3, data, user, int(message["channel_id"]), None, member_permissions, message=message
        )

    async def submit_modal(
        self,
        opened_by: FakeInteraction,
        values: dict[str, str | tuple[str, bytes]],
        *,
        user: str = "alice",
        member_permissions: int = p.MEMBER_PERMISSIONS,
    ) -> FakeInteraction:
        """Fill in and submit the modal the bot opened: text by custom_id, files as (filename, bytes)."""
        modal = opened_by.modal
        if modal is None:
            raise AssertionError("the bot opened no modal for that interaction")
        resolved: dict[str, Any] = {}

        def answer(field: dict[str, Any]) -> dict[str, Any]:
            given = values.get(field["custom_id"])
            if field["type"] == 19:
                files = [given] if isinstance(given, tuple) else []
                ids = [self._resolve_option(11, f, resolved) for f in files]
                return {"type": 19, "custom_id": field["custom_id"], "values": ids}
            return {"type": 4, "custom_id": field["custom_id"], "value": given if isinstance(given, str) else ""}

        components = []
        for top in modal["components"]:
            if top["type"] == 1:
                components.append({"type": 1, "components": [answer(c) for c in top["components"]]})
            elif top["type"] == 18:
                components.append({"type": 18, "component": answer(top["component"])})
        data: dict[str, Any] = {"custom_id": modal["custom_id"], "components": components}
        if resolved:
            data["resolved"] = resolved
        return await self._send_interaction(5, data, user, opened_by.channel_id, None, member_permissions)

    def modal_fields(self, opened_by: FakeInteraction) -> list[dict[str, Any]]:
        """The input fields of the modal the bot opened (text inputs and file uploads)."""
        assert opened_by.modal is not None
        fields = []
        for top in opened_by.modal["components"]:
            fields += top["components"] if top["type"] == 1 else [top["component"]]
        return fields

    async def delete(self, message: dict[str, Any]) -> None:
        """A member (or moderator) deletes a message."""
        await self._delete(int(message["id"]))

    def upload(self, filename: str, data: bytes) -> dict[str, Any]:
        """Put a user's file on the CDN and return its attachment object."""
        attachment = self._attachments(self.channel_id, [(filename, data)])[0]
        self.uploads[attachment["id"]] = data
        return attachment

    async def send_message(
        self,
        content: str,
        *,
        user: str = "alice",
        channel_id: int | None = None,
        reply_to: dict[str, Any] | None = None,
        files: list[tuple[str, bytes]] | None = None,
        ping_reply: bool = True,
    ) -> dict[str, Any]:
        """Post a message as a member. The bot receives it as Discord would send it (see `_as_seen_by_bot`).

        A reply pings the replied-to author by default, as Discord's client does: that author is then in
        `mentions` although the content has no `<@id>` (`ping_reply=False` is the client's "@ OFF").
        """
        channel_id = channel_id or self.channel_id
        body: dict[str, Any] = {"content": content}
        if reply_to is not None:
            body["message_reference"] = {"message_id": reply_to["id"], "channel_id": reply_to["channel_id"]}
            if not ping_reply:
                body["allowed_mentions"] = {"parse": ["users", "roles", "everyone"], "replied_user": False}
        message = await self._new_message(channel_id, body, files or [], author=self.users[user], dispatch=False)
        if reply_to is not None:
            replied = self.messages[int(reply_to["id"])]
            message["referenced_message"] = None if replied.deleted else replied.data  # null = deleted
        await self._dispatch("MESSAGE_CREATE", self._as_seen_by_bot(message))
        return message

    def _as_seen_by_bot(self, message: dict[str, Any]) -> dict[str, Any]:
        """Without the message-content intent Discord blanks content, embeds, attachments and components,
        except in messages that mention the bot or that the bot wrote (GW "Message Content Intent")."""
        if self.intents & p.MESSAGE_CONTENT_INTENT:
            return message
        seen = dict(message)
        mentioned = any(m["id"] == self.bot_user["id"] for m in message.get("mentions", []))
        if not mentioned and message["author"]["id"] != self.bot_user["id"]:
            seen.update(content="", embeds=[], attachments=[], components=[])
        referenced = message.get("referenced_message")
        if referenced is not None and referenced["author"]["id"] != self.bot_user["id"]:
            # Undocumented whether it survives; the reference says to treat it as stripped.
            seen["referenced_message"] = {
                **referenced,
                "content": "",
                "embeds": [],
                "attachments": [],
                "components": [],
            }
        return seen

    async def _send_interaction(
        self,
        kind: int,
        data: dict[str, Any],
        user: str,
        channel_id: int | None,
        sent_at: float | None,
        member_permissions: int,
        message: dict[str, Any] | None = None,
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
            "member": p.member(self.users[user], roles=self.member_roles.get(user), permissions=member_permissions),
            "app_permissions": str(self.app_permissions.get(channel_id, p.BOT_PERMISSIONS)),
            "locale": self.user_locales.get(user, "en-US"),
            "guild_locale": self.guild_locale,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "data": data,
        }
        if message is not None:
            payload["message"] = message
            interaction.source_message_id = int(message["id"])
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
