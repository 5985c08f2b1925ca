"""Startup checks: API keys (one cheap authenticated call each), reaching Discord, the invite URL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

import aiohttp
import discord

from bot.providers.base import ProviderAuthError, ProviderError
from bot.providers.live_catalog import ModelCatalogue

log = logging.getLogger(__name__)

KEY_SETTINGS = {"hub": "MOUNTSEA_API_KEY", "gemini": "MOUNTSEA_API_KEY", "mindvideo": "MINDVIDEO_API_KEY"}
SERVICE_NAMES = {"hub": "MountSea", "gemini": "MountSea", "mindvideo": "MindVideo"}
DISCORD_ATTEMPTS = 3
DISCORD_RETRY_BASE_SECONDS = 1.0
DISCORD_TIMEOUT_SECONDS = 10.0
# View Channels, Send Messages, Send Messages in Threads, Embed Links, Attach Files, Read Message History.
INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
)
INVITE_SCOPES = ("bot", "applications.commands")


class ConfigurationError(Exception):
    """A setting that cannot work, found while starting; str() is the one line to print."""


def invite_url(application_id: int) -> str:
    """The URL that adds the bot to a server with exactly the permissions it needs."""
    return discord.utils.oauth_url(application_id, permissions=INVITE_PERMISSIONS, scopes=INVITE_SCOPES)


async def check_api_keys(providers: Mapping[str, object], catalogue: ModelCatalogue) -> str | None:
    """One cheap authenticated call per key. Returns the configuration error line, or None.

    The Hub's key is checked by reading its model list (which also loads the live catalogue); MindVideo's
    by reading a task that does not exist. A network failure is only a warning: the service may be back
    before the first job."""
    checks: list[tuple[str, Callable[[], Awaitable[None]]]] = []
    if "hub" in providers:
        checks.append(("hub", lambda: catalogue.refresh(raise_auth=True)))
    for name, provider in providers.items():
        check = getattr(provider, "check_key", None)
        if name not in ("hub", "gemini") and check is not None:
            checks.append((name, check))
    for name, check in checks:
        try:
            await check()
        except ProviderAuthError as exc:
            return (
                f"Configuration error: {SERVICE_NAMES.get(name, name)} refused {KEY_SETTINGS.get(name, 'the API key')} "
                f"({exc}); check the key"
            )
        except ProviderError as exc:
            log.warning("could not check the %s API key (%s); carrying on", SERVICE_NAMES.get(name, name), exc)
    return None


async def reach_discord(
    *, attempts: int = DISCORD_ATTEMPTS, base_seconds: float = DISCORD_RETRY_BASE_SECONDS
) -> str | None:
    """Check that Discord's API answers at all (any HTTP status will do), retrying network failures with
    backoff. Returns the configuration error line when it stays unreachable, else None."""
    url = f"{discord.http.Route.BASE}/gateway"
    timeout = aiohttp.ClientTimeout(total=DISCORD_TIMEOUT_SECONDS)
    for attempt in range(attempts):
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
                await response.read()
            return None
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            if attempt + 1 >= attempts:
                return (
                    f"Configuration error: cannot reach Discord after {attempts} attempts ({reason}); check the network"
                )
            delay = base_seconds * 2**attempt
            log.warning("cannot reach Discord (%s); retry %d/%d in %.0fs", reason, attempt + 1, attempts - 1, delay)
            await asyncio.sleep(delay)
    return None
