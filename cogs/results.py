"""Buttons on results and status messages (reroll, vary, edit, upscale, info, delete, cancel), and `/settings`.

One DynamicItem matches every button's custom_id (`img:<action>:<job>[:<image>]`), so buttons work on
results of any age and after restarts; everything else is read from the job row.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.db.guild_settings import BUTTONS_FOR_EVERYONE, get_flag, set_flag
from bot.errors import InvalidRequest
from bot.jobs.models import Job, JobState
from bot.media import InputImage
from bot.providers.aspect import keep_source_ratio
from bot.providers.catalog import ImageOptions, edit_model_for
from bot.providers.router import PROVIDER_LABELS
from bot.rendering import text
from bot.rendering.buttons import TEMPLATE, upscale_target
from bot.rendering.embeds import model_label, options_summary, seed_text, waited_seconds
from bot.tree import report_error, respond
from cogs.common import requester_of
from cogs.edit import Edit, EditModal, read_image, read_images

if TYPE_CHECKING:
    from bot.client import ImageBot

log = logging.getLogger(__name__)

# Actions only the requester or a member who can manage messages may take, whatever the server setting.
MODERATED = {
    "del": "Only the person who asked for this image, or a moderator, can delete it.",
    "x": "Only the person who started this job, or a moderator, can cancel it.",
}
VARY_PROMPT = "Create a close variation of this image, keeping its subject, style and composition. Original idea: {}"
UPSCALE_PROMPT = (
    "Upscale this image to a higher resolution. Keep the content, composition and colours exactly the same."
)


class ResultButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    """Any button on a result or status message; the job id and image index come from the custom_id."""

    def __init__(self, action: str, job_id: int, index: int | None, item: discord.ui.Button[Any]) -> None:
        super().__init__(item)
        self.action, self.job_id, self.index = action, job_id, index

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: discord.Interaction[ImageBot], item: discord.ui.Button[Any], match: re.Match[str]
    ) -> ResultButton:
        index = match["index"]
        return cls(match["action"], int(match["job"]), int(index) if index is not None else None, item)

    async def interaction_check(self, interaction: discord.Interaction[ImageBot]) -> bool:  # type: ignore[override]
        """Refusals are answered privately, never a silent 'interaction failed'."""
        try:
            job = await interaction.client.store.get(self.job_id)
        except LookupError:
            await respond(interaction, "This result is no longer available.")
            return False
        if interaction.user.id == job.user_id or self.action == "info":
            return True
        if self.action in MODERATED:  # never opened up by `/settings buttons everyone:True`
            if interaction.permissions.manage_messages:
                return True
            await respond(interaction, MODERATED[self.action])
            return False
        if await get_flag(interaction.client.db, interaction.guild_id, BUTTONS_FOR_EVERYONE):
            return True
        await respond(interaction, f"Only <@{job.user_id}> can use these buttons on their image.")
        return False

    async def callback(self, interaction: discord.Interaction[ImageBot]) -> None:  # type: ignore[override]
        try:
            job = await interaction.client.store.get(self.job_id)
            await ACTIONS[self.action](interaction, job, self.index)
        except Exception as exc:  # the library only logs errors from items; the user must hear about them
            await report_error(interaction, exc)


def selected_image(interaction: discord.Interaction[ImageBot], index: int | None) -> discord.Attachment:
    attachments = interaction.message.attachments if interaction.message else []
    position = index or 0
    if position >= len(attachments):
        raise InvalidRequest("That image is no longer on this message.")
    return attachments[position]


async def start(interaction: discord.Interaction[ImageBot], create: Callable[[], Awaitable[Job]]) -> None:
    """Acknowledge the click at once (privately), then create the job and say which one it is."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    job = await create()
    await interaction.edit_original_response(content=text.QUEUED_CONFIRMATION.format(job_id=job.id))


def reply_target(interaction: discord.Interaction[ImageBot]) -> int | None:
    return interaction.message.id if interaction.message else None


async def original_inputs(bot: ImageBot, job: Job) -> tuple[list[InputImage], InputImage | None]:
    """An edit's input images, read back from its status message (the bot's own, so always readable)."""
    if job.status_message_id is None:
        raise InvalidRequest("The images this edit started from are gone, so it can't be repeated.")
    channel = bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
    try:
        status = await channel.fetch_message(job.status_message_id)
    except discord.HTTPException as exc:
        raise InvalidRequest("The images this edit started from are gone, so it can't be repeated.") from exc
    roles = [i.role for i in await bot.store.inputs(job.id)]
    if len(roles) != len(status.attachments):
        raise InvalidRequest("The images this edit started from are gone, so it can't be repeated.")
    images = await read_images([a for a, r in zip(status.attachments, roles, strict=True) if r == "image"])
    masks = [a for a, r in zip(status.attachments, roles, strict=True) if r == "mask"]
    return images, (await read_image(masks[0]) if masks else None)


async def reroll(interaction: discord.Interaction[ImageBot], job: Job, _: int | None) -> None:
    bot = interaction.client

    async def create() -> Job:
        inputs, mask = await original_inputs(bot, job) if job.kind == "edit" else ([], None)
        return await bot.jobs.rerun(
            requester_of(interaction), job, inputs=inputs, mask=mask, reply_to_message_id=reply_target(interaction)
        )

    await start(interaction, create)


