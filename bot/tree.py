"""The command tree: drops bots, and is the one place where command errors become user messages."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.errors import ChannelNotAllowed, UserFacingError
from bot.guild_gate import check_interaction_channel
from bot.rendering import text

if TYPE_CHECKING:
    from bot.client import ImageBot

log = logging.getLogger(__name__)


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
            await respond(interaction, text.NOT_FOR_BOTS)
            return False
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
            await respond(interaction, exc.message)
            return False
        return True

    async def on_error(self, interaction: discord.Interaction[ImageBot], error: app_commands.AppCommandError) -> None:
        await report_error(interaction, error)


async def report_error(interaction: discord.Interaction[ImageBot], error: Exception) -> None:
    """The one place errors from commands, components and modals become what the user reads."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(original, UserFacingError):
        await respond(interaction, original.message)
    elif isinstance(original, app_commands.MissingPermissions):
        needed = ", ".join(p.replace("_", " ").replace("guild", "server").title() for p in original.missing_permissions)
        await respond(interaction, f"You need the {needed} permission to do that.")
    elif isinstance(original, app_commands.CheckFailure):
        await respond(interaction, str(original) or "You can't use this here.")
    elif isinstance(original, app_commands.TransformerError | app_commands.CommandSignatureMismatch):
        await respond(interaction, "Discord sent options this bot doesn't understand. Please try again.")
    else:
        command = interaction.command.qualified_name if interaction.command else "component"
        log.error("%s failed for user %s", command, interaction.user.id, exc_info=original)
        await respond(interaction, text.GENERIC_FAILURE)
