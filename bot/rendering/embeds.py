"""Embeds for status and result messages. User text only ever goes into embeds or mention-free content."""

from __future__ import annotations

import time

import discord

from bot.i18n import LANGUAGES, render, t
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
_OPTION_KEYS = {
    "aspect_ratio": "option.aspect",
    "resolution": "option.resolution",
    "num_images": "option.count",
    "seed": "option.seed",
    "quality": "option.quality",
    "image_size": "option.size",
}


def model_label(model: str) -> str:
    spec = MODELS.get(model)
    return spec.label if spec else model


def options_summary(job: Job, locale: str = "en") -> str:
    parts = []
    for key, label in _OPTION_KEYS.items():
        value = job.params.get(key)
        if isinstance(value, dict):
            value = f"{value.get('width')}×{value.get('height')}"
        if value is not None:
            parts.append(t(locale, label, value=value))
    return " · ".join(parts) or t(locale, "option.defaults")


def message_link(job: Job, message_id: int) -> str:
    return f"https://discord.com/channels/{job.guild_id or '@me'}/{job.channel_id}/{message_id}"


def status_embed(job: Job, update: StatusUpdate, locale: str = "en") -> discord.Embed:
    """The status message, in the server's language: prompt (as written), model, options, what is happening now."""
    embed = discord.Embed(colour=_COLOURS[update.phase], description=truncate(job.prompt, 4000))
    if update.phase is Phase.QUEUED:
        embed.title = (
            t(locale, "status.queued_behind", count=update.position) if update.position else t(locale, "status.queued")
        )
    elif update.phase is Phase.GENERATING:
        embed.title = t(locale, "status.generating")
        if job.submitted_at:
            embed.add_field(name=t(locale, "status.started"), value=f"<t:{int(job.submitted_at)}:R>")
    elif update.phase is Phase.DONE:
        embed.title = t(locale, "status.done")
        if update.result_message_id:
            link = message_link(job, update.result_message_id)
            embed.add_field(name=t(locale, "status.result"), value=t(locale, "status.jump", link=link))
    elif update.phase is Phase.CANCELLED:
        embed.title = t(locale, "status.cancelled")
    else:
        embed.title = t(locale, "status.failed")
        why = render(update.reason, locale) if update.reason else t(locale, "status.unknown_error")
        embed.add_field(name=t(locale, "status.why"), value=truncate(why, 1024), inline=False)
    embed.add_field(name=t(locale, "field.model"), value=model_label(job.model))
    embed.add_field(name=t(locale, "field.options"), value=options_summary(job, locale))
    embed.add_field(name=t(locale, "field.requested_by"), value=f"<@{job.user_id}>")
    if job.cost:
        given_back = update.phase in (Phase.FAILED, Phase.CANCELLED) and update.refunded
        credits = t(locale, "status.credits_given_back", cost=job.cost) if given_back else str(job.cost)
        embed.add_field(name=t(locale, "field.credits"), value=credits)
    embed.set_footer(text=status_footer(job, locale))
    return embed


def status_footer(job: Job, locale: str = "en") -> str:
    """Also how a status message posted without its id being recorded is found again (see `status_footers`)."""
    return t(locale, "status.footer", job_id=job.id)


def status_footers(job: Job) -> set[str]:
    """The footer in every language: the server's language may have changed since the status was posted."""
    return {status_footer(job, locale) for locale in LANGUAGES}


def seed_text(job: Job, locale: str = "en") -> str | None:
    """The seed that was sent; "random" where the model takes one but none was sent; None where it takes none."""
    if job.seed is not None:
        return str(job.seed)
    spec = MODELS.get(job.model)
    return t(locale, "seed.random") if spec is not None and "seed" in spec.fields else None


def waited_seconds(job: Job, now: float | None = None) -> float:
    """What the member waited: from the request (the job's creation) to its result (`now` when posting it)."""
    end = job.delivered_at if job.delivered_at is not None else (time.time() if now is None else now)
    return max(0.0, end - job.created_at)


def result_embed(job: Job, compressed: bool, now: float | None = None, locale: str = "en") -> discord.Embed:
    """The text that goes with the result images, in the server's language. "Time" is what the member waited (the
    image service's own generation time is in Info)."""
    embed = discord.Embed(colour=_COLOURS[Phase.DONE], description=truncate(job.prompt, 4000))
    embed.add_field(name=t(locale, "field.model"), value=model_label(job.model))
    seed = seed_text(job, locale)
    if seed is not None:
        embed.add_field(name=t(locale, "field.seed"), value=seed)
    embed.add_field(name=t(locale, "field.time"), value=format_seconds(waited_seconds(job, now), locale))
    embed.add_field(name=t(locale, "field.service"), value=PROVIDER_LABELS.get(job.provider, job.provider))
    parts = [status_footer(job, locale)]
    if job.cost:
        parts.append(t(locale, "credits.count", count=job.cost))
    if compressed:
        parts.append(t(locale, "result.compressed"))
    embed.set_footer(text=" · ".join(parts))
    return embed


def result_content(job: Job, locale: str = "en") -> str:
    """The result message's text: pings the requester (and only them)."""
    return t(locale, "result.ready", user=f"<@{job.user_id}>")
