"""The one way a job ends.

`Settler.settle` moves a live job to its terminal state, keeps or refunds its charge (at most once: the ledger
has one refund per job), records what its status message must end up saying, and drops the bytes of its input
images — all in one transaction, so a crash can lose none of it and repeat none of it. Nothing else writes a
terminal state or a refund.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from bot.jobs.delivery import Phase, StatusUpdate
from bot.jobs.models import Job, JobState
from bot.jobs.store import JobStore
from bot.ops.metrics import Metrics
from bot.quota.service import QuotaService

log = logging.getLogger(__name__)

USER_CANCELLED = "user_cancelled"  # vs. "cancelled": the provider cancelled the task

_SETTLE = """
UPDATE jobs SET state = :state, finished_at = :now, duration_ms = :duration_ms, result_urls = :result_urls,
                start_low_ms = :start_low_ms, start_high_ms = :start_high_ms,
                error_code = :error_code, error_message = :error_message, notice = :notice,
                delivery_started_at = :delivery_started_at, closed_at = :closed_at,
                lease_owner = CASE WHEN CAST(:closed_at AS DOUBLE PRECISION) IS NULL THEN lease_owner END,
                answer_token = CASE WHEN CAST(:closed_at AS DOUBLE PRECISION) IS NULL THEN answer_token END
WHERE id = :id AND state IN ('preparing', 'queued', 'submitted', 'running')
"""
_UNDELIVERABLE = """
UPDATE jobs SET state = 'failed', error_code = :error_code, error_message = :error_message, notice = :notice,
                delivery_error = :detail
WHERE id = :id AND state = 'succeeded' AND delivered_at IS NULL
"""


@dataclass(frozen=True)
class Outcome:
    """How a job ended. `reason` is for the member; `quiet` means no status message is needed (the member was
    answered privately before anything was posted)."""

    state: JobState
    code: str | None = None
    reason: str | None = None
    duration_ms: int | None = None
    start_ms: tuple[int, int] | None = None  # the polls around its start of processing, ms after submission
    result_urls: tuple[str, ...] = ()
    quiet: bool = False


def encode_notice(update: StatusUpdate) -> str:
    return json.dumps({k: v for k, v in asdict(update).items() if v not in (None, 0, False)}, sort_keys=True)


def decode_notice(notice: str | None) -> StatusUpdate | None:
    if not notice:
        return None
    data = json.loads(notice)
    return StatusUpdate(
        Phase(data["phase"]),
        reason=data.get("reason"),
        result_message_id=data.get("result_message_id"),
        refunded=bool(data.get("refunded")),
    )


def failure_notice(outcome: Outcome) -> StatusUpdate:
    phase = Phase.CANCELLED if outcome.code == USER_CANCELLED else Phase.FAILED
    return StatusUpdate(phase, reason=outcome.reason, refunded=True)


class Settler:
    """Ends jobs: state, ledger and notice in one transaction."""

    def __init__(
        self, store: JobStore, quota: QuotaService, clock: Callable[[], float], metrics: Metrics | None = None
    ) -> None:
        self._store = store
        self._quota = quota
        self._clock = clock
        self._metrics = metrics

    async def settle(self, job: Job, outcome: Outcome) -> Job:
        """End a live job; if it already ended, return the row as it stands (whoever ended it decided)."""
        now = self._clock()
        succeeded = outcome.state is JobState.SUCCEEDED
        notice = None if succeeded else encode_notice(failure_notice(outcome))
        closed_at = now if outcome.quiet else None
        async with self._store.transaction() as tx:
            changed = await tx.execute(
                _SETTLE,
                {
                    "state": outcome.state.value,
                    "now": now,
                    "duration_ms": outcome.duration_ms,
                    "start_low_ms": outcome.start_ms[0] if outcome.start_ms else None,
                    "start_high_ms": outcome.start_ms[1] if outcome.start_ms else None,
                    "result_urls": json.dumps(list(outcome.result_urls)),
                    "error_code": outcome.code,
                    "error_message": outcome.reason,
                    "notice": notice,
                    "delivery_started_at": now if succeeded else None,
                    "closed_at": closed_at,
                    "id": job.id,
                },
            )
            if not changed:
                return await self._store.get_in(tx, job.id)
            refunded = not succeeded and await self._quota.refund(tx, job.id)
        if job.kind == "edit":
            # Not part of the outcome (the startup sweep catches any a crash leaves), and slow for big images.
            await self._store.drop_input_bytes(job.id)
        log.info("job %d: %s%s", job.id, outcome.state, f" (refunded {job.cost} credits)" if refunded else "")
        if self._metrics is not None:
            self._metrics.job_ended(outcome.state.value)
        return replace(
            job,
            state=outcome.state,
            finished_at=now,
            duration_ms=outcome.duration_ms,
            start_low_ms=outcome.start_ms[0] if outcome.start_ms else None,
            start_high_ms=outcome.start_ms[1] if outcome.start_ms else None,
            result_urls=outcome.result_urls,
            error_code=outcome.code,
            error_message=outcome.reason,
            notice=notice,
            delivery_started_at=now if succeeded else None,
            closed_at=closed_at,
            lease_owner=job.lease_owner if closed_at is None else None,
        )

    async def undeliverable(self, job: Job, reason: str, detail: str) -> Job:
        """A finished image that can never be posted: the job fails and the member gets the credits back."""
        outcome = Outcome(JobState.FAILED, "undeliverable", reason)
        notice = encode_notice(failure_notice(outcome))
        async with self._store.transaction() as tx:
            changed = await tx.execute(
                _UNDELIVERABLE,
                {
                    "error_code": outcome.code,
                    "error_message": reason,
                    "notice": notice,
                    "detail": detail[:500],
                    "id": job.id,
                },
            )
            if not changed:
                return await self._store.get_in(tx, job.id)
            refunded = await self._quota.refund(tx, job.id)
        log.info("job %d: not deliverable (%s)%s", job.id, detail, f"; refunded {job.cost} credits" if refunded else "")
        return replace(job, state=JobState.FAILED, error_code=outcome.code, error_message=reason, notice=notice)
