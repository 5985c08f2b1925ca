"""Buttons on results and status messages (reroll, vary, edit, upscale, info, delete, cancel).

One DynamicItem matches every button's custom_id (`img:<action>:<job>[:<image>]`), so buttons work on
results of any age and after restarts; everything else is read from the job row.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from bot.db.guild_settings import BUTTONS_FOR_EVERYONE, get_flag
from bot.errors import ChannelNotAllowed, InvalidRequest
from bot.guild_gate import check_interaction_channel, guild_config_of
from bot.i18n import t
from bot.i18n.translator import user_locale
from bot.jobs.models import Job, JobState
from bot.providers.catalog import MODELS, ImageOptions, edit_model_for
from bot.providers.router import PROVIDER_LABELS
from bot.rendering import text
from bot.rendering.buttons import TEMPLATE, upscale_target
from bot.rendering.embeds import model_label, options_summary, seed_text, waited_seconds
from bot.tree import report_error, respond
from cogs.common import answer_once_deferred, answer_queued, defer, requester_of
from cogs.edit import Edit, EditModal, reader, same_shape

if TYPE_CHECKING:
    from bot.client import ImageBot

log = logging.getLogger(__name__)

# Buttons that start new work follow the server's channel allow-list; Info, Delete and Cancel work anywhere,
# so old results can still be looked at, cleaned up and stopped.
STARTS_WORK = ("rr", "var", "ed", "up")
# Actions only the requester or a member who can manage messages may take, whatever the server setting.
MODERATED = {"del": "buttons.delete_not_yours", "x": "buttons.cancel_not_yours"}
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
        locale = user_locale(interaction)
        if self.action in STARTS_WORK:
            try:
                await check_interaction_channel(interaction)
            except ChannelNotAllowed as exc:
                await respond(interaction, exc.render(locale))
                return False
        try:
            job = await interaction.client.store.get(self.job_id)
        except LookupError:
            await respond(interaction, t(locale, "buttons.result_gone"))
            return False
        if interaction.user.id == job.user_id or self.action == "info":
            return True
        if self.action in MODERATED:  # never opened up by `/settings buttons everyone:True`
            if interaction.permissions.manage_messages:
                return True
            await respond(interaction, t(locale, MODERATED[self.action]))
            return False
        if await get_flag(interaction.client.db, interaction.guild_id, BUTTONS_FOR_EVERYONE):
            return True
        await respond(interaction, t(locale, "buttons.not_yours", user=f"<@{job.user_id}>"))
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
        raise InvalidRequest("buttons.image_gone")
    return attachments[position]


async def start(interaction: discord.Interaction[ImageBot], create: Callable[[], Awaitable[Job]]) -> None:
    """Create the job (which acknowledges the click once its row exists), then say which one it is."""
    await answer_once_deferred(interaction, await create())


def reply_target(interaction: discord.Interaction[ImageBot]) -> int | None:
    return interaction.message.id if interaction.message else None


GONE = "buttons.inputs_gone"


async def original_inputs(bot: ImageBot, job: Job) -> tuple[list[discord.Attachment], discord.Attachment | None]:
    """An edit's input images, as attachments of its status message (the bot's own, so always readable)."""
    if job.status_message_id is None:
        raise InvalidRequest(GONE)
    channel = bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
    try:
        status = await channel.fetch_message(job.status_message_id)
    except discord.HTTPException as exc:
        raise InvalidRequest(GONE) from exc
    roles = [i.role for i in await bot.store.inputs(job.id)]
    if len(roles) != len(status.attachments):
        raise InvalidRequest(GONE)
    images = [a for a, r in zip(status.attachments, roles, strict=True) if r == "image"]
    masks = [a for a, r in zip(status.attachments, roles, strict=True) if r == "mask"]
    return images, (masks[0] if masks else None)


async def reroll(interaction: discord.Interaction[ImageBot], job: Job, _: int | None) -> None:
    bot = interaction.client
    # Server settings apply to the new job: the blocklist as it is now, and today's safety level.
    config = await guild_config_of(interaction)
    config.check_text(job.prompt)
    spec = MODELS.get(job.model)
    if spec is not None and "safety_tolerance" in spec.fields:
        job = dataclasses.replace(job, params={**job.params, "safety_tolerance": config.safety})

    async def create() -> Job:
        if job.kind != "edit":
            return await bot.jobs.rerun(
                requester_of(interaction),
                job,
                reply_to_message_id=reply_target(interaction),
                ack=answer_queued(interaction),
            )
        images, mask = await original_inputs(bot, job)
        return await bot.jobs.rerun(
            requester_of(interaction),
            job,
            read=reader(images, mask),
            image_count=len(images),
            has_mask=mask is not None,
            reply_to_message_id=reply_target(interaction),
            ack=defer(interaction),
        )

    await start(interaction, create)


async def edit_selected(
    interaction: discord.Interaction[ImageBot], job: Job, index: int | None, prompt: str, options: ImageOptions
) -> None:
    """Start an edit of the chosen result image with the result's model family."""
    attachment = selected_image(interaction, index)
    bot = interaction.client
    config = await guild_config_of(interaction)  # the server's safety level as it is now
    options = dataclasses.replace(options, safety_tolerance=config.safety_level)

    async def create() -> Job:
        model = edit_model_for(job.model)
        return await bot.jobs.create_edit(
            requester_of(interaction),
            model,
            prompt[:4000],
            1,
            same_shape(model, options, [attachment]),
            reader([attachment]),
            reply_to_message_id=reply_target(interaction),
            ack=defer(interaction),
        )

    await start(interaction, create)


