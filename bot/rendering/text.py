"""User-facing strings, in one place. Pure: no Discord imports."""

from __future__ import annotations

import re

GENERIC_FAILURE = "Something went wrong inside the bot. Nothing was lost; please try again."
PROVIDER_NOT_CONFIGURED = "This model's image service is not configured on this bot."
DEADLINE_REACHED = "The image took too long, so the bot stopped waiting for it."
NO_IMAGES = "The image service finished but sent back no image."
RESULT_EXPIRED = "The finished image could no longer be downloaded from the image service."
BOT_MISSING_PERMISSIONS = "I need these permissions in this channel to post your image: {perms}."
QUEUED_CONFIRMATION = "🎨 On it — job **#{job_id}**. The result will be posted in this channel."
TOO_LARGE_TO_POST = "The image is too large to post in this channel, even after compression."
INPUT_UNAVAILABLE = "The image to edit could not be attached here, so nothing was sent. Please try again."
CANCELLED = "Cancelled by the requester."
INTERRUPTED = "The bot restarted while reading your images, so nothing was sent. Please try again."
RESULT_NOT_POSTED = "The image was made but could not be posted in this channel."
NOT_FOR_BOTS = "Bots can't use this bot."

_MENTION = re.compile(r"@(everyone|here)|<@[!&]?\d+>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def task_failed(state: str, provider_message: str | None) -> str:
    """Why a provider task ended without an image, in words a user understands."""
    if state == "timeout":
        return "The image service timed out while making this image."
    if state == "cancelled":
        return "The image service cancelled this task."
    detail = clean_provider_text(provider_message)
    return (
        f"The image service couldn't make this image: {detail}"
        if detail
        else ("The image service couldn't make this image. Try rephrasing the prompt.")
    )


def image_unusable(reason: str) -> str:
    return f"The image service sent back something that isn't a usable image ({reason})."


def clean_provider_text(message: str | None, limit: int = 200) -> str | None:
    """A provider's error message made safe to show: no control characters, no mentions, short."""
    if not message:
        return None
    message = _CONTROL.sub(" ", message).strip()
    message = _MENTION.sub(lambda m: m.group(0).replace("@", "@\u200b"), message)
    return message if len(message) <= limit else message[: limit - 1] + "…"


def truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"
