"""SQL for jobs. Constant statements, bound parameters, timestamps as UTC epoch seconds.

Transitions are guarded by the expected current state, and the ones that start work at a provider by the
lease, so a process that lost its claim on a job cannot act on it.
"""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from typing import Any, NamedTuple

from bot.db import Database
from bot.db.database import Transaction
from bot.jobs.models import Job, JobInput

_INSERT = """
INSERT INTO jobs (kind, state, provider, model, params, prompt, duration_key, user_id, guild_id, channel_id,
                  upload_limit, cost, reply_to_message_id, route, created_at, idempotency_key, lease_owner,
                  lease_expires_at, answer_token)
VALUES (:kind, :state, :provider, :model, :params, :prompt, :duration_key, :user_id, :guild_id, :channel_id,
        :upload_limit, :cost, :reply_to_message_id, :route, :created_at, :idempotency_key, :lease_owner,
        :lease_expires_at, :answer_token)
RETURNING *
"""
_GET = "SELECT * FROM jobs WHERE id = ?"
_BY_RESULT_MESSAGE = "SELECT * FROM jobs WHERE result_message_id = ?"
_INSERT_INPUT = """
INSERT INTO job_inputs (job_id, position, role, filename, content_type, data) VALUES (?, ?, ?, ?, ?, ?)
"""
_INPUTS = "SELECT position, role, filename, content_type, data FROM job_inputs WHERE job_id = ? ORDER BY position"
_DROP_INPUT_BYTES = "UPDATE job_inputs SET data = NULL WHERE job_id = ? AND data IS NOT NULL"
# EXISTS looks up each of the few rows that still hold bytes, instead of listing every ended job first.
_SWEEP_INPUT_BYTES = """
UPDATE job_inputs SET data = NULL
WHERE data IS NOT NULL
  AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = job_inputs.job_id AND jobs.state NOT IN ('preparing', 'queued'))
"""
_READY = "UPDATE jobs SET state = 'queued' WHERE id = ? AND state = 'preparing'"
_SWITCH_PROVIDER = """
UPDATE jobs SET provider = ?, duration_key = ?, submit_started_at = NULL, submit_body = NULL
WHERE id = ? AND state = 'queued'
"""
_PROVIDER_COST = "UPDATE jobs SET provider_cost = ? WHERE id = ?"
_SET_STATUS_MESSAGE = "UPDATE jobs SET status_message_id = ? WHERE id = ?"
_STATUS_POST_STARTED = "UPDATE jobs SET status_post_started_at = ? WHERE id = ?"
_SUBMIT_STARTED = """
UPDATE jobs SET submit_started_at = ?, submit_body = ?
WHERE id = ? AND state = 'queued' AND lease_owner = ? AND lease_expires_at > ?
"""
_SUBMITTED = """
UPDATE jobs SET state = 'submitted', provider_task_id = ?, submitted_at = ?, deadline_at = ?
WHERE id = ? AND state = 'queued'
"""
_RUNNING = "UPDATE jobs SET state = 'running' WHERE id = ? AND state = 'submitted'"
_DELIVERED = """
UPDATE jobs SET delivered_at = ?, result_message_id = ?, notice = ? WHERE id = ? AND delivered_at IS NULL
"""
_DELIVERY_STARTED = "UPDATE jobs SET delivery_started_at = ? WHERE id = ? AND delivered_at IS NULL"
_DELIVERY_POSTPONED = """
UPDATE jobs SET delivery_attempts = delivery_attempts + 1, retry_at = ?, lease_owner = NULL
WHERE id = ? AND lease_owner = ?
"""
_CLOSE = """
UPDATE jobs SET closed_at = ?, lease_owner = NULL, lease_expires_at = NULL, answer_token = NULL
WHERE id = ? AND closed_at IS NULL
"""
_CLAIM = """
UPDATE jobs SET lease_owner = :owner, lease_expires_at = :expires
WHERE id = :id AND closed_at IS NULL
  AND (lease_owner IS NULL OR lease_owner = :owner OR lease_expires_at < :now)
  AND (retry_at IS NULL OR retry_at <= :now)
"""
_RENEW = "UPDATE jobs SET lease_expires_at = ? WHERE lease_owner = ? AND closed_at IS NULL"
_RELEASE = "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE id = ? AND lease_owner = ?"
_RELEASE_ALL = "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = ? AND closed_at IS NULL"
_CLAIMABLE = """
SELECT id FROM jobs
WHERE closed_at IS NULL AND (lease_owner IS NULL OR lease_expires_at < ?) AND (retry_at IS NULL OR retry_at <= ?)
ORDER BY id LIMIT ?
"""
# Claim a batch in one statement. On PostgreSQL the inner SELECT locks the rows it picks and skips rows another
# process is claiming this instant (FOR UPDATE SKIP LOCKED), so racing processes split the backlog instead of
# queueing behind each other's row locks; the outer WHERE re-checks the lease after any wait.
_CLAIM_BATCH = """
UPDATE jobs SET lease_owner = :owner, lease_expires_at = :expires
WHERE id IN (
    SELECT id FROM jobs
    WHERE closed_at IS NULL AND (lease_owner IS NULL OR lease_expires_at < :now)
      AND (retry_at IS NULL OR retry_at <= :now)
    ORDER BY id LIMIT :limit {lock}
) AND closed_at IS NULL AND (lease_owner IS NULL OR lease_expires_at < :now)
RETURNING id
"""
# Jobs this owner holds that are cancelled (maybe by another process, which answered the Cancel click).
_CANCELLED_WHILE_HELD = """
SELECT id FROM jobs WHERE lease_owner = ? AND closed_at IS NULL AND state = 'cancelled'
"""
# Slots: a job at (or being sent to) an image service holds one; the caps count them across processes.
_SLOT_OF = "SELECT slot_at, state FROM jobs WHERE id = ?"
_SLOTS_TAKEN = """
SELECT COUNT(*), COALESCE(SUM(CASE WHEN user_id = ? THEN 1 ELSE 0 END), 0) FROM jobs
WHERE slot_at IS NOT NULL AND state IN ('queued', 'submitted', 'running')
"""
_TAKE_SLOT = "UPDATE jobs SET slot_at = ? WHERE id = ? AND state = 'queued' AND slot_at IS NULL"
_DURATIONS_SINCE = """
SELECT id, duration_key, duration_ms, finished_at, start_low_ms, start_high_ms FROM jobs
WHERE state = 'succeeded' AND duration_ms IS NOT NULL AND finished_at > ?
ORDER BY finished_at LIMIT ?
"""
_RECENT_DURATIONS = """
SELECT id, duration_key, duration_ms, finished_at, start_low_ms, start_high_ms FROM jobs
WHERE state = 'succeeded' AND duration_ms IS NOT NULL
ORDER BY finished_at DESC LIMIT ?
"""
_QUEUED_BEFORE = "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND id < ?"
_USER_QUEUED_BEFORE = "SELECT COUNT(*) FROM jobs WHERE user_id = ? AND state = 'queued' AND id < ?"