async def vary(interaction: discord.Interaction[ImageBot], job: Job, index: int | None) -> None:
    (await guild_config_of(interaction)).check_text(job.prompt)  # the member's prompt goes along: blocklist as now
    await edit_selected(interaction, job, index, VARY_PROMPT.format(job.prompt), ImageOptions())


async def upscale(interaction: discord.Interaction[ImageBot], job: Job, index: int | None) -> None:
    target = upscale_target(job)
    if target is None:
        raise InvalidRequest("buttons.no_upscale", model=model_label(job.model))
    await edit_selected(interaction, job, index, UPSCALE_PROMPT, ImageOptions(resolution=target))


async def edit(interaction: discord.Interaction[ImageBot], job: Job, index: int | None) -> None:
    attachment = selected_image(interaction, index)
    cog = interaction.client.get_cog("Edit")
    if interaction.message is None or not isinstance(cog, Edit):
        raise InvalidRequest("buttons.image_unavailable")
    modal = EditModal(cog, interaction, interaction.message, [attachment], edit_model_for(job.model))
    await interaction.response.send_modal(modal)


async def info(interaction: discord.Interaction[ImageBot], job: Job, _: int | None) -> None:
    locale = user_locale(interaction)
    service = PROVIDER_LABELS.get(job.provider, job.provider)
    task = job.provider_task_id or "—"
    lines = [
        t(locale, "info.prompt", prompt=text.truncate(job.prompt, 1500)),
        t(locale, "info.model", label=model_label(job.model), model=job.model),
        t(locale, "info.options", options=options_summary(job, locale)),
        t(locale, "info.seed", seed=seed_line(job, locale)),
        *([t(locale, "info.safety", level=job.params["safety_tolerance"])] if "safety_tolerance" in job.params else []),
        t(locale, "info.task_cost", task=task, service=service, cost=f"{job.provider_cost:g}")
        if job.provider_cost is not None
        else t(locale, "info.task", task=task, service=service),
        t(locale, "info.time", time=time_line(job, locale)),
        t(locale, "info.credits", count=job.cost),
        t(locale, "info.requested", user=f"<@{job.user_id}>", when=f"<t:{int(job.created_at)}:R>", job_id=job.id),
    ]
    await interaction.response.send_message(
        "\n".join(lines), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
    )


def seed_line(job: Job, locale: str = "en") -> str:
    if job.seed is not None:
        return str(job.seed)
    if seed_text(job) is None:
        return t(locale, "info.seed_none", model=model_label(job.model))
    return t(locale, "info.seed_random")


def time_line(job: Job, locale: str = "en") -> str:
    """What the member waited, and how much of it the image service spent generating."""
    if job.delivered_at is None and job.finished_at is None:
        return t(locale, "info.time_running", when=f"<t:{int(job.created_at)}:R>")
    waited = text.format_seconds(waited_seconds(job, job.finished_at), locale)
    if job.duration_ms:
        generating = text.format_seconds(job.duration_ms / 1000, locale)
        return t(locale, "info.time_generating", waited=waited, generating=generating)
    return t(locale, "info.time_waited", waited=waited)


async def delete(interaction: discord.Interaction[ImageBot], job: Job, _: int | None) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    if interaction.message is not None:
        with contextlib.suppress(discord.NotFound):  # already gone is fine
            await interaction.message.delete()
    await interaction.edit_original_response(content=t(user_locale(interaction), "buttons.deleted"))


async def cancel(interaction: discord.Interaction[ImageBot], job: Job, _: int | None) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    if job.state.terminal:
        raise InvalidRequest("buttons.already_finished")
    result = await interaction.client.runner.cancel(job.id)
    locale = user_locale(interaction)
    if result.state is JobState.CANCELLED:
        answer = t(locale, "buttons.cancelled", job_id=job.id)
        if job.cost:
            answer += " " + t(locale, "buttons.refunded", count=job.cost)
        await interaction.edit_original_response(content=answer)
    else:
        await interaction.edit_original_response(content=t(locale, "buttons.too_late", job_id=job.id))


ACTIONS = {"rr": reroll, "var": vary, "ed": edit, "up": upscale, "info": info, "del": delete, "x": cancel}


class Results(commands.Cog):
    """Registers the result buttons (who may use them is a server setting: cogs/settings.py)."""

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(ResultButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(ResultButton)


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Results(bot))
