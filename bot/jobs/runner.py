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
import logging
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping

from bot.jobs.acks import AcksFirst
from bot.jobs.delivery import DeliveryError, Phase, Publisher, StatusUpdate
from bot.jobs.messages import Postponed, RunnerConfig
from bot.jobs.models import Job, JobState
from bot.jobs.provider_steps import ProviderSteps
from bot.jobs.schedule import DurationStats
from bot.jobs.settle import USER_CANCELLED, Outcome, Settler
from bot.jobs.store import JobStore, LeaseLost
from bot.media import OutputImage
from bot.ops.metrics import Metrics
from bot.providers.base import ImageProvider
from bot.quota.service import QuotaService
from bot.rendering import text

log = logging.getLogger(__name__)

ANSWER_WINDOW_SECONDS = 14 * 60.0  # Discord honours an interaction token for 15 minutes


class JobRunner(ProviderSteps):
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
        self._durations_until = 0.0  # finished_at of the newest duration read from the database
        self._own_finished: set[int] = set()
        self.acks = AcksFirst()  # JobService marks its acknowledgements; new jobs let them go first

    async def start(self) -> None:
        """Learn durations from history, drop input bytes nobody needs, and start the sweeper, which claims every
        open job that no live process holds (all of them after a restart) and renews this process's leases."""
        for duration in reversed(await self._store.recent_durations()):
            self.stats.add(duration.key, duration.ms / 1000, duration.start)
        self._durations_until = self._durations_read = self._clock()
        swept = await self._store.sweep_input_bytes()
        if swept:
            log.info("dropped the input images of %d ended job(s)", swept)
        await self.sweep()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="job-sweeper")
        self._canceller = asyncio.create_task(self._watch_cancels(), name="job-cancel-watch")

    async def learn_durations(self) -> None:
        """Add the task durations other processes learned since the last read (this process's own are known
        already)."""
        for duration in await self._store.durations_since(self._durations_until):
            if duration.job_id in self._own_finished:
                self._own_finished.discard(duration.job_id)
            else:
                self.stats.add(duration.key, duration.ms / 1000, duration.start)
            self._durations_until = max(self._durations_until, duration.finished_at)
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
            self.enqueue(job_id, taken_over=True)
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

    def enqueue(self, job_id: int, *, taken_over: bool = False) -> None:
        """Start driving a job (no-op if it is already being driven here). `taken_over`: the sweeper claimed it
        from no one or from a process that stopped renewing its lease."""
        if job_id in self._tasks:
            return
        task = asyncio.create_task(self._drive(job_id, taken_over), name=f"job-{job_id}")
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

    async def _drive(self, job_id: int, taken_over: bool) -> None:
        if not taken_over:
            await self.acks.quiet()  # in a burst, acknowledging the requests still coming in goes first
        if not await self._store.claim(job_id, self.owner, self._clock(), self.lease_seconds):
            return  # another live process holds it, or it is closed or not yet due
        job = await self._store.get(job_id)
        images: list[OutputImage] | None = None
        if taken_over:
            await self._answer_after_takeover(job)
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

    async def _answer_after_takeover(self, job: Job) -> None:
        """The process that acknowledged this request may have died before answering it ("thinking…" forever):
        while Discord still takes the interaction token, answer it again (the same words, so a repeat is harmless)."""
        if job.answer_token is None or self._clock() - job.created_at > ANSWER_WINDOW_SECONDS:
            return
        try:
            await self._publisher.answer(job, text.queued_answer(job.id))
        except DeliveryError as exc:
            log.info("job %d: could not answer the request again: %s", job.id, exc)

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