# The statements the hot paths run, for the query-plan test and the benchmark.
HOT_QUERIES = {
    "claimable": (_CLAIMABLE, (0.0, 0.0, 100)),
    "queue_position": (_QUEUED_BEFORE, (10**9,)),
    "user_queue_position": (_USER_QUEUED_BEFORE, (1, 10**9)),
    "by_result_message": (_BY_RESULT_MESSAGE, (1,)),
    "recent_durations": (_RECENT_DURATIONS, (5000,)),
    "durations_since": (_DURATIONS_SINCE, (0.0, 5000)),
}


class Duration(NamedTuple):
    """A succeeded job's task duration and, when its polls saw both, the last one still waiting and the first one
    processing (ms after submission)."""

    job_id: int
    key: str
    ms: int
    finished_at: float
    start_low_ms: int | None
    start_high_ms: int | None

    @property
    def start(self) -> tuple[float, float] | None:
        """The bracket around the task's start of processing, in seconds, if seen."""
        if self.start_low_ms is None or self.start_high_ms is None:
            return None
        return self.start_low_ms / 1000, self.start_high_ms / 1000


class LeaseLost(Exception):
    """This process no longer holds the job's lease; another one drives it now."""


class JobStore:
    """Reads and state transitions of job rows."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, job_id: int) -> Job:
        row = await self._db.fetchone(_GET, (job_id,))
        if row is None:
            raise LookupError(f"job {job_id} does not exist")
        return Job.from_row(row)

    async def insert(self, tx: Transaction, **values: Any) -> Job:
        """Insert a job row inside the caller's transaction and return it as stored."""
        rows = await tx.fetchall(_INSERT, _encoded(values))
        return Job.from_row(rows[0])

    async def get_in(self, tx: Transaction, job_id: int) -> Job:
        row = await tx.fetchone(_GET, (job_id,))
        if row is None:
            raise LookupError(f"job {job_id} does not exist")
        return Job.from_row(row)

    async def by_result_message(self, message_id: int) -> Job | None:
        row = await self._db.fetchone(_BY_RESULT_MESSAGE, (message_id,))
        return None if row is None else Job.from_row(row)

    async def store_input(self, job_id: int, item: JobInput) -> None:
        """Write one input image (large: through the bulk lane, after the acknowledgement)."""
        await self._db.execute_bulk(
            _INSERT_INPUT, (job_id, item.position, item.role, item.filename, item.content_type, item.data)
        )

    async def mark_ready(self, job_id: int) -> bool:
        """preparing -> queued, once the inputs are stored; False if the job ended meanwhile."""
        return await self._db.execute(_READY, (job_id,)) == 1

    async def inputs(self, job_id: int) -> list[JobInput]:
        rows = await self._db.fetchall(_INPUTS, (job_id,))
        return [JobInput(int(r[0]), str(r[1]), str(r[2]), str(r[3]), r[4]) for r in rows]

    async def drop_input_bytes(self, job_id: int) -> None:
        """Free a job's input image bytes (freeing megabytes of pages: through the bulk lane, off the loop)."""
        await self._db.execute_bulk(_DROP_INPUT_BYTES, (job_id,))

    async def sweep_input_bytes(self) -> int:
        """Drop the bytes of every job past needing them (hosted, or ended however it ended)."""
        return await self._db.execute_bulk(_SWEEP_INPUT_BYTES)

    async def switch_provider(self, job_id: int, provider: str, duration_key: str) -> None:
        await self._db.execute(_SWITCH_PROVIDER, (provider, duration_key, job_id))

    async def set_provider_cost(self, job_id: int, cost: float) -> None:
        await self._db.execute(_PROVIDER_COST, (cost, job_id))

    async def queued_before(self, job_id: int) -> int:
        row = await self._db.fetchone(_QUEUED_BEFORE, (job_id,))
        return int(row[0]) if row else 0

    async def queued_before_for_user(self, job_id: int, user_id: int) -> int:
        row = await self._db.fetchone(_USER_QUEUED_BEFORE, (user_id, job_id))
        return int(row[0]) if row else 0

    async def mark_status_post_started(self, job_id: int, now: float) -> None:
        await self._db.execute(_STATUS_POST_STARTED, (now, job_id))

    async def set_status_message(self, job_id: int, message_id: int) -> None:
        await self._db.execute(_SET_STATUS_MESSAGE, (message_id, job_id))

    async def mark_submit_started(self, job_id: int, owner: str, body: str, now: float) -> None:
        """Record the exact body before it is sent; raise LeaseLost unless this owner still holds the job."""
        if await self._db.execute(_SUBMIT_STARTED, (now, body, job_id, owner, now)) != 1:
            raise LeaseLost(f"job {job_id}")

    async def mark_submitted(self, job_id: int, task_id: str, now: float, deadline: float) -> None:
        await self._db.execute(_SUBMITTED, (task_id, now, deadline, job_id))

    async def mark_running(self, job_id: int) -> None:
        await self._db.execute(_RUNNING, (job_id,))

    async def mark_delivery_started(self, job_id: int, now: float) -> None:
        await self._db.execute(_DELIVERY_STARTED, (now, job_id))

    async def mark_delivered(self, job_id: int, now: float, message_id: int, notice: str) -> None:
        """The result is posted; `notice` is what the status message must now say."""
        await self._db.execute(_DELIVERED, (now, message_id, notice, job_id))

    async def postpone_delivery(self, job_id: int, owner: str, retry_at: float) -> None:
        """Count a failed delivery attempt and let any process try again from `retry_at`."""
        await self._db.execute(_DELIVERY_POSTPONED, (retry_at, job_id, owner))

    async def close(self, job_id: int, now: float) -> None:
        """Nothing is left to do for this job: result posted (or not needed) and the status shows the outcome."""
        await self._db.execute(_CLOSE, (now, job_id))

    # -- leases ------------------------------------------------------------------------------------

    async def claim(self, job_id: int, owner: str, now: float, ttl: float) -> bool:
        """Take (or keep) the job's lease unless another live owner holds it."""
        params = {"owner": owner, "expires": now + ttl, "id": job_id, "now": now}
        return await self._db.execute(_CLAIM, params) == 1

    async def renew(self, owner: str, now: float, ttl: float) -> int:
        return await self._db.execute(_RENEW, (now + ttl, owner))

    async def release(self, job_id: int, owner: str) -> None:
        await self._db.execute(_RELEASE, (job_id, owner))

    async def release_all(self, owner: str) -> None:
        await self._db.execute(_RELEASE_ALL, (owner,))

    async def claim_batch(self, owner: str, now: float, ttl: float, limit: int = 1000) -> list[int]:
        """Take the lease of up to `limit` open jobs nobody (alive) holds, oldest first; their ids."""
        lock = "FOR UPDATE SKIP LOCKED" if self._db.dialect == "postgresql" else ""
        params = {"owner": owner, "expires": now + ttl, "now": now, "limit": limit}
        async with self._db.transaction() as tx:
            rows = await tx.fetchall(_CLAIM_BATCH.format(lock=lock), params)
        return sorted(int(r[0]) for r in rows)

    async def take_slot(self, job_id: int, user_id: int, per_user: int, total: int, now: float) -> bool:
        """Give the job a slot at the image services unless the user's or the bot-wide cap is reached (counted
        over every process); True if it holds one (or needs none: already submitted or ended)."""
        async with self._db.transaction() as tx:
            await tx.lock("job-slots")  # one decision at a time in every process: the count stays true
            row = await tx.fetchone(_SLOT_OF, (job_id,))
            if row is None or row[0] is not None or row[1] != "queued":
                return True
            taken = await tx.fetchone(_SLOTS_TAKEN, (user_id,))
            everyone, users = (int(taken[0]), int(taken[1])) if taken is not None else (0, 0)
            if everyone >= total or users >= per_user:
                return False
            await tx.execute(_TAKE_SLOT, (now, job_id))
            return True

    async def cancelled_while_held(self, owner: str) -> list[int]:
        """Open jobs this owner holds whose row says cancelled (maybe by another process's hand)."""
        return [int(r[0]) for r in await self._db.fetchall(_CANCELLED_WHILE_HELD, (owner,))]

    async def claimable(self, now: float, limit: int = 1000) -> list[int]:
        """Open jobs nobody holds (or whose holder stopped renewing), due now."""
        return [int(r[0]) for r in await self._db.fetchall(_CLAIMABLE, (now, now, limit))]

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        return self._db.transaction()

    async def durations_since(self, finished_after: float, limit: int = 5000) -> list[Duration]:
        """Durations of jobs finished after a moment, oldest first."""
        return _durations(await self._db.fetchall(_DURATIONS_SINCE, (finished_after, limit)))

    async def recent_durations(self, limit: int = 5000) -> list[Duration]:
        """The latest durations, newest first."""
        return _durations(await self._db.fetchall(_RECENT_DURATIONS, (limit,)))


def _encoded(values: dict[str, Any]) -> dict[str, Any]:
    return {**values, "params": json.dumps(values["params"], sort_keys=True), "route": json.dumps(values["route"])}


def _durations(rows: list[Any]) -> list[Duration]:
    return [
        Duration(int(r[0]), str(r[1]), int(r[2]), float(r[3]), _int_or_none(r[4]), _int_or_none(r[5])) for r in rows
    ]


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
