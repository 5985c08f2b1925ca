"""The provider protocol and its normalised task types."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.i18n import Msg, msg


class TaskState(enum.StrEnum):
    """A provider task's state, normalised across APIs."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self not in (TaskState.PENDING, TaskState.RUNNING)


@dataclass(frozen=True)
class TaskStatus:
    """One poll's answer. `images` holds URLs (http(s) or data:) on success."""

    state: TaskState
    images: tuple[str, ...] = ()
    error_code: str | None = None
    error_message: str | None = None
    elapsed_ms: int | None = None
    cost: float | None = None  # what the provider reports charging (MindVideo), in its own unit
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


class ProviderError(Exception):
    """Base for provider failures. `user_message` is safe to show (an encoded catalogue message, rendered in the
    server's language on the status message: bot/i18n); str() is for logs."""

    user_message = msg("provider.failed").encode()
    code = "provider_error"


class ProviderAuthError(ProviderError):
    """401/403: the bot's API key or account is wrong. Not the user's fault; never retried."""

    user_message = msg("provider.auth").encode()
    code = "provider_auth"


class ProviderRejected(ProviderError):
    """400/402/404/422: the provider refused this request. Never retried."""

    code = "provider_rejected"

    def __init__(self, status: int, detail: str | None) -> None:
        super().__init__(f"HTTP {status}: {detail or 'no detail'}")
        self.status = status
        self.detail = detail
        if status == 402:
            self.user_message = msg("provider.out_of_credits").encode()
        elif detail:  # the provider's own words, as it wrote them
            self.user_message = msg("provider.rejected_detail", detail=detail).encode()
        else:
            self.user_message = msg("provider.rejected").encode()


class ProviderUnavailable(ProviderError):
    """429/5xx/network errors that outlived every retry."""

    user_message = msg("provider.unavailable").encode()
    code = "provider_unavailable"


class SubmitOutcomeUnknown(ProviderError):
    """The submit request was sent but no answer came back, so a task may or may not exist."""

    user_message = msg("provider.submit_unknown").encode()
    code = "submit_unknown"


class ProviderProtocolError(ProviderError):
    """The provider answered with a payload this bot does not understand."""

    user_message = msg("provider.protocol").encode()
    code = "provider_protocol"


class ImageProvider(Protocol):
    """What the job runner needs from an image API."""

    name: str
    idempotent_submit: bool

    def unsupported(self, model: str, params: dict[str, Any]) -> Msg | None:
        """Why this provider cannot serve a request (Hub model id and Hub-shaped params), or None if it can."""
        ...

    def request_body(self, model: str, params: dict[str, Any]) -> dict[str, Any]:
        """The exact request this provider would be sent (stored before sending, so a resend is identical)."""
        ...

    async def submit(self, body: dict[str, Any], idempotency_key: str) -> str:
        """Send a body from `request_body` and return the task id. Raises SubmitOutcomeUnknown when a task may
        exist although no id came back, ProviderUnavailable only when none can exist."""
        ...

    async def poll(self, task_id: str) -> TaskStatus:
        """Return the task's current state."""
        ...

    async def download(self, url: str, max_bytes: int) -> bytes:
        """Fetch one result image (http(s) or data: URL), refusing more than `max_bytes`."""
        ...
