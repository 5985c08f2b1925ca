"""Result and status buttons. Only ids go in custom_ids; everything else is read from the job row."""

from __future__ import annotations

import discord

from bot.jobs.models import Job

TEMPLATE = r"img:(?P<action>rr|var|ed|up|info|del|x):(?P<job>[0-9]{1,19})(?::(?P<index>[0-9]))?"
UPSCALE_NEXT = {"0.5K": "1K", "1K": "2K", "2K": "4K"}
UPSCALE_FAMILIES = ("nano-banana-2", "nano-banana-pro")


def custom_id(action: str, job_id: int, index: int | None = None) -> str:
    return f"img:{action}:{job_id}" + (f":{index}" if index is not None else "")


def upscale_target(job: Job) -> str | None:
    """The next resolution up for this result's model family, or None where there is none."""
    family = job.model.removesuffix("-edit")
    if family not in UPSCALE_FAMILIES:
        return None
    current = str(job.params.get("resolution", "1K"))
    return UPSCALE_NEXT.get(current)


def result_view(job: Job, image_count: int) -> discord.ui.View:
    """Reroll, Info, Delete; then Vary, Edit and Upscale per image (numbered when there are several)."""
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label="Reroll", emoji="🔄", custom_id=custom_id("rr", job.id), row=0))
    view.add_item(discord.ui.Button(label="Info", emoji="ℹ️", custom_id=custom_id("info", job.id), row=0))
    view.add_item(
        discord.ui.Button(
            label="Delete", emoji="🗑️", style=discord.ButtonStyle.danger, custom_id=custom_id("del", job.id), row=0
        )
    )
    per_image = [("var", "Vary", discord.ButtonStyle.secondary), ("ed", "Edit", discord.ButtonStyle.secondary)]
    if upscale_target(job) is not None:
        per_image.append(("up", "Upscale", discord.ButtonStyle.primary))
    for row, (action, label, style) in enumerate(per_image, start=1):
        for index in range(min(image_count, 5)):
            text = label if image_count == 1 else f"{label[0]}{index + 1}"
            view.add_item(
                discord.ui.Button(label=text, style=style, custom_id=custom_id(action, job.id, index), row=row)
            )
    return view


def cancel_view(job: Job) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(
        discord.ui.Button(label="Cancel", style=discord.ButtonStyle.secondary, custom_id=custom_id("x", job.id))
    )
    return view
