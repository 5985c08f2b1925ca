"""`/models`: the model families, what they take, which services serve them, and their cost here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.guild_gate import guild_config_of
from bot.i18n import msg, t
from bot.i18n.translator import user_locale
from bot.providers.catalog import MODELS, describe_support
from bot.providers.router import PROVIDER_LABELS

if TYPE_CHECKING:
    from bot.client import ImageBot


class Info(commands.Cog):
    """Read-only information for members."""

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot

    @app_commands.command(name="models", description="The image models, what they support and what they cost")
    async def models(self, interaction: discord.Interaction[ImageBot]) -> None:
        locale = user_locale(interaction)
        lines = []
        default_model = (await guild_config_of(interaction)).model_or(self.bot.settings.default_model)
        for family in self.bot.catalogue.offered_families():  # the Hub's live list, else the bundled one
            services = [PROVIDER_LABELS[p] for p in self.bot.router.serving(family)]
            cost = await self.bot.quota.price(self.bot.db, interaction.guild_id, family, {})
            key = "models.line_default" if family == default_model else "models.line"
            lines.append(
                t(
                    locale,
                    key,
                    model=MODELS[family].label,
                    cost=msg("credits.count", count=cost),
                    services=", ".join(services) or msg("models.no_service"),
                    options=describe_support(family),
                )
            )
        text = "\n".join(lines) or t(locale, "models.none")
        await interaction.response.send_message(text, ephemeral=True)


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Info(bot))
