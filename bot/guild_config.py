"""Per-server settings (`/settings`): read them as one value, change them with an audit row each.

Stored in the `guild_settings` key/value table; lists as JSON. Every change writes a row to the
`quota_audit` table (who, what, old -> new, when) in the same transaction, so `/quota show` and
`/settings show` list it with the quota changes. Discord-free.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.db.database import Database, Transaction
from bot.db.guild_settings import BUTTONS_FOR_EVERYONE, get_all, get_value, set_value
from bot.errors import BlockedPrompt, ChannelNotAllowed, InvalidRequest
from bot.i18n import LANGUAGES, Msg, msg, normalize
from bot.moderation import channel_allowed, clean_term, first_blocked, with_term, without_term
from bot.providers.catalog import DEFAULT_SAFETY_TOLERANCE, MODELS, TEXT_TO_IMAGE_MODELS
from bot.quota.service import AuditEntry

log = logging.getLogger(__name__)
T = TypeVar("T")

ALLOWED_CHANNELS = "allowed_channels"
DEFAULT_MODEL = "default_model"
SAFETY_TOLERANCE = "safety_tolerance"
BLOCKLIST = "blocklist"
SAFETY_LEVELS = (1, 2, 3, 4, 5, 6)
MAX_CHANNELS_NAMED = 20

_AUDIT = """
INSERT INTO quota_audit (guild_id, actor_id, action, target, old_value, new_value, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
_CLEAR = "DELETE FROM guild_settings WHERE guild_id = ? AND key = ?"
_RECENT = """
SELECT actor_id, action, target, old_value, new_value, created_at FROM quota_audit
WHERE guild_id = ? AND action LIKE 'settings %' ORDER BY id DESC LIMIT ?
"""

LANGUAGE = "language"  # `/settings language`: a supported locale code; unset: the server's Discord language
GUILD_LOCALE = "guild_locale"  # the server's preferred locale as Discord last sent it


@dataclass(frozen=True)
class GuildConfig:
    """One server's settings as they apply now. DMs and unset servers get the defaults."""

    allowed_channels: tuple[int, ...] = ()
    default_model: str | None = None
    safety_level: str | None = None
    blocklist: tuple[str, ...] = ()
    buttons_for_everyone: bool = False
    language: str | None = None
    seen_locale: str | None = None

    def check_channel(self, channel_id: int | None, parent_id: int | None = None) -> None:
        """Raise ChannelNotAllowed naming the allowed channels when the bot is not used here."""
        if not channel_allowed(self.allowed_channels, channel_id, parent_id):
            raise ChannelNotAllowed(not_allowed_text(self.allowed_channels))

    def check_text(self, *texts: str) -> None:
        """Raise BlockedPrompt (which never repeats the term) when any text holds a blocked term."""
        for value in texts:
            if first_blocked(value, self.blocklist) is not None:
                raise BlockedPrompt("blocked.prompt")

    def model_or(self, fallback: str) -> str:
        """The server's default text-to-image model, else `fallback` (the DEFAULT_MODEL setting)."""
        return self.default_model or fallback

    @property
    def locale(self) -> str:
        """The language of this server's public messages: `/settings language`, else Discord's, else English."""
        return normalize(self.language or self.seen_locale)

    @property
    def safety(self) -> str:
        """The `safety_tolerance` every model that takes it gets here ("1" strictest .. "6")."""
        return self.safety_level or DEFAULT_SAFETY_TOLERANCE


def not_allowed_text(allowed: tuple[int, ...]) -> Msg:
    named = " ".join(f"<#{c}>" for c in allowed[:MAX_CHANNELS_NAMED])
    if len(allowed) > MAX_CHANNELS_NAMED:
        return msg("channel.not_allowed_more", channels=named, count=len(allowed) - MAX_CHANNELS_NAMED)
    return msg("channel.not_allowed", channels=named)


def parse(values: dict[str, str]) -> GuildConfig:
    """Stored text values -> GuildConfig. A malformed or outdated value is ignored (and logged), never fatal."""
    model = values.get(DEFAULT_MODEL)
    if model is not None and model not in TEXT_TO_IMAGE_MODELS:
        log.warning("ignoring stored default model %r: not offered any more", model)
        model = None
    safety = values.get(SAFETY_TOLERANCE)
    if safety is not None and safety not in {str(level) for level in SAFETY_LEVELS}:
        log.warning("ignoring stored safety level %r", safety)
        safety = None
    return GuildConfig(
        allowed_channels=tuple(_json_list(values.get(ALLOWED_CHANNELS), int)),
        default_model=model,
        safety_level=safety,
        blocklist=tuple(_json_list(values.get(BLOCKLIST), str)),
        buttons_for_everyone=values.get(BUTTONS_FOR_EVERYONE) == "1",
        language=values.get(LANGUAGE) if values.get(LANGUAGE) in LANGUAGES else None,
        seen_locale=values.get(GUILD_LOCALE),
    )


def _json_list(raw: str | None, kind: type[T]) -> list[T]:
    if raw is None:
        return []
    try:
        items = json.loads(raw)
    except ValueError:
        log.warning("ignoring malformed stored setting %r", raw[:100])
        return []
    return [item for item in items if isinstance(item, kind)] if isinstance(items, list) else []


class _Cache:
    """Recently read settings per server, so a command does not wait for the database before its acknowledgement
    (under load, behind the job runner's writes). Changes made through GuildSettings drop the entry at once; a
    change by another process (not a setup this bot has today) shows within CACHE_SECONDS.
    """

    def __init__(self) -> None:
        self.entries: dict[int, tuple[float, GuildConfig]] = {}
        self.reading: dict[int, asyncio.Task[GuildConfig]] = {}  # one query for a burst of commands
        self.generation = 0  # bumped by every change, so a read that raced a change is not kept
        self.locale_written: dict[int, tuple[float, str]] = {}  # per server: when this process wrote which locale


CACHE_SECONDS = 5.0
_caches: weakref.WeakKeyDictionary[Database, _Cache] = weakref.WeakKeyDictionary()


async def load(db: Database, guild_id: int | None, *, max_age: float = CACHE_SECONDS) -> GuildConfig:
    """The settings of a server (one query, or none when read less than `max_age` seconds ago); defaults in DMs."""
    if guild_id is None:
        return GuildConfig()
    cache = _caches.setdefault(db, _Cache())
    hit = cache.entries.get(guild_id)
    now = time.monotonic()
    if hit is not None and now - hit[0] < max_age:
        return hit[1]
    task = cache.reading.get(guild_id)
    if task is None:
        task = asyncio.create_task(_read(db, cache, guild_id, now), name=f"guild-settings-{guild_id}")
        cache.reading[guild_id] = task
    return await asyncio.shield(task)  # one caller giving up does not cancel the others' read


async def _read(db: Database, cache: _Cache, guild_id: int, now: float) -> GuildConfig:
    generation = cache.generation
    try:
        config = parse(await get_all(db, guild_id))
    finally:
        if cache.reading.get(guild_id) is asyncio.current_task():
            del cache.reading[guild_id]
    if cache.generation == generation:
        cache.entries[guild_id] = (now, config)
    return config


def forget(db: Database, guild_id: int) -> None:
    """Drop a server's cached settings (after a change)."""
    cache = _caches.setdefault(db, _Cache())
    cache.generation += 1
    cache.entries.pop(guild_id, None)
    cache.reading.pop(guild_id, None)


@dataclass(frozen=True)
class SettingsChange:
    """What a change did, for the admin's answer."""

    changed: bool
    config: GuildConfig


class GuildSettings:
    """Changes to one server's settings; each is one transaction with its audit row."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    async def set_channel(self, guild_id: int, actor_id: int, channel_id: int, allowed: bool) -> SettingsChange:
        async with self._db.transaction() as tx:
            current = _json_list(await get_value(tx, guild_id, ALLOWED_CHANNELS), int)
            updated = sorted({*current, channel_id}) if allowed else [c for c in current if c != channel_id]
            changed = updated != sorted(current)
            if changed:
                await set_value(tx, guild_id, ALLOWED_CHANNELS, json.dumps(updated))
                old, new = ("not allowed", "allowed") if allowed else ("allowed", "not allowed")
                await self._audit(tx, guild_id, actor_id, "settings channel", f"channel:{channel_id}", old, new)
        return await self._changed(guild_id, changed)

    async def set_default_model(self, guild_id: int, actor_id: int, model: str) -> SettingsChange:
        if model not in TEXT_TO_IMAGE_MODELS:
            raise InvalidRequest("request.unknown_model", model=model, models=", ".join(TEXT_TO_IMAGE_MODELS))
        return await self._set_text(guild_id, actor_id, DEFAULT_MODEL, model, "settings model", "default model")

    async def set_safety(self, guild_id: int, actor_id: int, level: int) -> SettingsChange:
        if level not in SAFETY_LEVELS:
            raise InvalidRequest("settings.safety_range")
        return await self._set_text(guild_id, actor_id, SAFETY_TOLERANCE, str(level), "settings safety", "level")

    async def set_buttons(self, guild_id: int, actor_id: int, everyone: bool) -> SettingsChange:
        value = "1" if everyone else "0"
        return await self._set_text(guild_id, actor_id, BUTTONS_FOR_EVERYONE, value, "settings buttons", "everyone")

    async def set_language(self, guild_id: int, actor_id: int, language: str | None) -> SettingsChange:
        """Public messages in `language` (a supported locale code), or None: follow the server's Discord language."""
        if language is None:
            async with self._db.transaction() as tx:
                old = await get_value(tx, guild_id, LANGUAGE)
                if old is not None:
                    await tx.execute(_CLEAR, (guild_id, LANGUAGE))
                    await self._audit(tx, guild_id, actor_id, "settings language", "language", old, None)
            return await self._changed(guild_id, old is not None)
        if language not in LANGUAGES:
            raise InvalidRequest("settings.unknown_language", language=language)
        return await self._set_text(guild_id, actor_id, LANGUAGE, language, "settings language", "language")

    async def add_term(self, guild_id: int, actor_id: int, term: str) -> SettingsChange:
        return await self._change_terms(guild_id, actor_id, term, add=True)

    async def remove_term(self, guild_id: int, actor_id: int, term: str) -> SettingsChange:
        return await self._change_terms(guild_id, actor_id, term, add=False)

    async def _changed(self, guild_id: int, changed: bool) -> SettingsChange:
        forget(self._db, guild_id)
        return SettingsChange(changed, await load(self._db, guild_id))

    async def recent_changes(self, guild_id: int, limit: int = 5) -> list[AuditEntry]:
        rows = await self._db.fetchall(_RECENT, (guild_id, limit))
        return [AuditEntry(int(r[0]), str(r[1]), str(r[2]), r[3], r[4], float(r[5])) for r in rows]

    async def _change_terms(self, guild_id: int, actor_id: int, term: str, *, add: bool) -> SettingsChange:
        cleaned = clean_term(term)  # TermError is an InvalidRequest
        async with self._db.transaction() as tx:
            current = _json_list(await get_value(tx, guild_id, BLOCKLIST), str)
            updated, changed = with_term(current, cleaned) if add else without_term(current, cleaned)
            if changed:
                await set_value(tx, guild_id, BLOCKLIST, json.dumps(updated, ensure_ascii=False))
                old, new = (None, cleaned) if add else (cleaned, None)
                action = "settings blocklist add" if add else "settings blocklist remove"
                await self._audit(tx, guild_id, actor_id, action, "term", old, new)
        return await self._changed(guild_id, changed)

    async def _set_text(
        self, guild_id: int, actor_id: int, key: str, value: str, action: str, target: str
    ) -> SettingsChange:
        async with self._db.transaction() as tx:
            old = await get_value(tx, guild_id, key)
            changed = old != value
            if changed:
                await set_value(tx, guild_id, key, value)
                await self._audit(tx, guild_id, actor_id, action, target, old, value)
        return await self._changed(guild_id, changed)

    async def _audit(
        self, tx: Transaction, guild_id: int, actor_id: int, action: str, target: str, old: str | None, new: str | None
    ) -> None:
        await tx.insert(_AUDIT, (guild_id, actor_id, action, target, old, new, self._clock()))
        log.info("guild %d: %s %s by user %d", guild_id, action, target, actor_id)


def model_label(model: str) -> str:
    spec = MODELS.get(model)
    return spec.label if spec else model


async def remember_locale(db: Database, guild_id: int, locale: str) -> None:
    """Keep the server's preferred locale as Discord sent it, for messages posted without an interaction (status
    and results). Written only when it changed, and once for a burst of commands that all bring the new one."""
    cache = _caches.setdefault(db, _Cache())
    if (await load(db, guild_id)).seen_locale == locale:
        return
    # The rest of a burst read the settings before the first wrote: it is written (or being written) already.
    written = cache.locale_written.get(guild_id)
    if written is not None and written[1] == locale and time.monotonic() - written[0] < CACHE_SECONDS:
        return
    cache.locale_written[guild_id] = (time.monotonic(), locale)
    try:
        async with db.transaction() as tx:
            await set_value(tx, guild_id, GUILD_LOCALE, locale)
    except BaseException:
        cache.locale_written.pop(guild_id, None)
        raise
    forget(db, guild_id)
