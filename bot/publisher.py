"""Posts and edits job messages through channel routes only, so it works after tokens expire or a restart."""

from __future__ import annotations

import datetime
import io
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
import discord

from bot.i18n import DEFAULT_LOCALE, decode, render
from bot.jobs.delivery import DeliveryError, Phase, StatusUpdate
from bot.jobs.models import Job, JobInput
from bot.media import OutputImage
from bot.rendering.buttons import cancel_view, result_view
from bot.rendering.embeds import result_content, result_embed, status_embed, status_footers


def _unregistered(view: discord.ui.View) -> discord.ui.View:
    """Components only. A stopped view is sent but not kept by discord.py's view store (which would otherwise
    hold every result for the life of the process): the registered DynamicItem handles every click."""
    view.stop()
    return view


def _status_view(job: Job, update: StatusUpdate, locale: str) -> discord.ui.View | None:
    """Cancel while the job can still be stopped; no buttons once it has ended."""
    return _unregistered(cancel_view(job, locale)) if update.phase in (Phase.QUEUED, Phase.GENERATING) else None


def _delivery_error(exc: Exception) -> DeliveryError:
    if isinstance(exc, discord.Forbidden | discord.NotFound):
        return DeliveryError(f"Discord refused: {exc}", permanent=True)
    if isinstance(exc, discord.HTTPException) and 400 <= exc.status < 500 and exc.status != 429:
        return DeliveryError(f"Discord refused: {exc}", permanent=True)
    return DeliveryError(f"Discord unavailable: {type(exc).__name__}", permanent=False)


class DiscordPublisher:
    """The runner's `Publisher` for discord.py."""

    def __init__(self, client: discord.Client, locale_of: Callable[[int | None], Awaitable[str]] | None = None) -> None:
        self._client = client
        self._locale_of = locale_of

    async def _locale(self, job: Job) -> str:
        """The language of the job's server (its public messages are for everyone there)."""
        return await self._locale_of(job.guild_id) if self._locale_of is not None else DEFAULT_LOCALE

    def _channel(self, job: Job) -> discord.PartialMessageable:
        return self._client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)

    async def post_status(self, job: Job, update: StatusUpdate, files: Sequence[JobInput] = ()) -> int:
        reference = None
        if job.reply_to_message_id is not None:
            reference = discord.MessageReference(
                message_id=job.reply_to_message_id, channel_id=job.channel_id, fail_if_not_exists=False
            )
        locale = await self._locale(job)
        try:
            message = await self._channel(
                job
            ).send(
                embed=status_embed(job, update, locale),
                view=_status_view(job, update, locale) or discord.utils.MISSING,
                files=[discord.File(io.BytesIO(f.data), filename=f.filename) for f in files if f.data is not None],
                reference=reference,  # type: ignore[arg-type]
                allowed_mentions=discord.AllowedMentions.none(),
                # A repeat within Discord's nonce window returns the first message instead of a second one.
                nonce=f"s{job.idempotency_key[:20]}",
            )
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            raise _delivery_error(exc) from exc
        return message.id

    async def answer(self, job: Job, content: str) -> None:
        if job.answer_token is None or self._client.application_id is None:
            return
        webhook = discord.Webhook.partial(self._client.application_id, job.answer_token, client=self._client)
        words = render(decode(content), await self._locale(job))  # the member's own locale is not stored
        try:
            # "@original" is the interaction's first answer; discord.py types message ids as int only.
            await webhook.edit_message(  # type: ignore[call-overload]
                "@original",
                content=words,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            raise _delivery_error(exc) from exc

    async def find_status(self, job: Job) -> int | None:
        footers = status_footers(job)
        return await self._find_own(
            job,
            discord.Object(discord.utils.time_snowflake(_utc(job.created_at))),
            lambda m: any(e.footer.text in footers for e in m.embeds),
        )

    async def input_urls(self, job: Job) -> list[str]:
        if job.status_message_id is None:
            return []
        try:
            message = await self._channel(job).fetch_message(job.status_message_id)
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            raise _delivery_error(exc) from exc
        return [attachment.url for attachment in message.attachments]

    async def edit_status(self, job: Job, update: StatusUpdate) -> None:
        if job.status_message_id is None:
            return
        locale = await self._locale(job)
        try:
            await (
                self._channel(job)
                .get_partial_message(job.status_message_id)
                .edit(
                    embed=status_embed(job, update, locale),
                    view=_status_view(job, update, locale),
                    allowed_mentions=discord.AllowedMentions.none(),
                )
            )
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            raise _delivery_error(exc) from exc

    async def post_result(self, job: Job, images: list[OutputImage]) -> int:
        files = [discord.File(io.BytesIO(image.data), filename=image.filename) for image in images]
        reference = None
        if job.status_message_id is not None:
            reference = discord.MessageReference(
                message_id=job.status_message_id, channel_id=job.channel_id, fail_if_not_exists=False
            )
        locale = await self._locale(job)
        try:
            message = await self._channel(
                job
            ).send(
                content=result_content(job, locale),
                embed=result_embed(job, compressed=any(i.compressed for i in images), locale=locale),
                files=files,
                view=_unregistered(result_view(job, len(images), locale)),
                reference=reference,  # type: ignore[arg-type]
                # Only the requester is pinged, whatever the prompt says.
                allowed_mentions=discord.AllowedMentions(
                    everyone=False, roles=False, users=[discord.Object(job.user_id)], replied_user=False
                ),
                # Discord drops a second message with the same nonce, guarding against double posts on retry.
                nonce=f"r{job.idempotency_key[:20]}",
            )
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            raise _delivery_error(exc) from exc
        return message.id

    async def find_result(self, job: Job) -> int | None:
        status_id = job.status_message_id
        if status_id is None:
            return None
        return await self._find_own(
            job,
            discord.Object(status_id),
            lambda m: m.reference is not None and m.reference.message_id == status_id,
        )

    async def _find_own(
        self, job: Job, after: discord.abc.Snowflake, matches: Callable[[discord.Message], bool]
    ) -> int | None:
        """The first of the bot's own messages after `after` in the job's channel that `matches`."""
        if self._client.user is None:
            return None
        me = self._client.user.id
        try:
            async for message in self._channel(job).history(after=after, limit=100, oldest_first=True):
                if message.author.id == me and matches(message):
                    return message.id
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            raise _delivery_error(exc) from exc
        return None


def _utc(timestamp: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
