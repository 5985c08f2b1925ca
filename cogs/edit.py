"""Editing images: reply to an image and mention the bot, the "Edit image" context menu, and `/edit`."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import BlockedPrompt, ChannelNotAllowed, InvalidRequest, UserFacingError
from bot.guild_config import GuildConfig, load, remember_locale
from bot.guild_gate import guild_config_of, parent_id, tell_privately
from bot.i18n import DEFAULT_LOCALE, render, t
from bot.i18n.translator import user_locale
from bot.media import MAX_INPUT_BYTES, InputImage, InputImageError, check_input
from bot.providers.aspect import keep_source_ratio
from bot.providers.catalog import (
    MAX_EDIT_IMAGES,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MODELS,
    TEXT_TO_IMAGE_MODELS,
    ImageOptions,
    build_edit_input,
    edit_model_for,
)
from bot.providers.prompts import is_blank
from bot.rendering import text
from bot.tree import report_error
from cogs.common import (
    QUALITY_CHOICES,
    RATIO_CHOICES,
    RESOLUTION_CHOICES,
    answer_once_deferred,
    check_channel_permissions,
    check_permissions,
    defer,
    requester_of,
    requester_of_message,
)

if TYPE_CHECKING:
    from bot.client import ImageBot

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")
DOWNLOAD_TIMEOUT = 30.0
_DECODES = asyncio.Semaphore(2)  # input images checked at once (each check is bounded; see bot/media_input.py)
HOW_TO = "edit.how_to"


def image_attachments(message: discord.Message) -> list[discord.Attachment]:
    return [
        a
        for a in message.attachments
        if (a.content_type or "").startswith("image/") or a.filename.lower().endswith(IMAGE_SUFFIXES)
    ]


def mentions_explicitly(content: str, user_id: int) -> bool:
    """Whether the author typed a mention of `user_id`. A reply's ping puts the replied-to author in
    `message.mentions` too, so that list cannot tell "thanks, love it!" from "@Bot make it snowy"."""
    return re.search(rf"<@!?{user_id}>", content) is not None


async def read_image(attachment: discord.Attachment) -> InputImage:
    """Download an attachment through discord.py (its URL comes from Discord) and check it."""
    if attachment.size > MAX_INPUT_BYTES:
        raise InvalidRequest(
            "input.file_too_big",
            label=attachment.filename,
            size=f"{attachment.size / 1024 / 1024:.1f}",
            limit=MAX_INPUT_BYTES // 1024 // 1024,
        )
    try:
        data = await asyncio.wait_for(attachment.read(), DOWNLOAD_TIMEOUT)
    except (discord.HTTPException, TimeoutError) as exc:
        raise InvalidRequest("input.download_failed", label=attachment.filename) from exc
    try:
        async with _DECODES:  # bounds the memory all checks in progress can take together
            return await asyncio.to_thread(check_input, data, attachment.filename, attachment.content_type)
    except InputImageError as exc:
        raise InvalidRequest(exc.msg) from exc


async def read_images(attachments: list[discord.Attachment]) -> list[InputImage]:
    return list(await asyncio.gather(*(read_image(a) for a in attachments)))


def reader(
    attachments: list[discord.Attachment], mask: discord.Attachment | None = None
) -> Callable[[], Awaitable[tuple[list[InputImage], InputImage | None]]]:
    """What the job service calls, after the job row exists and the request is acknowledged, to read the images."""

    async def read() -> tuple[list[InputImage], InputImage | None]:
        return await read_images(attachments), (await read_image(mask) if mask is not None else None)

    return read


def same_shape(model: str, options: ImageOptions, attachments: list[discord.Attachment]) -> ImageOptions:
    """Unless the member chose an aspect ratio, the result keeps the (first) source image's shape: Discord gives
    an image attachment's size, so this is known before anything is downloaded."""
    first = attachments[0] if attachments else None
    if first is None or not first.width or not first.height:
        return options
    return keep_source_ratio(model, options, first.width, first.height)


MODAL_TIMEOUT = 15 * 60.0  # a dismissed form is forgotten after this; Discord does not say when one is closed


