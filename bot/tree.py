"""The command tree: drops bots, and is the one place where command errors become user messages."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.errors import ChannelNotAllowed, UserFacingError
from bot.guild_config import remember_locale
from bot.guild_gate import check_interaction_channel
from bot.i18n import render, t
from bot.i18n.translator import permission_names, user_locale
from bot.rendering import text

if TYPE_CHECKING:
    from bot.client import ImageBot

log = logging.getLogger(__name__)

UNKNOWN_INTERACTION = 10062  # Discord's code for an interaction that can no longer be answered


async def respond(interaction: discord.Interaction[ImageBot], message: str) -> None:
    """Answer privately whatever state the interaction is in; never raises."""
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(
                message, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
        elif interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
            await interaction.edit_original_response(content=message, allowed_mentions=discord.AllowedMentions.none())
        else:
            await interaction.followup.send(message, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())
    except discord.HTTPException:
        log.warning("could not tell user %s: %s", interaction.user.id, message, exc_info=True)


class BotTree(app_commands.CommandTree["ImageBot"]):
    """CommandTree with the bot-wide interaction check and error reporting."""

    async def interaction_check(self, interaction: discord.Interaction[ImageBot]) -> bool:
        if interaction.user.bot:
            await respond(interaction, t(user_locale(interaction), "error.not_for_bots"))
            return False
        if interaction.guild_id is not None and interaction.guild_locale is not None:
            # Kept for the messages the runner posts later without an interaction (status, results).
            await remember_locale(interaction.client.db, interaction.guild_id, str(interaction.guild_locale.value))
        return await self._allowed_channel(interaction)

    # The server's channel allow-list (`/settings channel`). The admin groups work everywhere, so an admin
    # can always change the list; every other command in another channel gets a private answer.
    ALLOW_LIST_EXEMPT = frozenset({"settings", "quota"})

    async def _allowed_channel(self, interaction: discord.Interaction[ImageBot]) -> bool:
        if interaction.type is not discord.InteractionType.application_command:
            return True  # autocomplete cannot be answered with a message
        name = interaction.data.get("name") if interaction.data else None
        if name in self.ALLOW_LIST_EXEMPT:
            return True
        try:
            await check_interaction_channel(interaction)
        except ChannelNotAllowed as exc:
            await respond(interaction, exc.render(user_locale(interaction)))
            return False
        return True

    async def on_error(self, interaction: discord.Interaction[ImageBot], error: app_commands.AppCommandError) -> None:
        await report_error(interaction, error)


async def report_error(interaction: discord.Interaction[ImageBot], error: Exception) -> None:
    """The one place errors from commands, components and modals become what the user reads."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    locale = user_locale(interaction)
    if isinstance(original, UserFacingError):
        await respond(interaction, original.render(locale))
    elif isinstance(original, app_commands.MissingPermissions):
        needed = permission_names(original.missing_permissions)
        await respond(interaction, t(locale, "error.member_missing_permissions", permissions=needed))
    elif isinstance(original, app_commands.CheckFailure):
        await respond(interaction, t(locale, "error.check_failed"))
    elif isinstance(original, app_commands.TransformerError | app_commands.CommandSignatureMismatch):
        await respond(interaction, t(locale, "error.bad_options"))
    elif isinstance(original, discord.NotFound) and original.code == UNKNOWN_INTERACTION:
        # Acknowledged too late (over 3 s, e.g. under overload): Discord already told the member it failed, and
        # the job, if one was recorded, ended refunded. Nothing else can be said through this interaction.
        log.warning("interaction %s of user %s expired before it was acknowledged", interaction.id, interaction.user.id)
    else:
        command = interaction.command.qualified_name if interaction.command else "component"
        log.error("%s failed for user %s", command, interaction.user.id, exc_info=original)
        await respond(interaction, render(text.GENERIC_FAILURE, locale))
