"""Discord-side helpers the cogs share: channel permissions and who is asking."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.errors import MissingPermissions
from bot.i18n import t
from bot.i18n.translator import permission_names, user_locale
from bot.jobs.models import Job
from bot.jobs.service import Ack, Requester
from bot.providers.catalog import ALL_RATIOS, ALL_RESOLUTIONS, QUALITIES

if TYPE_CHECKING:
    from bot.client import ImageBot

RATIO_CHOICES = [app_commands.Choice(name=r, value=r) for r in ALL_RATIOS]
RESOLUTION_CHOICES = [app_commands.Choice(name=r, value=r) for r in ALL_RESOLUTIONS]
QUALITY_CHOICES = [app_commands.Choice(name=q, value=q) for q in QUALITIES]

_NEEDED = ("view_channel", "send_messages", "embed_links", "attach_files", "read_message_history")


def check_channel_permissions(interaction: discord.Interaction[ImageBot]) -> None:
    """Refuse early when the bot could not post the result in this channel."""
    if interaction.guild is None:
        return
    check_permissions(interaction.app_permissions, interaction.channel)


def check_permissions(perms: discord.Permissions, channel: object) -> None:
    """Raise MissingPermissions naming what the bot lacks to post results in `channel`."""
    needed = list(_NEEDED)
    if isinstance(channel, discord.Thread):
        needed[1] = "send_messages_in_threads"
    missing = [name for name in needed if not getattr(perms, name)]
    if missing:
        raise MissingPermissions("error.bot_missing_permissions", permissions=permission_names(missing))


def requester_of(interaction: discord.Interaction[ImageBot]) -> Requester:
    """Who asked and where to answer; the upload limit is the bot's own in this channel, not the user's Nitro."""
    if interaction.channel_id is None:
        raise MissingPermissions("error.unknown_channel")
    guild_limit = interaction.guild.filesize_limit if interaction.guild else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
    return Requester(
        user_id=interaction.user.id,
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        upload_limit=min(guild_limit, interaction.filesize_limit),
        role_ids=tuple(r.id for r in user.roles if not r.is_default())
        if isinstance(user := interaction.user, discord.Member)
        else (),
        answer_token=interaction.token,
    )


def requester_of_message(message: discord.Message) -> Requester:
    """Who asked, for a request made by a message (a reply that mentions the bot)."""
    guild = message.guild
    limit = guild.filesize_limit if guild else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
    author = message.author
    roles = tuple(r.id for r in author.roles if not r.is_default()) if isinstance(author, discord.Member) else ()
    return Requester(
        user_id=author.id,
        guild_id=guild.id if guild else None,
        channel_id=message.channel.id,
        upload_limit=limit,
        role_ids=roles,
    )


def answer_queued(interaction: discord.Interaction[ImageBot]) -> Ack:
    """Acknowledge a job that is queued at once with its final private answer: one call to Discord, where a defer
    and an edit would be two (in a burst, half the calls competing with the acknowledgements)."""
    return lambda job: interaction.response.send_message(
        t(user_locale(interaction), "job.queued", job_id=job.id), ephemeral=True
    )


def defer(interaction: discord.Interaction[ImageBot]) -> Ack:
    """Acknowledge now, answer once the job is ready (an edit reads its images after the acknowledgement)."""
    return lambda _: interaction.response.defer(ephemeral=True, thinking=True)


async def answer_once_deferred(interaction: discord.Interaction[ImageBot], job: Job) -> None:
    """Say which job a request became, unless the acknowledgement already said so (`answer_queued`)."""
    if interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
        await interaction.edit_original_response(content=t(user_locale(interaction), "job.queued", job_id=job.id))
