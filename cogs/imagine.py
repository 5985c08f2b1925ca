"""`/imagine`: text to image."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.guild_gate import guild_config_of
from bot.providers.catalog import (
    MAX_COUNT,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MODELS,
    TEXT_TO_IMAGE_MODELS,
    ImageOptions,
    build_input,
)
from cogs.common import (
    QUALITY_CHOICES,
    RATIO_CHOICES,
    RESOLUTION_CHOICES,
    answer_queued,
    check_channel_permissions,
    requester_of,
)

if TYPE_CHECKING:
    from bot.client import ImageBot


class Imagine(commands.Cog):
    """Text-to-image generation."""

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine", description="Generate an image from a text prompt")
    @app_commands.describe(
        prompt="What to draw",
        model="Which model (default set by the server admins or the bot owner)",
        aspect_ratio="Shape of the image, e.g. 16:9",
        resolution="Output resolution (Nano Banana 2 / Pro, GPT Image 2)",
        count=f"How many images (1-{MAX_COUNT})",
        seed="Seed, to reproduce a result (Nano Banana models)",
        quality="Rendering quality (GPT Image 2)",
    )
    @app_commands.choices(
        model=[app_commands.Choice(name=MODELS[m].label, value=m) for m in TEXT_TO_IMAGE_MODELS],
        aspect_ratio=RATIO_CHOICES,
        resolution=RESOLUTION_CHOICES,
        quality=QUALITY_CHOICES,
    )
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
    async def imagine(
        self,
        interaction: discord.Interaction[ImageBot],
        prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
        model: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        count: app_commands.Range[int, 1, MAX_COUNT] | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        quality: str | None = None,
    ) -> None:
        # Server settings (/settings): default model, safety level, blocklist (the channel is checked by the tree).
        config = await guild_config_of(interaction)
        model = model or config.model_or(self.bot.settings.default_model)
        options = ImageOptions(
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            count=count,
            seed=seed,
            quality=quality,
            safety_tolerance=config.safety_level,
        )
        # Pure checks first (microseconds): a refusal is then the acknowledgement itself, and private.
        build_input(model, prompt, options)
        config.check_text(prompt)
        check_channel_permissions(interaction)
        requester = requester_of(interaction)
        # The job row (and its charge) is written first, so nothing acknowledged is ever forgotten.
        await self.bot.jobs.create_generate(requester, model, prompt, options, ack=answer_queued(interaction))


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Imagine(bot))
