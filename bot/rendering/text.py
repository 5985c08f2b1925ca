"""User-facing messages the Discord-free core hands on, and text helpers. Pure: no Discord imports.

A job's failure reason is stored on its row until its status message shows it, so the constants here are
encoded catalogue messages (`Msg.encode`), rendered in the server's language when the status is drawn.
"""

from __future__ import annotations

import re

from bot.i18n import msg, t

GENERIC_FAILURE = msg("error.generic").encode()
PROVIDER_NOT_CONFIGURED = msg("fail.provider_not_configured").encode()
DEADLINE_REACHED = msg("fail.deadline").encode()
NO_IMAGES = msg("fail.no_images").encode()
RESULT_EXPIRED = msg("fail.result_expired").encode()
TOO_LARGE_TO_POST = msg("fail.too_large").encode()
INPUT_UNAVAILABLE = msg("fail.input_unavailable").encode()
CANCELLED = msg("fail.cancelled").encode()
INTERRUPTED = msg("fail.interrupted").encode()
RESULT_NOT_POSTED = msg("fail.not_posted").encode()

_MENTION = re.compile(r"@(everyone|here)|<@[!&]?\d+>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def task_failed(state: str, provider_message: str | None) -> str:
    """Why a provider task ended without an image, in words a user understands (the provider's own words are
    quoted as it wrote them)."""
    if state == "timeout":
        return msg("fail.provider_timeout").encode()
    if state == "cancelled":
        return msg("fail.provider_cancelled").encode()
    detail = clean_provider_text(provider_message)
    return (msg("fail.provider_said", detail=detail) if detail else msg("fail.provider_refused")).encode()


def queued_answer(job_id: int) -> str:
    """The member's private "on it" answer, encoded like the failure reasons (rendered where it is shown)."""
    return msg("job.queued", job_id=job_id).encode()


def image_unusable(reason: str) -> str:
    return msg("fail.image_unusable", reason=reason).encode()


def clean_provider_text(message: str | None, limit: int = 200) -> str | None:
    """A provider's error message made safe to show: no control characters, no mentions, short."""
    if not message:
        return None
    message = _CONTROL.sub(" ", message).strip()
    message = _MENTION.sub(lambda m: m.group(0).replace("@", "@\u200b"), message)
    return message if len(message) <= limit else message[: limit - 1] + "…"


def truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def format_seconds(seconds: float, locale: str = "en") -> str:
    """A short duration: "1m 5s" / "1分5秒"."""
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    if minutes:
        return t(locale, "duration.minutes_seconds", minutes=minutes, seconds=secs)
    return t(locale, "duration.seconds", seconds=secs)
