"""Result and status buttons. Only ids go in custom_ids; everything else is read from the job row."""

from __future__ import annotations

import discord

from bot.i18n import DEFAULT_LOCALE, t
from bot.jobs.models import Job

TEMPLATE = r"img:(?P<action>rr|var|ed|up|info|del|x):(?P<job>[0-9]{1,19})(?::(?P<index>[0-9]))?"
UPSCALE_NEXT = {"0.5K": "1K", "1K": "2K", "2K": "4K"}
UPSCALE_FAMILIES = ("nano-banana-2", "nano-banana-pro")
MAX_IMAGES = 4  # per-image buttons: four per row, next to one of the job's buttons
ROW_WIDTH = 5  # Discord's limit of buttons in one action row


def custom_id(action: str, job_id: int, index: int | None = None) -> str:
    return f"img:{action}:{job_id}" + (f":{index}" if index is not None else "")


def upscale_target(job: Job) -> str | None:
    """The next resolution up for this result's model family, or None where there is none."""
    family = job.model.removesuffix("-edit")
    if family not in UPSCALE_FAMILIES:
        return None
    current = str(job.params.get("resolution", "1K"))
    return UPSCALE_NEXT.get(current)


def result_view(job: Job, image_count: int, locale: str = DEFAULT_LOCALE) -> discord.ui.View:
    """Reroll, Info, Delete and the per-image Vary, Edit, Upscale, in as few rows as read well.

    One image: the job's actions on one row, the image's on a second. Several: one row per action
    (V1-V4, E1-E4, U1-U4), each ending with one of the job's actions, so four images take three rows.
    """
    view = discord.ui.View(timeout=None)
    general: list[discord.ui.Button[discord.ui.View]] = [
        discord.ui.Button(label=t(locale, "button.reroll"), emoji="🔄", custom_id=custom_id("rr", job.id)),
        discord.ui.Button(label=t(locale, "button.info"), emoji="ℹ️", custom_id=custom_id("info", job.id)),
        discord.ui.Button(
            label=t(locale, "button.delete"),
            emoji="🗑️",
            style=discord.ButtonStyle.danger,
            custom_id=custom_id("del", job.id),
        ),
    ]
    per_image = [
        ("var", ("button.vary", "button.vary_n"), discord.ButtonStyle.secondary),
        ("ed", ("button.edit", "button.edit_n"), discord.ButtonStyle.secondary),
    ]
    if upscale_target(job) is not None:
        per_image.append(("up", ("button.upscale", "button.upscale_n"), discord.ButtonStyle.primary))
    images = max(1, min(image_count, MAX_IMAGES))
    if images == 1:
        rows = [
            general,
            [_image_button(job, action, t(locale, one), style, 0) for action, (one, _), style in per_image],
        ]
    else:
        rows = [
            [_image_button(job, action, t(locale, numbered, number=i + 1), style, i) for i in range(images)]
            for action, (_, numbered), style in per_image
        ]
        for index, button in enumerate(general):
            target = rows[min(index, len(rows) - 1)]
            if len(target) >= ROW_WIDTH:
                target = []
                rows.append(target)
            target.append(button)
    for number, buttons in enumerate(rows):
        for button in buttons:
            button.row = number
            view.add_item(button)
    return view


def _image_button(
    job: Job, action: str, label: str, style: discord.ButtonStyle, index: int
) -> discord.ui.Button[discord.ui.View]:
    return discord.ui.Button(label=label, style=style, custom_id=custom_id(action, job.id, index))


def cancel_view(job: Job, locale: str = DEFAULT_LOCALE) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    label = t(locale, "button.cancel")
    view.add_item(discord.ui.Button(label=label, style=discord.ButtonStyle.secondary, custom_id=custom_id("x", job.id)))
    return view
