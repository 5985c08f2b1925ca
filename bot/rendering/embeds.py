"""Embeds for status and result messages. User text only ever goes into embeds or mention-free content."""

from __future__ import annotations

import time

import discord

from bot.jobs.delivery import Phase, StatusUpdate
from bot.jobs.models import Job
from bot.providers.catalog import MODELS
from bot.providers.router import PROVIDER_LABELS
from bot.rendering.text import format_seconds, truncate

_COLOURS = {
    Phase.QUEUED: discord.Colour.light_grey(),
    Phase.GENERATING: discord.Colour.blurple(),
    Phase.DONE: discord.Colour.green(),
    Phase.FAILED: discord.Colour.red(),
    Phase.CANCELLED: discord.Colour.dark_grey(),
}
_OPTION_NAMES = {
    "aspect_ratio": "aspect",
    "resolution": "resolution",
    "num_images": "count",
    "seed": "seed",
    "quality": "quality",
    "image_size": "size",
}


def model_label(model: str) -> str:
    spec = MODELS.get(model)
    return spec.label if spec else model


def options_summary(job: Job) -> str:
    parts = []
    for key, label in _OPTION_NAMES.items():
        value = job.params.get(key)
        if isinstance(value, dict):
            value = f"{value.get('width')}×{value.get('height')}"
        if value is not None:
            parts.append(f"{label} {value}")
    return " · ".join(parts) or "defaults"


def message_link(job: Job, message_id: int) -> str:
    return f"https://discord.com/channels/{job.guild_id or '@me'}/{job.channel_id}/{message_id}"


def status_embed(job: Job, update: StatusUpdate) -> discord.Embed:
    """The status message: prompt, model, options, and what is happening now."""
    embed = discord.Embed(colour=_COLOURS[update.phase], description=truncate(job.prompt, 4000))
    if update.phase is Phase.QUEUED:
        ahead = f" — {update.position} ahead of you" if update.position else ""
        embed.title = f"⏳ Queued{ahead}"
    elif update.phase is Phase.GENERATING:
        embed.title = "🎨 Generating…"
        if job.submitted_at:
            embed.add_field(name="Started", value=f"<t:{int(job.submitted_at)}:R>")
    elif update.phase is Phase.DONE:
        embed.title = "✅ Done"
        if update.result_message_id:
            embed.add_field(name="Result", value=f"[Jump to the image]({message_link(job, update.result_message_id)})")
    elif update.phase is Phase.CANCELLED:
        embed.title = "⏹️ Cancelled"
    else:
        embed.title = "❌ Failed"
        embed.add_field(name="Why", value=truncate(update.reason or "Unknown error.", 1024), inline=False)
    embed.add_field(name="Model", value=model_label(job.model))
    embed.add_field(name="Options", value=options_summary(job))
    embed.add_field(name="Requested by", value=f"<@{job.user_id}>")
    if job.cost:
        given_back = update.phase in (Phase.FAILED, Phase.CANCELLED) and update.refunded
        embed.add_field(name="Credits", value=f"{job.cost} (given back)" if given_back else str(job.cost))
    embed.set_footer(text=status_footer(job))
    return embed


def status_footer(job: Job) -> str:
    """Also how a status message posted without its id being recorded is found again."""
    return f"Job #{job.id}"


def seed_text(job: Job) -> str | None:
    """The seed that was sent; "random" where the model takes one but none was sent; None where it takes none."""
    if job.seed is not None:
        return str(job.seed)
    spec = MODELS.get(job.model)
    return "random" if spec is not None and "seed" in spec.fields else None


def waited_seconds(job: Job, now: float | None = None) -> float:
    """What the member waited: from the request (the job's creation) to its result (`now` when posting it)."""
    end = job.delivered_at if job.delivered_at is not None else (time.time() if now is None else now)
    return max(0.0, end - job.created_at)


def result_embed(job: Job, compressed: bool, now: float | None = None) -> discord.Embed:
    """The text that goes with the result images. "Time" is what the member waited (the image service's own
    generation time is in Info)."""
    embed = discord.Embed(colour=_COLOURS[Phase.DONE], description=truncate(job.prompt, 4000))
    embed.add_field(name="Model", value=model_label(job.model))
    seed = seed_text(job)
    if seed is not None:
        embed.add_field(name="Seed", value=seed)
    embed.add_field(name="Time", value=format_seconds(waited_seconds(job, now)))
    embed.add_field(name="Service", value=PROVIDER_LABELS.get(job.provider, job.provider))
    footer = f"Job #{job.id}"
    if job.cost:
        footer += f" · {job.cost} credit{'s' if job.cost != 1 else ''}"
    if compressed:
        footer += " · compressed to fit Discord's upload limit"
    embed.set_footer(text=footer)
    return embed
