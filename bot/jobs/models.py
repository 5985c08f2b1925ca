"""The job row and its states."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, fields
from typing import Any

from bot.db.base import Row


class JobState(enum.StrEnum):
    """preparing -> queued -> submitted -> running -> succeeded | failed | timed_out | cancelled."""

    PREPARING = "preparing"  # the row exists (and is charged) while an edit's images are read
    QUEUED = "queued"
    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELLED)


@dataclass(frozen=True)
class Job:
    """One generate or edit request, as stored."""

    id: int
    kind: str
    state: JobState
    provider: str
    model: str
    params: dict[str, Any]
    prompt: str
    duration_key: str
    user_id: int
    guild_id: int | None
    channel_id: int
    upload_limit: int
    status_message_id: int | None
    provider_task_id: str | None
    submit_started_at: float | None
    submitted_at: float | None
    deadline_at: float | None
    finished_at: float | None
    duration_ms: int | None
    result_urls: tuple[str, ...]
    error_code: str | None
    error_message: str | None
    delivery_started_at: float | None
    delivered_at: float | None
    result_message_id: int | None
    delivery_error: str | None
    created_at: float
    cost: int = 0
    reply_to_message_id: int | None = None
    route: tuple[str, ...] = ()
    provider_cost: float | None = None
    idempotency_key: str = ""
    submit_body: str | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    notice: str | None = None
    status_post_started_at: float | None = None
    delivery_attempts: int = 0
    retry_at: float | None = None
    closed_at: float | None = None
    slot_at: float | None = None
    start_low_ms: int | None = None  # a finished task's last poll still waiting and first one processing
    start_high_ms: int | None = None  # (ms after submission), when polls saw both
    answer_token: str | None = field(default=None, repr=False)  # a credential: never logged

    @classmethod
    def from_row(cls, row: Row) -> Job:
        # Only the columns this version knows: during a rolling upgrade on PostgreSQL, a newer process may have
        # added columns while this one still runs.
        data = {name: value for name, value in dict(row).items() if name in _JOB_FIELDS}
        data["state"] = JobState(data["state"])
        data["params"] = json.loads(data["params"])
        data["result_urls"] = tuple(json.loads(data["result_urls"] or "[]"))
        data["route"] = tuple(json.loads(data.get("route") or "[]"))
        return cls(**data)

    @property
    def seed(self) -> int | None:
        seed = self.params.get("seed")
        return seed if isinstance(seed, int) else None

    @property
    def count(self) -> int:
        count = self.params.get("num_images", 1)
        return count if isinstance(count, int) else 1


_JOB_FIELDS = frozenset(f.name for f in fields(Job))


@dataclass(frozen=True)
class JobInput:
    """An input image of an edit job; `data` is None once the status message hosts it."""

    position: int
    role: str  # image | mask
    filename: str
    content_type: str
    data: bytes | None