class EditModal(discord.ui.Modal, title="Edit image"):
    """Asks for the instruction; the target message's images are held by this modal instance.

    Its custom_id names the interaction that opened it, so two members' forms on one message never cross.
    """

    def __init__(
        self,
        cog: Edit,
        opened_by: discord.Interaction[ImageBot],
        target: discord.Message,
        images: list[discord.Attachment],
        model: str,
    ) -> None:
        locale = user_locale(opened_by)
        super().__init__(title=t(locale, "modal.title"), custom_id=f"edit:{opened_by.id}", timeout=MODAL_TIMEOUT)
        self.instruction: discord.ui.TextInput[EditModal] = discord.ui.TextInput(
            label=t(locale, "modal.instruction"),
            style=discord.TextStyle.paragraph,
            max_length=MAX_PROMPT_CHARS,
            placeholder=t(locale, "modal.placeholder"),
        )
        self.add_item(self.instruction)
        self.cog, self.target, self.images, self.model = cog, target, images, model
        self.mask: discord.ui.FileUpload[EditModal] | None = None
        if "mask_url" in MODELS[model].fields:
            self.mask = discord.ui.FileUpload(custom_id="mask", required=False, max_values=1)
            label = discord.ui.Label(
                text=t(locale, "modal.mask"), description=t(locale, "modal.mask_hint"), component=self.mask
            )
            self.add_item(label)

    async def on_submit(self, interaction: discord.Interaction[ImageBot]) -> None:  # type: ignore[override]
        masks = self.mask.values if self.mask is not None else []
        config = await guild_config_of(interaction)  # server settings: safety level, blocklist
        config.check_text(self.instruction.value)
        job = await self.cog.bot.jobs.create_edit(
            requester_of(interaction),
            self.model,
            self.instruction.value,
            len(self.images),
            same_shape(self.model, ImageOptions(safety_tolerance=config.safety_level), self.images),
            reader(self.images, masks[0] if masks else None),
            has_mask=bool(masks),
            reply_to_message_id=self.target.id,
            ack=defer(interaction),
        )
        await answer_once_deferred(interaction, job)

    async def on_error(self, interaction: discord.Interaction[ImageBot], error: Exception) -> None:  # type: ignore[override]
        await report_error(interaction, error)


