"""The bot: wires the core services together, loads the cogs, resumes jobs, syncs commands."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
import discord
import httpx
from discord.ext import commands

from bot.config import Settings
from bot.db import Database
from bot.db.meta import get_meta, set_meta
from bot.guild_config import load
from bot.i18n import DEFAULT_LOCALE, preload
from bot.i18n.translator import CatalogueTranslator
from bot.jobs.messages import RunnerConfig
from bot.jobs.runner import JobRunner
from bot.jobs.service import JobService
from bot.jobs.store import JobStore
from bot.ops.http import Gateway, OpsServer
from bot.ops.metrics import Metrics
from bot.ops.startup import ConfigurationError, invite_url
from bot.providers.base import ImageProvider
from bot.providers.gemini import GeminiProvider
from bot.providers.http import RequestObserver, RetryPolicy
from bot.providers.hub import HubProvider
from bot.providers.live_catalog import ModelCatalogue
from bot.providers.mindvideo import MindVideoProvider
from bot.providers.router import Router
from bot.providers.transport import make_client
from bot.publisher import DiscordPublisher
from bot.quota.service import QuotaConfig, QuotaService
from bot.tree import BotTree

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.imagine", "cogs.edit", "cogs.quota", "cogs.results", "cogs.settings", "cogs.info")
COMMANDS_HASH_KEY = "global_commands_hash"
DISCORD_CONNECTIONS = 64  # discord.py's HTTP pool (see make_bot)


def runner_config(settings: Settings) -> RunnerConfig:
    return RunnerConfig(
        deadline_seconds=settings.job_deadline_seconds,
        max_active=settings.max_active_jobs,
        poll_min_interval=settings.poll_min_interval_seconds,
        poll_max_interval=settings.poll_max_interval_seconds,
        status_edit_min_interval=settings.status_edit_min_interval_seconds,
        max_running_per_user=settings.max_running_jobs_per_user,
        lease_seconds=settings.job_lease_seconds,
        sweep_interval=settings.job_lease_seconds / 3,
    )


def build_providers(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None, metrics: Metrics | None = None
) -> tuple[dict[str, ImageProvider], list[httpx.AsyncClient]]:
    """One HTTP client per configured provider; a provider without a key is simply not offered."""
    policy = RetryPolicy(
        max_retries=settings.provider_max_retries,
        base_seconds=settings.provider_retry_base_seconds,
        allow_private_urls=settings.result_urls_allow_private,
    )
    timeout = settings.http_timeout_seconds
    observe: RequestObserver | None = None if metrics is None else metrics.provider_request
    providers: dict[str, ImageProvider] = {}
    clients: list[httpx.AsyncClient] = []
    if settings.mountsea_api_key is not None:
        hub_http = make_client(settings.mountsea_base_url, timeout, transport)
        gemini_http = make_client(settings.mountsea_base_url, timeout, transport)
        providers["hub"] = HubProvider(hub_http, settings.mountsea_api_key, policy, observe, settings.max_active_jobs)
        providers["gemini"] = GeminiProvider(
            gemini_http, settings.mountsea_api_key, policy, observe, settings.max_active_jobs
        )
        clients += [hub_http, gemini_http]
    if settings.mindvideo_api_key is not None:
        mindvideo_http = make_client(settings.mindvideo_base_url, timeout, transport)
        providers["mindvideo"] = MindVideoProvider(
            mindvideo_http, settings.mindvideo_api_key, policy, observe, settings.max_active_jobs
        )
        clients.append(mindvideo_http)
    return providers, clients


def build_catalogue(settings: Settings, providers: Mapping[str, ImageProvider]) -> ModelCatalogue:
    """The live model list comes from the Hub; without a Hub key the bundled catalogue applies."""
    hub = providers.get("hub")
    return ModelCatalogue(hub if isinstance(hub, HubProvider) else None, settings.model_refresh_seconds)


def quota_config(settings: Settings) -> QuotaConfig:
    return QuotaConfig(
        default_limit=settings.default_limit(),
        weights=settings.quota_costs,
        allow_dms=settings.quota_allow_dms,
        max_running_per_user=settings.max_running_jobs_per_user,
        max_waiting_per_user=settings.max_waiting_jobs_per_user,
    )


def make_bot(settings: Settings, db: Database, providers: Mapping[str, ImageProvider], **options: Any) -> ImageBot:
    """The bot for these settings: one gateway connection, or the shards SHARD_IDS of SHARD_COUNT."""
    # discord.py's default pool has no limit, so a burst of acknowledgements opened a connection (a TLS handshake,
    # against Discord) for each; a bounded pool reuses warm ones and queues the rest, which is faster. The limit is
    # shared with each shard's gateway connection (one each).
    options.setdefault("connector", aiohttp.TCPConnector(limit=DISCORD_CONNECTIONS))
    if settings.shard_count is None:
        return ImageBot(settings, db, providers, **options)
    ids = settings.shard_ids if settings.shard_ids is not None else list(range(settings.shard_count))
    return ShardedImageBot(settings, db, providers, shard_count=settings.shard_count, shard_ids=ids, **options)


class ImageBot(commands.Bot):
    """commands.Bot with the job services attached. Everything it uses is built outside and passed in."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        providers: Mapping[str, ImageProvider],
        *,
        force_sync: bool = False,
        metrics: Metrics | None = None,
        catalogue: ModelCatalogue | None = None,
        **options: object,
    ) -> None:
        intents = discord.Intents.default()
        # Privileged and off by default: commands and mentions carry their content. With it on, replies that
        # mention the bot can also edit images in other members' messages.
        intents.message_content = settings.message_content_intent
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=BotTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            **options,  # type: ignore[arg-type]
        )
        self.settings = settings
        self.db = db
        self.providers = providers
        self.force_sync = force_sync
        self.metrics = metrics or Metrics()
        self.catalogue = catalogue or build_catalogue(settings, providers)
        self.store = JobStore(db)
        self.quota = QuotaService(db, quota_config(settings))
        self.runner = JobRunner(
            self.store,
            providers,
            DiscordPublisher(self, locale_of=self.server_locale),
            self.quota,
            runner_config(settings),
            metrics=self.metrics,
        )
        self.router = Router(providers, settings.provider_order, self.catalogue)
        self.ops = OpsServer(
            db, self.metrics, Gateway(connected=self.gateway_connected, guilds=lambda: len(self.guilds))
        )
        self._announced = False
        self.jobs = JobService(db, self.store, self.runner, self.quota, self.router)

    async def server_locale(self, guild_id: int | None) -> str:
        """The language of a server's public messages (`/settings language`, else its Discord language)."""
        return (await load(self.db, guild_id)).locale if guild_id is not None else DEFAULT_LOCALE

    async def on_message(self, message: discord.Message, /) -> None:
        """No text commands: a message that starts with a mention is an edit request (cogs/edit.py), not a command."""

    def gateway_connected(self) -> bool:
        """True while the gateway connection (every shard this process runs) is up and READY has been received."""
        if isinstance(self, commands.AutoShardedBot):
            shards = self.shards.values()
            return self.is_ready() and not self.is_closed() and bool(shards) and not any(s.is_closed() for s in shards)
        return self.is_ready() and not self.is_closed() and self.ws is not None and self.ws.open

    async def setup_hook(self) -> None:
        if self.settings.http_port is not None:
            try:
                await self.ops.start(self.settings.http_host, self.settings.http_port)
            except OSError as exc:
                where = f"{self.settings.http_host}:{self.settings.http_port}"
                raise ConfigurationError(f"Configuration error: HTTP_PORT cannot listen on {where} ({exc})") from None
        if not self.catalogue.refreshed:
            await self.catalogue.refresh()
        self.catalogue.start()
        preload()
        await self.tree.set_translator(CatalogueTranslator())  # before the sync, which asks it
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands()
        await self.runner.start()

    async def on_ready(self) -> None:
        """Once per process: who we are, where, and the link that adds the bot to another server."""
        if self._announced or self.user is None:
            return
        self._announced = True
        log.info("logged in as %s (%d), in %d servers", self.user, self.user.id, len(self.guilds))
        if self.application_id is not None:
            log.info("invite: %s", invite_url(self.application_id))

    async def sync_commands(self) -> None:
        """Dev guild: sync on every start (instant). Global: only when the commands changed, or when forced.
        With several processes only one syncs (SYNC_COMMANDS, by default the one running shard 0)."""
        if not self.settings.syncs_commands and not self.force_sync:
            log.info("not syncing commands: another process does (SYNC_COMMANDS)")
            return
        if self.settings.dev_guild_id:
            guild = discord.Object(self.settings.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d command(s) to dev guild %d", len(synced), self.settings.dev_guild_id)
            return
        translator = self.tree.translator
        commands = self.tree.get_commands()
        # The translated payload, so that a changed translation is synced too.
        payload = json.dumps(
            [
                await c.get_translated_payload(self.tree, translator) if translator else c.to_dict(self.tree)
                for c in commands
            ],
            sort_keys=True,
        )
        digest = hashlib.sha256(payload.encode()).hexdigest()
        if self.force_sync or digest != await get_meta(self.db, COMMANDS_HASH_KEY):
            synced = await self.tree.sync()
            await set_meta(self.db, COMMANDS_HASH_KEY, digest)
            log.info("synced %d global command(s); Discord may take a while to show changes", len(synced))

    async def close(self) -> None:
        await self.catalogue.close()
        await self.runner.close()
        await self.ops.close()
        await super().close()


class ShardedImageBot(ImageBot, commands.AutoShardedBot):
    """ImageBot over several gateway shards in this process (discord.py's AutoShardedBot with shard_ids)."""
