"""Drives jobs from their rows: submit, poll adaptively under a deadline, download, deliver once.

A process drives a job only while it holds the job's lease (owner + expiry on the row, renewed by the sweeper
while driving, taken over by another runner only once it has expired). Every step is recorded before the next
begins, so a runner that claims a job after a crash or restart picks it up where it stood: submitted jobs are
polled again (never resubmitted to a provider without an idempotency key), finished ones are delivered, and a
delivery that may already have happened is looked up before posting again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import secrets
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping

from bot.jobs.delivery import DeliveryError, Phase, Publisher, StatusUpdate
from bot.jobs.messages import JobMessages, Postponed, RunnerConfig
from bot.jobs.models import Job, JobState
from bot.jobs.schedule import DurationStats, poll_offsets
from bot.jobs.settle import USER_CANCELLED, Outcome, Settler
from bot.jobs.store import JobStore, LeaseLost
from bot.media import ImageError, OutputImage, TooLargeToPost
from bot.ops.metrics import Metrics
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

DEFAULT_PRIOR_SECONDS = 30.0
POLL_JITTER = 0.03

_FINAL_STATES = {
    TaskState.FAILED: JobState.FAILED,
    TaskState.TIMEOUT: JobState.TIMED_OUT,
    TaskState.CANCELLED: JobState.CANCELLED,
}


class JobRunner(JobMessages):
    """Owns one named task per job it drives, the shared limits they run under, and the lease sweeper."""

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
        owner: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._providers = providers
        self._publisher = publisher
        self._quota = quota
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self._metrics = metrics
        self._settler = Settler(store, quota, clock, metrics)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.lease_seconds = config.lease_seconds
        self._slots = asyncio.Semaphore(config.max_active)
        self._downloads = asyncio.Semaphore(config.max_parallel_downloads)
        self._user_slots: dict[int, asyncio.Semaphore] = {}
        self._user_jobs: Counter[int] = Counter()  # jobs per user holding or waiting for its slot
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._last_edit: dict[int, float] = {}
        self._places: dict[int, int] = {}  # the place in line each waiting job shows
        self._channel_edits: dict[int, float] = {}  # last queue-place edit per channel
        self._line_moved = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        self._canceller: asyncio.Task[None] | None = None
        self._restarted: set[int] = set()  # jobs ended elsewhere whose task here was restarted to finish the chat
        self.stats = DurationStats()
        self._durations_read = 0.0

    async def start(self) -> None:
        """Learn durations from history, drop input bytes nobody needs, and start the sweeper, which claims every
        open job that no live process holds (all of them after a restart) and renews this process's leases."""
        await self.learn_durations()
        swept = await self._store.sweep_input_bytes()
        if swept:
            log.info("dropped the input images of %d ended job(s)", swept)
        await self.sweep()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="job-sweeper")
        self._canceller = asyncio.create_task(self._watch_cancels(), name="job-cancel-watch")

    async def learn_durations(self) -> None:
        """Task durations learned by every process: read back from the rows each one's settle step wrote."""
        stats = DurationStats()
        for key, duration_ms in reversed(await self._store.recent_durations()):
            stats.add(key, duration_ms / 1000)
        self.stats = stats
        self._durations_read = self._clock()

    async def sweep(self) -> None:
        """Renew this process's leases, start every claimable open job, now and then re-read durations."""
        now = self._clock()
        if now - self._durations_read >= self._config.durations_refresh_interval:
            await self.learn_durations()
        await self._store.renew(self.owner, now, self.lease_seconds)
        claimed = await self._store.claim_batch(self.owner, now, self.lease_seconds)
        pending = [job_id for job_id in claimed if job_id not in self._tasks]
        for job_id in pending:
            self.enqueue(job_id)
        if pending:
            log.info("picked up %d open job(s)", len(pending))

    async def _sweep_forever(self) -> None:
        while True:
            await self._sleep(self._config.sweep_interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("job sweep failed; trying again later")

    async def _watch_cancels(self) -> None:
        """Stop driving jobs another process ended (a Cancel click answered there): the row is the truth."""
        while True:
            await self._sleep(self._config.cancel_check_interval)
            try:
                await self.stop_ended_elsewhere()
            except Exception:
                log.exception("cancel check failed; trying again later")

    async def stop_ended_elsewhere(self) -> None:
        """Cancel the task of each job this process drives whose row is already terminal, then start it again
        to finish the chat work (the status message), as a Cancel handled here would."""
        ended = set(await self._store.cancelled_while_held(self.owner))
        self._restarted &= ended
        for job_id in ended - self._restarted:
            task = self._tasks.get(job_id)
            if task is None:
                continue
            self._restarted.add(job_id)
            log.info("job %d: ended by another process; stopping here", job_id)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self.enqueue(job_id)

    def enqueue(self, job_id: int) -> None:
        """Start driving a job (no-op if it is already being driven here)."""
        if job_id in self._tasks:
            return
        task = asyncio.create_task(self._drive(job_id), name=f"job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda t: self._forget(job_id, t))

    def _forget(self, job_id: int, task: asyncio.Task[None]) -> None:
        if self._tasks.get(job_id) is task:
            del self._tasks[job_id]
        self._last_edit.pop(job_id, None)
        self._places.pop(job_id, None)
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

    async def settle(self, job: Job, outcome: Outcome) -> Job:
        """End a job (see bot.jobs.settle): for callers outside the runner, e.g. an edit whose images were refused."""
        return await self._settler.settle(job, outcome)

    async def cancel(self, job_id: int) -> Job:
        """Stop a job: no more polling, state cancelled, credits given back, status message updated.

        The Hub documents no way to cancel a task, so a task already submitted may still finish there;
        its result is simply not fetched or posted.
        """
        task = self._tasks.get(job_id)
        self._restarted.add(job_id)  # handled here: the cancel watch leaves it alone
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        job = await self._store.get(job_id)
        if not job.state.terminal:
            job = await self._settler.settle(job, Outcome(JobState.CANCELLED, USER_CANCELLED, text.CANCELLED))
        if job.closed_at is None:
            self.enqueue(job_id)  # the status message (or a finished result) still needs the chat
        return job

    async def close(self) -> None:
        """Stop driving jobs and hand their leases back; the rows stay as they are, for the next start()."""
        loops = [t for t in (self._sweeper, self._canceller) if t is not None]
        tasks = [*self._tasks.values(), *loops]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self._store.release_all(self.owner)
        except Exception:
            log.warning("could not release job leases; they expire in %.0fs", self.lease_seconds, exc_info=True)

    # -- one job ---------------------------------------------------------------------------------

    async def _drive(self, job_id: int) -> None:
        if not await self._store.claim(job_id, self.owner, self._clock(), self.lease_seconds):
            return  # another live process holds it, or it is closed or not yet due
        job = await self._store.get(job_id)
        images: list[OutputImage] | None = None
        try:
            if job.state is JobState.PREPARING:
                # Its images were being read by a process that is gone: nothing was sent anywhere.
                job = await self._settler.settle(job, Outcome(JobState.FAILED, "interrupted", text.INTERRUPTED))
            if not job.state.terminal:
                job, images = await self._run_in_turn(job)
            await self._complete(job, images)
        except (LeaseLost, Postponed) as exc:
            log.info("job %d: %s", job_id, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %d: unexpected error", job_id)
            await self._fail_after_crash(job_id)

    async def _run_in_turn(self, job: Job) -> tuple[Job, list[OutputImage] | None]:
        """Wait for a slot (the user's and the bot's), keeping the shown place in line current, then run."""
        user = job.user_id
        if user not in self._user_slots:
            self._user_slots[user] = asyncio.Semaphore(self._config.max_running_per_user)
        user_slot = self._user_slots[user]
        self._user_jobs[user] += 1
        place: asyncio.Task[None] | None = None
        try:
            if job.state is JobState.QUEUED and (user_slot.locked() or self._slots.locked()):
                job = await self._show_place(job, user_slot)
                place = asyncio.create_task(self._track_place(job, user_slot), name=f"job-{job.id}-place")
            async with user_slot, self._slots:
                # The caps hold across processes: the slot is also taken in the database, after this process's.
                if not await self._take_slot(job):
                    if place is None:
                        job = await self._show_place(job, user_slot)
                        place = asyncio.create_task(self._track_place(job, user_slot), name=f"job-{job.id}-place")
                    while not await self._take_slot(job):
                        await self._sleep(self._config.slot_retry_interval)
                if place is not None:
                    place.cancel()
                    await asyncio.gather(place, return_exceptions=True)
                return await self._run_at_provider(job)
        finally:
            if place is not None:
                place.cancel()
            self._user_jobs[user] -= 1
            if not self._user_jobs[user]:  # nobody else of this user waits on it: don't keep it forever
                del self._user_jobs[user], self._user_slots[user]
            self._line_advanced()

    async def _take_slot(self, job: Job) -> bool:
        config = self._config
        return await self._store.take_slot(
            job.id, job.user_id, config.max_running_per_user, config.max_active, self._clock()
        )

    def _line_advanced(self) -> None:
        """Wake the jobs waiting in line: one ahead of them left the line (submitted, ended or gone)."""
        self._line_moved.set()
        self._line_moved = asyncio.Event()

    async def _show_place(self, job: Job, user_slot: asyncio.Semaphore, shown: int | None = None) -> Job:
        """Show how many queued jobs are ahead (of this user's, when the user's own cap is what holds it back)."""
        if user_slot.locked():
            position = await self._store.queued_before_for_user(job.id, job.user_id)
        else:
            position = await self._store.queued_before(job.id)
        if position == shown:
            return job
        # Queue updates share one channel's edit budget: at most one per channel per interval.
        wait = self._channel_edits.get(job.channel_id, 0.0) + self._config.queue_edit_interval - self._clock()
        if wait > 0:
            await self._sleep(wait)
        self._channel_edits[job.channel_id] = self._clock()
        self._places[job.id] = position
        return await self._show(job, StatusUpdate(Phase.QUEUED, position=position))

    async def _track_place(self, job: Job, user_slot: asyncio.Semaphore) -> None:
        """While a job waits, update its place whenever the line moves (or now and then, for other processes)."""
        while True:
            moved = self._line_moved  # taken before reading, so a move during the read is not missed
            job = await self._show_place(job, user_slot, self._places.get(job.id))
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that races the event.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._config.queue_refresh_interval):
                    await moved.wait()

    async def _run_at_provider(self, job: Job) -> tuple[Job, list[OutputImage] | None]:
        provider = self._providers.get(job.provider)
        if provider is None:
            return await self._end(job, JobState.FAILED, "no_provider", text.PROVIDER_NOT_CONFIGURED), None
        if job.state is JobState.QUEUED:
            job = await self._submit(job, provider)
            if job.state.terminal:
                return job, None
            provider = self._providers[job.provider]  # failover may have moved the job
        job = await self._show(job, StatusUpdate(Phase.GENERATING))
        return await self._poll(job, provider)

    async def _end(self, job: Job, state: JobState, code: str, reason: str) -> Job:
        return await self._settler.settle(job, Outcome(state, code, reason))

    async def _submit(self, job: Job, provider: ImageProvider) -> Job:
        if job.submit_started_at is not None and not provider.idempotent_submit:
            # A previous process sent the request and died before recording the answer. Sending it
            # again could run (and bill) the task twice, so stop here and tell the user.
            log.warning("job %d: submit outcome unknown after restart; not resubmitting", job.id)
            return await self._end(job, JobState.FAILED, SubmitOutcomeUnknown.code, SubmitOutcomeUnknown.user_message)
        while True:
            if job.submit_body is not None and provider.idempotent_submit:
                body = json.loads(job.submit_body)  # a resend must be byte-identical to what was first sent
            else:
                params = job.params
                if job.kind == "edit":
                    job, hosted = await self._hosted_inputs(job)
                    if hosted is None:
                        return await self._end(job, JobState.FAILED, "input_unavailable", text.INPUT_UNAVAILABLE)
                    params = {**params, **hosted}
                body = provider.request_body(job.model, params)
            encoded = json.dumps(body, sort_keys=True)
            await self._store.mark_submit_started(job.id, self.owner, encoded, self._clock())
            job = dataclasses.replace(job, submit_body=encoded, submit_started_at=self._clock())
            try:
                task_id = await provider.submit(body, job.idempotency_key)
                break
            except ProviderUnavailable as exc:
                fallback = self._next_provider(job)
                if fallback is None:
                    log.warning("job %d: submit to %s failed: %s", job.id, provider.name, exc)
                    return await self._end(job, JobState.FAILED, exc.code, exc.user_message)
                # Unreachable or rate-limited: no task was created there, so the next provider may take it.
                log.warning("job %d: %s unavailable (%s); failing over to %s", job.id, provider.name, exc, fallback)
                key = job.duration_key.replace(f"{job.provider}:", f"{fallback}:", 1)
                await self._store.switch_provider(job.id, fallback, key)
                job = dataclasses.replace(
                    job, provider=fallback, duration_key=key, submit_started_at=None, submit_body=None
                )
                provider = self._providers[fallback]
            except ProviderError as exc:
                level = logging.ERROR if isinstance(exc, ProviderAuthError) else logging.WARNING
                log.log(level, "job %d: submit to %s failed: %s", job.id, provider.name, exc)
                return await self._end(job, JobState.FAILED, exc.code, exc.user_message)
        now = self._clock()
        await self._store.mark_submitted(job.id, task_id, now, now + self._config.deadline_seconds)
        self._line_advanced()
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
            # Poll at least once before judging the deadline: after an outage the task may have finished (and been
            # billed) while nobody was looking.
            if polls and now >= job.deadline_at:
                log.info("job %d: deadline reached after %d polls", job.id, polls)
                return await self._end(job, JobState.TIMED_OUT, "deadline", text.DEADLINE_REACHED), None
            if next_at > now and (polls or now < job.deadline_at):
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
                return await self._end(job, JobState.FAILED, exc.code, exc.user_message), None
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
            return await self._end(
                job, _FINAL_STATES[status.state], status.error_code or status.state.value, reason
            ), None
        if not status.images:
            log.error("job %d: completed without images; payload: %.2000s", job.id, status.raw)
            return await self._end(job, JobState.FAILED, "no_images", text.NO_IMAGES), None
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
            return await self._end(job, JobState.FAILED, "bad_result", message), None
        log.debug("job %d: fetched %d image(s) in %.0f ms", job.id, len(images), (time.perf_counter() - started) * 1000)
        duration_ms = status.elapsed_ms or int((self._clock() - job.submitted_at) * 1000)
        if status.cost is not None:
            await self._store.set_provider_cost(job.id, status.cost)
            job = dataclasses.replace(job, provider_cost=status.cost)
        self.stats.add(job.duration_key, duration_ms / 1000)
        outcome = Outcome(JobState.SUCCEEDED, duration_ms=duration_ms, result_urls=status.images)
        return await self._settler.settle(job, outcome), images

    async def _fail_after_crash(self, job_id: int) -> None:
        try:
            job = await self._store.get(job_id)
            if not job.state.terminal:
                job = await self._end(job, JobState.FAILED, "internal", text.GENERIC_FAILURE)
            await self._complete(job, None)
        except Postponed:
            pass
        except Exception:
            log.exception("job %d: could not record the failure; trying again later", job_id)
            try:
                await self._postpone(job_id)
            except Exception:
                log.exception("job %d: could not postpone it either", job_id)
