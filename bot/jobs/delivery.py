"""What the runner needs from the chat side: post and edit messages by channel and message id."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.jobs.models import Job, JobInput
from bot.media import OutputImage


class Phase(enum.StrEnum):
    """What the status message says."""

    QUEUED = "queued"
    GENERATING = "generating"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class StatusUpdate:
    """The state to show on a job's status message."""

    phase: Phase
    position: int = 0  # jobs ahead in the queue, for QUEUED
    reason: str | None = None  # user-facing reason, for FAILED
    result_message_id: int | None = None  # for DONE
    refunded: bool = False  # for FAILED: the job's credits were given back


class DeliveryError(Exception):
    """Posting failed. `permanent` means retrying cannot help (no access, channel gone)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Publisher(Protocol):
    """Chat-side output of the runner. Implementations must not rely on interaction tokens."""

    async def post_status(self, job: Job, update: StatusUpdate, files: Sequence[JobInput] = ()) -> int:
        """Post the job's status message (with the edit's input images attached); return its id."""
        ...

    async def input_urls(self, job: Job) -> list[str]:
        """Fresh URLs of the input images attached to the job's status message, in order."""
        ...

    async def edit_status(self, job: Job, update: StatusUpdate) -> None:
        """Edit the job's status message (`job.status_message_id`)."""
        ...

    async def post_result(self, job: Job, images: list[OutputImage]) -> int:
        """Post the result images; return the message id. Must be safe to repeat (a nonce or similar)."""
        ...

    async def answer(self, job: Job, content: str) -> None:
        """Edit the member's private answer to the request that created the job (`job.answer_token`); `content` is
        encoded like the failure reasons (bot.rendering.text)."""
        ...

    async def find_status(self, job: Job) -> int | None:
        """The job's status message, if an earlier attempt posted it without recording its id."""
        ...

    async def find_result(self, job: Job) -> int | None:
        """A result message already posted for this job, if any (after a crash mid-delivery)."""
        ...
