"""Snowflakes and the JSON objects Discord sends (shapes from discord-platform.md §7 and the API docs)."""

from __future__ import annotations

import itertools
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000
ALL_PERMISSIONS = (1 << 50) - 1
# view_channel, send_messages, embed_links, attach_files, read_message_history, use_application_commands
BOT_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 31) | (1 << 6) | (1 << 38)
MEMBER_PERMISSIONS = BOT_PERMISSIONS
MESSAGE_CONTENT_INTENT = 1 << 15
MANAGE_GUILD = 1 << 5
MANAGE_MESSAGES = 1 << 13


class Snowflakes:
    """Time-correct snowflakes, as Discord mints them."""

    def __init__(self) -> None:
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def next(self, at: float | None = None) -> int:
        ms = int((time.time() if at is None else at) * 1000)
        with self._lock:
            increment = next(self._counter) & 0xFFF
        return ((ms - DISCORD_EPOCH_MS) << 22) | (1 << 17) | increment


def snowflake_time(snowflake: int) -> float:
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000


def iso(at: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if at is None else at, UTC).isoformat()


def user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "global_name": name,
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
        "flags": 0,
    }


def member(user_obj: dict[str, Any], roles: list[int] | None = None, permissions: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "user": user_obj,
        "roles": [str(r) for r in roles or []],
        "joined_at": iso(0),
        "flags": 0,
        "deaf": False,
        "mute": False,
        "nick": None,
        "avatar": None,
        "pending": False,
        "premium_since": None,
    }
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def text_channel(channel_id: int, guild_id: int, name: str, position: int = 0) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(guild_id),
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
    }


def role(role_id: int, name: str, permissions: int, position: int = 0) -> dict[str, Any]:
    return {
        "id": str(role_id),
        "name": name,
        "permissions": str(permissions),
        "position": position,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "managed": False,
        "mentionable": False,
        "flags": 0,
        "icon": None,
        "unicode_emoji": None,
    }


def guild(
    guild_id: int,
    name: str,
    owner_id: int,
    channels: list[dict[str, Any]],
    roles: list[dict[str, Any]],
    members: list[dict[str, Any]],
    premium_tier: int = 0,
    preferred_locale: str = "en-US",
) -> dict[str, Any]:
    return {
        "id": str(guild_id),
        "name": name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "owner_id": str(owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": roles,
        "emojis": [],
        "features": [],
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "vanity_url_code": None,
        "description": None,
        "banner": None,
        "premium_tier": premium_tier,
        "premium_subscription_count": 0,
        "preferred_locale": preferred_locale,
        "public_updates_channel_id": None,
        "nsfw_level": 0,
        "stickers": [],
        "premium_progress_bar_enabled": False,
        "joined_at": iso(0),
        "large": False,
        "unavailable": False,
        "member_count": len(members),
        "voice_states": [],
        "members": members,
        "channels": channels,
        "threads": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


def resolve_mentions(content: str, allowed: dict[str, Any] | None, author_is_bot: bool) -> dict[str, Any]:
    """Who a message really pings, following Discord's allowed_mentions rules (absent = parse everything)."""
    parse = set(allowed.get("parse", [])) if allowed is not None else {"users", "roles", "everyone"}
    allowed_users = {str(u) for u in allowed.get("users", [])} if allowed is not None else set()
    users = [u for u in _USER_MENTION.findall(content) if "users" in parse or u in allowed_users]
    everyone = ("@everyone" in content or "@here" in content) and "everyone" in parse
    roles = _ROLE_MENTION.findall(content) if "roles" in parse else []
    return {"mention_everyone": everyone, "mention_user_ids": users, "mention_roles": roles}


def message(
    message_id: int,
    channel_id: int,
    guild_id: int | None,
    author: dict[str, Any],
    body: dict[str, Any],
    attachments: list[dict[str, Any]],
    *,
    webhook_id: int | None = None,
    interaction_user: dict[str, Any] | None = None,
) -> dict[str, Any]:
    reference = body.get("message_reference")
    data: dict[str, Any] = {
        "id": str(message_id),
        "type": 19 if reference else 0,
        "channel_id": str(channel_id),
        "author": author,
        "content": body.get("content") or "",
        "timestamp": iso(snowflake_time(message_id)),
        "edited_timestamp": None,
        "tts": bool(body.get("tts")),
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": attachments,
        "embeds": body.get("embeds") or [],
        "pinned": False,
        "flags": int(body.get("flags") or 0),
        "components": body.get("components") or [],
    }
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
    if reference:
        data["message_reference"] = {
            "type": 0,
            "message_id": str(reference["message_id"]),
            "channel_id": str(reference.get("channel_id") or channel_id),
        }
        if guild_id is not None:
            data["message_reference"]["guild_id"] = str(guild_id)
    pinged = resolve_mentions(data["content"], body.get("allowed_mentions"), author.get("bot", False))
    data["mention_everyone"] = pinged["mention_everyone"]
    data["mention_roles"] = pinged["mention_roles"]
    data["mentions"] = [
        {"id": uid, "username": uid, "discriminator": "0", "avatar": None} for uid in pinged["mention_user_ids"]
    ]
    if body.get("nonce") is not None:
        data["nonce"] = body["nonce"]
    if webhook_id is not None:
        data["webhook_id"] = str(webhook_id)
    if interaction_user is not None:
        data["interaction_metadata"] = {
            "id": str(message_id),
            "type": 2,
            "user": interaction_user,
            "authorizing_integration_owners": {},
        }
    return data
