"""Drives jobs from their rows: submit, poll adaptively under a deadline, download, deliver once.

Every step is recorded before the next begins, so `start()` after a crash or restart resumes each
undelivered job where it stood: submitted jobs are polled again (never resubmitted), finished ones are
delivered, and a delivery that may already have happened is looked up before posting again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from bot.jobs.delivery import DeliveryError, Phase, Publisher, StatusUpdate
from bot.jobs.messages import USER_CANCELLED, JobMessages, RunnerConfig
from bot.jobs.models import Job, JobState
from bot.jobs.schedule import DurationStats, poll_offsets
from bot.jobs.store import JobStore
from bot.media import ImageError, OutputImage, TooLargeToPost
from bot.providers.base import (
    ImageProvider,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailable,
    SubmitOutcomeUnknown,
    TaskState,
    TaskStatus,
)
from bot.providers.catalog import MODELS
from bot.quota.service import QuotaService
from bot.rendering import text

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_PRIOR_SECONDS = 30.0
POLL_JITTER = 0.03

_FINAL_STATES = {
    TaskState.FAILED: JobState.FAILED,
    TaskState.TIMEOUT: JobState.TIMED_OUT,
    TaskState.CANCELLED: JobState.CANCELLED,
}


class JobRunner(JobMessages):
    """Owns one named task per live job and the shared limits they run under."""

    def __init__(
        self,
        store: JobStore,
        providers: Mapping[str, ImageProvider],
        publisher: Publisher,
        quota: QuotaService,
        config: RunnerConfig,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._providers = providers
        self._publisher = publisher
        self._quota = quota
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self._slots = asyncio.Semaphore(config.max_active)
        self._downloads = asyncio.Semaphore(config.max_parallel_downloads)
        self._user_slots: dict[int, asyncio.Semaphore] = {}
        self._user_jobs: Counter[int] = Counter()  # jobs per user holding or waiting for its slot
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._last_edit: dict[int, float] = {}
        self.stats = DurationStats()

    async def start(self) -> None:
        """Learn durations from history and resume every undelivered job."""
        for key, duration_ms in reversed(await self._store.recent_durations()):
            self.stats.add(key, duration_ms / 1000)
        pending = await self._store.undelivered()
        for job in pending:
            self.enqueue(job.id)
        if pending:
            log.info("resuming %d unfinished job(s)", len(pending))

    def enqueue(self, job_id: int) -> None:
        """Start driving a job (no-op if it is already being driven)."""
        if job_id in self._tasks:
            return
        task = asyncio.create_task(self._drive(job_id), name=f"job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda t: self._forget(job_id, t))

    def _forget(self, job_id: int, task: asyncio.Task[None]) -> None:
        self._tasks.pop(job_id, None)
        self._last_edit.pop(job_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("job %d task crashed", job_id, exc_info=task.exception())

    async def join(self, job_id: int) -> None:
        """Wait until the job's task (if any) has finished."""
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.shield(task)

    @property
    def active_jobs(self) -> int:
        return len(self._tasks)

    async def cancel(self, job_id: int) -> Job:
        """Stop a queued or running job: no more polling, state cancelled, credits given back.

        The Hub documents no way to cancel a task, so a task already submitted may still finish there;
        its result is simply not fetched or posted.
        """
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        job = await self._store.get(job_id)
        if job.state.terminal:
            if job.delivered_at is None:
                self.enqueue(job_id)  # it finished meanwhile: let delivery go on
            return job
        job = await self._finish(job, JobState.CANCELLED, USER_CANCELLED, text.CANCELLED)
        await self._deliver(job, None)
        return job

    async def close(self) -> None:
        """Stop driving jobs. Their rows stay as they are, to be resumed by the next start()."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- one job ---------------------------------------------------------------------------------

    async def _drive(self, job_id: int) -> None:
        job = await self._store.get(job_id)
        images: list[OutputImage] | None = None
        try:
            if not job.state.terminal:
                job, images = await self._run_in_turn(job)
            if job.delivered_at is None:
                await self._deliver(job, images)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %d: unexpected error", job_id)
            await self._fail_after_crash(job_id)

    async def _run_in_turn(self, job: Job) -> tuple[Job, list[OutputImage] | None]:
        """Wait for a slot (the user's and the bot's), showing the place in line, then run at the provider."""
        user = job.user_id
        if user not in self._user_slots:
            self._user_slots[user] = asyncio.Semaphore(self._config.max_running_per_user)
        user_slot = self._user_slots[user]
        self._user_jobs[user] += 1
        try:
            if job.state is JobState.QUEUED and (user_slot.locked() or self._slots.locked()):
                if user_slot.locked():
                    position = await self._store.queued_before_for_user(job.id, user)
                else:
                    position = await self._store.queued_before(job.id)
                job = await self._show(job, StatusUpdate(Phase.QUEUED, position=position))
            async with user_slot, self._slots:
                return await self._run_at_provider(job)
        finally:
            self._user_jobs[user] -= 1
            if not self._user_jobs[user]:  # nobody else of this user waits on it: don't keep it forever
                del self._user_jobs[user], self._user_slots[user]

    async def _run_at_provider(self, job: Job) -> tuple[Job, list[OutputImage] | None]:
        provider = self._providers.get(job.provider)
        if provider is None:
            return await self._finish(job, JobState.FAILED, "no_provider", text.PROVIDER_NOT_CONFIGURED), None
        if job.state is JobState.QUEUED:
            job = await self._submit(job, provider)
            if job.state.terminal:
                return job, None
            provider = self._providers[job.provider]  # failover may have moved the job
        job = await self._show(job, StatusUpdate(Phase.GENERATING))
        return await self._poll(job, provider)

    async def _submit(self, job: Job, provider: ImageProvider) -> Job:
        if job.submit_started_at is not None and not provider.idempotent_submit:
            # A previous process sent the request and died before recording the answer. Sending it
            # again could run (and bill) the task twice, so stop here and tell the user.
            log.warning("job %d: submit outcome unknown after restart; not resubmitting", job.id)
            return await self._finish(
                job, JobState.FAILED, SubmitOutcomeUnknown.code, SubmitOutcomeUnknown.user_message
            )
        params = job.params
        if job.kind == "edit":
            job, hosted = await self._hosted_inputs(job)
            if hosted is None:
                return await self._finish(job, JobState.FAILED, "input_unavailable", text.INPUT_UNAVAILABLE)
            params = {**params, **hosted}
        while True:
            await self._store.mark_submit_started(job.id, self._clock())
            try:
                task_id = await provider.submit(job.model, params, f"job-{job.id}")
                break
            except ProviderUnavailable as exc:
                fallback = self._next_provider(job)
                if fallback is None:
                    log.warning("job %d: submit to %s failed: %s", job.id, provider.name, exc)
                    return await self._finish(job, JobState.FAILED, exc.code, exc.user_message)
                # Unreachable or 5xx: no task was created there, so the next provider may take it.
                log.warning("job %d: %s unavailable (%s); failing over to %s", job.id, provider.name, exc, fallback)
                key = job.duration_key.replace(f"{job.provider}:", f"{fallback}:", 1)
                await self._store.switch_provider(job.id, fallback, key)
                job = dataclasses.replace(job, provider=fallback, duration_key=key, submit_started_at=None)
                provider = self._providers[fallback]
            except ProviderError as exc:
                level = logging.ERROR if isinstance(exc, ProviderAuthError) else logging.WARNING
                log.log(level, "job %d: submit to %s failed: %s", job.id, provider.name, exc)
                return await self._finish(job, JobState.FAILED, exc.code, exc.user_message)
        now = self._clock()
        await self._store.mark_submitted(job.id, task_id, now, now + self._config.deadline_seconds)
        if job.kind == "edit":
            await self._store.drop_input_bytes(job.id)  # the status message hosts them now
        log.info("job %d: submitted to %s as task %s", job.id, provider.name, task_id)
        return await self._store.get(job.id)

    def _next_provider(self, job: Job) -> str | None:
        route = list(job.route)
        later = route[route.index(job.provider) + 1 :] if job.provider in route else []
        return next((name for name in later if name in self._providers), None)

    async def _hosted_inputs(self, job: Job) -> tuple[Job, dict[str, object] | None]:
        """Host an edit's inputs on its status message and return fresh URLs for the provider.

        Discord's signed attachment URLs expire, so they are fetched again right before each submit; the
        status message is the bot's own, so they can always be refreshed, even long after a restart.
        """
        inputs = await self._store.inputs(job.id)
        if job.status_message_id is None:
            job = await self._show(job, StatusUpdate(Phase.GENERATING))
        try:
            urls = await self._retrying(job, lambda: self._publisher.input_urls(job))
        except DeliveryError as exc:
            log.warning("job %d: input images unavailable: %s", job.id, exc)
            return job, None
        if len(urls) != len(inputs):
            log.warning("job %d: %d input(s) hosted, %d expected", job.id, len(urls), len(inputs))
            return job, None
        hosted: dict[str, object] = {"image_urls": [u for u, i in zip(urls, inputs, strict=True) if i.role == "image"]}
        masks = [u for u, i in zip(urls, inputs, strict=True) if i.role == "mask"]
        if masks:
            hosted["mask_url"] = masks[0]
        return job, hosted

    async def _poll(self, job: Job, provider: ImageProvider) -> tuple[Job, list[OutputImage] | None]:
        assert job.provider_task_id is not None and job.submitted_at is not None and job.deadline_at is not None
        spec = MODELS.get(job.model)
        estimate = self.stats.estimate(job.duration_key, spec.typical_seconds if spec else DEFAULT_PRIOR_SECONDS)
        offsets = poll_offsets(estimate, self._config.poll_min_interval, self._config.poll_max_interval)
        # Jobs submitted together share an estimate; a per-job stretch keeps them from polling in waves.
        stretch = random.uniform(1 - POLL_JITTER, 1 + POLL_JITTER)
        next_at = job.submitted_at + next(offsets) * stretch
        polls = 0
        while True:
            now = self._clock()
            if now >= job.deadline_at:
                log.info("job %d: deadline reached after %d polls", job.id, polls)
                return await self._finish(job, JobState.TIMED_OUT, "deadline", text.DEADLINE_REACHED), None
            if next_at > now:
                await self._sleep(min(next_at, job.deadline_at) - now)
                continue
            polls += 1
            try:
                status = await provider.poll(job.provider_task_id)
            except ProviderUnavailable as exc:
                log.warning("job %d: poll failed, will keep trying until the deadline: %s", job.id, exc)
                status = None
            except ProviderError as exc:
                log.warning("job %d: poll refused: %s", job.id, exc)
                return await self._finish(job, JobState.FAILED, exc.code, exc.user_message), None
            now = self._clock()
            while next_at <= now:
                next_at = job.submitted_at + next(offsets) * stretch
            if status is None or not status.state.terminal:
                if status is not None and status.state is TaskState.RUNNING and job.state is JobState.SUBMITTED:
                    await self._store.mark_running(job.id)
                    job = dataclasses.replace(job, state=JobState.RUNNING)
                log.debug("job %d: poll %d: %s", job.id, polls, status.state if status else "unavailable")
                continue
            log.info("job %d: task %s after %d polls", job.id, status.state, polls)
            started = time.perf_counter()
            result = await self._on_terminal(job, provider, status)
            log.debug("job %d: result handled in %.0f ms", job.id, (time.perf_counter() - started) * 1000)
            return result

    async def _on_terminal(
        self, job: Job, provider: ImageProvider, status: TaskStatus
    ) -> tuple[Job, list[OutputImage] | None]:
        assert job.submitted_at is not None
        if status.state is not TaskState.SUCCEEDED:
            log.info(
                "job %d: provider said %s: code=%s message=%s",
                job.id,
                status.state,
                status.error_code,
                status.error_message,
            )
            reason = text.task_failed(status.state.value, status.error_message)
            return await self._finish(
                job, _FINAL_STATES[status.state], status.error_code or status.state.value, reason
            ), None
        if not status.images:
            log.error("job %d: completed without images; payload: %.2000s", job.id, status.raw)
            return await self._finish(job, JobState.FAILED, "no_images", text.NO_IMAGES), None
        started = time.perf_counter()
        try:
            images = await self._fetch_images(job, provider, status.images)
        except (ProviderError, ImageError) as exc:
            log.warning("job %d: result unusable: %s", job.id, exc)
            if isinstance(exc, ProviderError):
                message = exc.user_message
            elif isinstance(exc, TooLargeToPost):
                message = text.TOO_LARGE_TO_POST
            else:
                message = text.image_unusable(str(exc))
            return await self._finish(job, JobState.FAILED, "bad_result", message), None
        log.debug("job %d: fetched %d image(s) in %.0f ms", job.id, len(images), (time.perf_counter() - started) * 1000)
        duration_ms = status.elapsed_ms or int((self._clock() - job.submitted_at) * 1000)
        if status.cost is not None:
            await self._store.set_provider_cost(job.id, status.cost)
            job = dataclasses.replace(job, provider_cost=status.cost)
        self.stats.add(job.duration_key, duration_ms / 1000)
        job = await self._finish(
            job, JobState.SUCCEEDED, duration_ms=duration_ms, result_urls=status.images, delivery_started=True
        )
        return job, images

    async def _finish(
        self,
        job: Job,
        state: JobState,
        error_code: str | None = None,
        error_message: str | None = None,
        *,
        duration_ms: int | None = None,
        result_urls: tuple[str, ...] = (),
        delivery_started: bool = False,
    ) -> Job:
        now = self._clock()
        finish = functools.partial(
            self._store.finish,
            job.id,
            state,
            now,
            duration_ms=duration_ms,
            result_urls=result_urls,
            error_code=error_code,
            error_message=error_message,
            delivery_started=delivery_started,
        )
        refunded = False
        if state is JobState.SUCCEEDED:
            changed = await finish()  # one statement: the charge stays, nothing else to write
        else:
            # The state change and the refund are one transaction: a crash can lose neither, nor repeat it.
            async with self._store.transaction() as tx:
                changed = await finish(tx=tx)
                if changed:
                    refunded = await self._quota.refund(tx, job.id)
        if not changed:  # someone else ended it first; the row says how
            return await self._store.get(job.id)
        log.info("job %d: %s%s", job.id, state, f" (refunded {job.cost} credits)" if refunded else "")
        return dataclasses.replace(
            job,
            state=state,
            finished_at=now,
            duration_ms=duration_ms,
            result_urls=result_urls,
            error_code=error_code,
            error_message=error_message,
            delivery_started_at=now if delivery_started else None,
        )

    async def _fail_after_crash(self, job_id: int) -> None:
        try:
            job = await self._store.get(job_id)
            if not job.state.terminal:
                job = await self._finish(job, JobState.FAILED, "internal", text.GENERIC_FAILURE)
            if job.delivered_at is None and job.state is not JobState.SUCCEEDED:
                await self._deliver(job, None)
        except Exception:
            log.exception("job %d: could not record the failure", job_id)