class Edit(commands.Cog):
    """Image editing, three ways in, one job pipeline."""

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name="Edit image", callback=self.edit_image_menu)
        self.menu.allowed_contexts = app_commands.AppCommandContext(guild=True, dm_channel=True)
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def model_for(self, source: discord.Message | None, config: GuildConfig) -> str:
        """Edits of one of the bot's results use that result's model family; others the server's default."""
        if source is not None and self.bot.user is not None and source.author.id == self.bot.user.id:
            job = await self.bot.store.by_result_message(source.id)
            if job is not None:
                return edit_model_for(job.model)
        return edit_model_for(config.model_or(self.bot.settings.default_model))

    # -- the context menu --------------------------------------------------------------------------

    async def edit_image_menu(self, interaction: discord.Interaction[ImageBot], message: discord.Message) -> None:
        images = image_attachments(message)
        if not images:
            raise InvalidRequest("edit.no_image_seen")
        if len(images) > MAX_EDIT_IMAGES:
            raise InvalidRequest("edit.too_many_images", count=len(images), limit=MAX_EDIT_IMAGES)
        check_channel_permissions(interaction)
        model = await self.model_for(message, await guild_config_of(interaction))
        await interaction.response.send_modal(EditModal(self, interaction, message, images, model))

    # -- /edit -------------------------------------------------------------------------------------

    @app_commands.command(name="edit", description="Edit an image by describing the change")
    @app_commands.describe(
        prompt="What should change",
        image="The image to edit",
        image2="Another reference image",
        image3="Another reference image",
        image4="Another reference image",
        model="Which model family (default set by the bot owner)",
        mask="A mask of the area to change (GPT Image 2 only)",
        aspect_ratio="Shape of the result",
        resolution="Output resolution (Nano Banana 2 / Pro, GPT Image 2)",
        seed="Seed, to reproduce a result (Nano Banana models)",
        quality="Rendering quality (GPT Image 2)",
    )
    @app_commands.choices(
        model=[app_commands.Choice(name=MODELS[m].label, value=edit_model_for(m)) for m in TEXT_TO_IMAGE_MODELS],
        aspect_ratio=RATIO_CHOICES,
        resolution=RESOLUTION_CHOICES,
        quality=QUALITY_CHOICES,
    )
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
    async def edit(
        self,
        interaction: discord.Interaction[ImageBot],
        prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
        image: discord.Attachment,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        model: str | None = None,
        mask: discord.Attachment | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        quality: str | None = None,
    ) -> None:
        config = await guild_config_of(interaction)  # server settings: default model, safety level, blocklist
        model = model or await self.model_for(None, config)
        attachments = [a for a in (image, image2, image3, image4) if a is not None]
        options = ImageOptions(
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            seed=seed,
            quality=quality,
            safety_tolerance=config.safety_level,
        )
        build_edit_input(model, prompt, len(attachments), options, mask is not None)
        config.check_text(prompt)
        check_channel_permissions(interaction)
        options = same_shape(model, options, attachments)
        job = await self.bot.jobs.create_edit(
            requester_of(interaction),
            model,
            prompt,
            len(attachments),
            options,
            reader(attachments, mask),
            has_mask=mask is not None,
            ack=defer(interaction),
        )
        await answer_once_deferred(interaction, job)

    # -- reply + mention -----------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Only a typed mention (`<@id>` in the content) asks for an edit; a reply's default ping alone does not."""
        me = self.bot.user
        if message.author.bot or me is None or not mentions_explicitly(message.content, me.id):
            return
        # Replies to a mention are public: the server's language (Discord sends no member locale with messages).
        locale = DEFAULT_LOCALE
        try:
            if message.guild is not None:
                await remember_locale(self.bot.db, message.guild.id, str(message.guild.preferred_locale.value))
            locale = await self.bot.server_locale(message.guild.id if message.guild else None)
            await self._edit_from_reply(message)
        except ChannelNotAllowed as exc:
            # The server keeps the bot out of this channel, so it says nothing here: a DM, or silence.
            await tell_privately(message, exc.render(locale), locale)
        except BlockedPrompt as exc:
            # Privately if possible; else here, without repeating the term or pinging anyone.
            if not await tell_privately(message, exc.render(locale), locale):
                await self._answer(message, exc.render(locale))
        except UserFacingError as exc:
            await self._answer(message, exc.render(locale))
        except Exception:
            log.exception("edit by reply failed for user %s", message.author.id)
            await self._answer(message, render(text.GENERIC_FAILURE, locale))

    async def _edit_from_reply(self, message: discord.Message) -> None:
        assert self.bot.user is not None
        # Server settings first: in a channel the bot is kept out of, nothing else is looked at.
        config = await load(self.bot.db, message.guild.id if message.guild else None)
        config.check_channel(message.channel.id, parent_id(message.channel))
        instruction = re.sub(rf"<@!?{self.bot.user.id}>", "", message.content).strip()
        config.check_text(instruction)
        source = await self._replied_to(message)
        images = image_attachments(source) if source is not None else image_attachments(message)
        if not images:
            if source is None:
                raise InvalidRequest("edit.reply_how")
            if source.author.id != self.bot.user.id and not self.bot.intents.message_content:
                raise InvalidRequest(HOW_TO)
            raise InvalidRequest("edit.no_image")
        if is_blank(instruction):
            raise InvalidRequest("edit.say_what", bot=self.bot.user.name)
        if len(images) > MAX_EDIT_IMAGES:
            raise InvalidRequest("edit.too_many_images", count=len(images), limit=MAX_EDIT_IMAGES)
        model = await self.model_for(source, config)
        options = ImageOptions(safety_tolerance=config.safety_level)
        build_edit_input(model, instruction, len(images), options, False)
        if message.guild is not None and isinstance(message.channel, discord.abc.GuildChannel | discord.Thread):
            check_permissions(message.channel.permissions_for(message.guild.me), message.channel)
        await self.bot.jobs.create_edit(
            requester_of_message(message),
            model,
            instruction,
            len(images),
            same_shape(model, options, images),
            reader(images),
            reply_to_message_id=message.id,
        )

    async def _replied_to(self, message: discord.Message) -> discord.Message | None:
        reference = message.reference
        if reference is None or reference.message_id is None:
            return None
        resolved = reference.resolved
        if isinstance(resolved, discord.Message):
            return resolved
        if isinstance(resolved, discord.DeletedReferencedMessage):
            raise InvalidRequest("edit.reply_deleted")
        try:
            return await message.channel.fetch_message(reference.message_id)
        except discord.NotFound as exc:
            raise InvalidRequest("edit.reply_deleted") from exc
        except discord.Forbidden as exc:
            raise InvalidRequest("edit.reply_unreadable") from exc

    async def _answer(self, message: discord.Message, content: str) -> None:
        try:
            await message.reply(content, mention_author=False, allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException:
            log.warning("could not answer message %s", message.id, exc_info=True)


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Edit(bot))
