"""SQL for jobs. Constant statements, bound parameters, timestamps as UTC epoch seconds."""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from typing import Any

from bot.db import Database
from bot.db.database import Transaction
from bot.jobs.models import Job, JobInput, JobState

_INSERT = """
INSERT INTO jobs (kind, state, provider, model, params, prompt, duration_key, user_id, guild_id, channel_id,
                  upload_limit, cost, reply_to_message_id, route, created_at)
VALUES (:kind, 'queued', :provider, :model, :params, :prompt, :duration_key, :user_id, :guild_id, :channel_id,
        :upload_limit, :cost, :reply_to_message_id, :route, :created_at)
"""
_GET = "SELECT * FROM jobs WHERE id = ?"
_BY_RESULT_MESSAGE = "SELECT * FROM jobs WHERE result_message_id = ?"
_INSERT_INPUT = """
INSERT INTO job_inputs (job_id, position, role, filename, content_type, data) VALUES (?, ?, ?, ?, ?, ?)
"""
_INPUTS = "SELECT position, role, filename, content_type, data FROM job_inputs WHERE job_id = ? ORDER BY position"
_DROP_INPUT_BYTES = "UPDATE job_inputs SET data = NULL WHERE job_id = ?"
_SWITCH_PROVIDER = (
    "UPDATE jobs SET provider = ?, duration_key = ?, submit_started_at = NULL WHERE id = ? AND state = 'queued'"
)
_PROVIDER_COST = "UPDATE jobs SET provider_cost = ? WHERE id = ?"
_UNDELIVERED = "SELECT * FROM jobs WHERE delivered_at IS NULL ORDER BY id"
_SET_STATUS_MESSAGE = "UPDATE jobs SET status_message_id = ? WHERE id = ?"
_SUBMIT_STARTED = "UPDATE jobs SET submit_started_at = ? WHERE id = ? AND state = 'queued'"
_SUBMITTED = """
UPDATE jobs SET state = 'submitted', provider_task_id = ?, submitted_at = ?, deadline_at = ?
WHERE id = ? AND state = 'queued'
"""
_RUNNING = "UPDATE jobs SET state = 'running' WHERE id = ? AND state = 'submitted'"
_FINISH = """
UPDATE jobs SET state = ?, finished_at = ?, duration_ms = ?, result_urls = ?, error_code = ?, error_message = ?,
                delivery_started_at = ?
WHERE id = ? AND state IN ('queued', 'submitted', 'running')
"""
_DELIVERY_STARTED = "UPDATE jobs SET delivery_started_at = ? WHERE id = ? AND delivered_at IS NULL"
_DELIVERED = """
UPDATE jobs SET delivered_at = ?, result_message_id = ?, delivery_error = ? WHERE id = ? AND delivered_at IS NULL
"""
_RECENT_DURATIONS = """
SELECT duration_key, duration_ms FROM jobs
WHERE state = 'succeeded' AND duration_ms IS NOT NULL
ORDER BY finished_at DESC LIMIT ?
"""
_QUEUED_BEFORE = "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND id < ?"
_USER_QUEUED_BEFORE = "SELECT COUNT(*) FROM jobs WHERE user_id = ? AND state = 'queued' AND id < ?"


class JobStore:
    """Reads and state transitions of job rows. Transitions are guarded by the expected current state."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, tx: Transaction, **values: Any) -> int:
        values = {
            **values,
            "params": json.dumps(values["params"], sort_keys=True),
            "route": json.dumps(values["route"]),
        }
        return await tx.insert(_INSERT, values)

    async def get(self, job_id: int) -> Job:
        row = await self._db.fetchone(_GET, (job_id,))
        if row is None:
            raise LookupError(f"job {job_id} does not exist")
        return Job.from_row(row)

    async def by_result_message(self, message_id: int) -> Job | None:
        row = await self._db.fetchone(_BY_RESULT_MESSAGE, (message_id,))
        return None if row is None else Job.from_row(row)

    async def insert_input(self, tx: Transaction, job_id: int, item: JobInput) -> None:
        await tx.execute(_INSERT_INPUT, (job_id, item.position, item.role, item.filename, item.content_type, item.data))

    async def inputs(self, job_id: int) -> list[JobInput]:
        rows = await self._db.fetchall(_INPUTS, (job_id,))
        return [JobInput(int(r[0]), str(r[1]), str(r[2]), str(r[3]), r[4]) for r in rows]

    async def switch_provider(self, job_id: int, provider: str, duration_key: str) -> None:
        await self._db.execute(_SWITCH_PROVIDER, (provider, duration_key, job_id))

    async def set_provider_cost(self, job_id: int, cost: float) -> None:
        await self._db.execute(_PROVIDER_COST, (cost, job_id))

    async def drop_input_bytes(self, job_id: int) -> None:
        await self._db.execute(_DROP_INPUT_BYTES, (job_id,))

    async def undelivered(self) -> list[Job]:
        return [Job.from_row(row) for row in await self._db.fetchall(_UNDELIVERED)]

    async def queued_before(self, job_id: int) -> int:
        row = await self._db.fetchone(_QUEUED_BEFORE, (job_id,))
        return int(row[0]) if row else 0

    async def set_status_message(self, job_id: int, message_id: int) -> None:
        await self._db.execute(_SET_STATUS_MESSAGE, (message_id, job_id))

    async def mark_submit_started(self, job_id: int, now: float) -> None:
        await self._db.execute(_SUBMIT_STARTED, (now, job_id))

    async def mark_submitted(self, job_id: int, task_id: str, now: float, deadline: float) -> None:
        await self._db.execute(_SUBMITTED, (task_id, now, deadline, job_id))

    async def mark_running(self, job_id: int) -> None:
        await self._db.execute(_RUNNING, (job_id,))

    async def finish(
        self,
        job_id: int,
        state: JobState,
        now: float,
        *,
        duration_ms: int | None = None,
        result_urls: tuple[str, ...] = (),
        error_code: str | None = None,
        error_message: str | None = None,
        delivery_started: bool = False,
        tx: Transaction | None = None,
    ) -> bool:
        """Move a live job to a terminal state; False if it was already terminal.

        `delivery_started` records, in the same write, that the result is about to be posted.
        """
        changed = await (tx or self._db).execute(
            _FINISH,
            (
                state.value,
                now,
                duration_ms,
                json.dumps(list(result_urls)),
                error_code,
                error_message,
                now if delivery_started else None,
                job_id,
            ),
        )
        return changed == 1

    async def mark_delivery_started(self, job_id: int, now: float) -> None:
        await self._db.execute(_DELIVERY_STARTED, (now, job_id))

    async def mark_delivered(
        self, job_id: int, now: float, message_id: int | None, error: str | None = None, tx: Transaction | None = None
    ) -> None:
        await (tx or self._db).execute(_DELIVERED, (now, message_id, error, job_id))

    async def queued_before_for_user(self, job_id: int, user_id: int) -> int:
        row = await self._db.fetchone(_USER_QUEUED_BEFORE, (user_id, job_id))
        return int(row[0]) if row else 0

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        return self._db.transaction()

    async def recent_durations(self, limit: int = 5000) -> list[tuple[str, int]]:
        rows = await self._db.fetchall(_RECENT_DURATIONS, (limit,))
        return [(str(r[0]), int(r[1])) for r in rows]