async def edit_selected(
    interaction: discord.Interaction[ImageBot], job: Job, index: int | None, prompt: str, options: ImageOptions
) -> None:
    """Start an edit of the chosen result image with the result's model family."""
    attachment = selected_image(interaction, index)
    bot = interaction.client

    async def create() -> Job:
        image = await read_image(attachment)
        model = edit_model_for(job.model)
        return await bot.jobs.create_edit(
            requester_of(interaction),
            model,
            prompt[:4000],
            [image],
            keep_source_ratio(model, options, image.width, image.height),
            reply_to_message_id=reply_target(interaction),
        )

    await start(interaction, create)


async def vary(interaction: discord.Interaction[ImageBot], job: Job, index: int | None) -> None:
    await edit_selected(interaction, job, index, VARY_PROMPT.format(job.prompt), ImageOptions())


async def upscale(interaction: discord.Interaction[ImageBot], job: Job, index: int | None) -> None:
    target = upscale_target(job)
    if target is None:
        raise InvalidRequest(f"{model_label(job.model)} has no higher resolution to upscale to.")
    await edit_selected(interaction, job, index, UPSCALE_PROMPT, ImageOptions(resolution=target))


async def edit(interaction: discord.Interaction[ImageBot], job: Job, index: int | None) -> None:
    attachment = selected_image(interaction, index)
    cog = interaction.client.get_cog("Edit")
    if interaction.message is None or not isinstance(cog, Edit):
        raise InvalidRequest("That image is no longer available.")
    modal = EditModal(cog, interaction, interaction.message, [attachment], edit_model_for(job.model))
    await interaction.response.send_modal(modal)


async def info(interaction: discord.Interaction[ImageBot], job: Job, _: int | None) -> None:
    lines = [
        f"**Prompt**: {text.truncate(job.prompt, 1500)}",
        f"**Model**: {model_label(job.model)} (`{job.model}`)",
        f"**Options**: {options_summary(job)}",
        f"**Seed**: {seed_line(job)}",
        f"**Task**: `{job.provider_task_id or '—'}` on {PROVIDER_LABELS.get(job.provider, job.provider)}"
        + (f" (it reported a cost of {job.provider_cost:g})" if job.provider_cost is not None else ""),
        f"**Time**: {time_line(job)}",
        f"**Credits**: {job.cost}",
        f"**Requested by** <@{job.user_id}> <t:{int(job.created_at)}:R> · job #{job.id}",
    ]
    await interaction.response.send_message(
        "\n".join(lines), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
    )


def seed_line(job: Job) -> str:
    seed = seed_text(job)
    if seed is None:
        return f"none ({model_label(job.model)} takes no seed)"
    return "random (none was chosen)" if seed == "random" else seed


def time_line(job: Job) -> str:
    """What the member waited, and how much of it the image service spent generating."""
    if job.delivered_at is None and job.finished_at is None:
        return f"started <t:{int(job.created_at)}:R>, not finished yet"
    waited = text.format_seconds(waited_seconds(job, job.finished_at))
    generating = f", of which generating {text.format_seconds(job.duration_ms / 1000)}" if job.duration_ms else ""
    return f"{waited} from request to result{generating}"


async def delete(interaction: discord.Interaction[ImageBot], job: Job, _: int | None) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    if interaction.message is not None:
        with contextlib.suppress(discord.NotFound):  # already gone is fine
            await interaction.message.delete()
    await interaction.edit_original_response(content="Deleted.")


async def cancel(interaction: discord.Interaction[ImageBot], job: Job, _: int | None) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    if job.state.terminal:
        raise InvalidRequest("This job has already finished.")
    result = await interaction.client.runner.cancel(job.id)
    if result.state is JobState.CANCELLED:
        note = f" Your {job.cost} credits were given back." if job.cost else ""
        await interaction.edit_original_response(content=f"Cancelled job #{job.id}.{note}")
    else:
        await interaction.edit_original_response(content=f"Too late: job #{job.id} had already finished.")


ACTIONS = {"rr": reroll, "var": vary, "ed": edit, "up": upscale, "info": info, "del": delete, "x": cancel}


class Results(commands.Cog):
    """Registers the result buttons and the server setting for who may use them."""

    settings = app_commands.Group(
        name="settings",
        description="Bot settings for this server (server admins)",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(ResultButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(ResultButton)

    @settings.command(name="buttons", description="Whether everyone may reroll, vary, edit and upscale others' images")
    @app_commands.describe(everyone="True: anyone may use Reroll, Vary, Edit and Upscale; False: only the requester")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def buttons(self, interaction: discord.Interaction[ImageBot], everyone: bool) -> None:
        if interaction.guild_id is None:
            raise InvalidRequest("This is a server setting.")
        await set_flag(self.bot.db, interaction.guild_id, BUTTONS_FOR_EVERYONE, everyone)
        who = "everyone" if everyone else "only the person who asked"
        await interaction.response.send_message(f"Result buttons can now be used by {who}.", ephemeral=True)


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Results(bot))
