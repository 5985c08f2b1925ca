"""The chat side of running jobs: status messages, result images made ready to post, and exactly-once delivery.

Posting goes through the Publisher (channel and message ids only), with quick retries for transient Discord
errors; when those run out the job is postponed (any process may try again later, with backoff, across
restarts), and when delivery can never succeed the job fails, is refunded and its status message says why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from bot.jobs.delivery import DeliveryError, Phase, Publisher, StatusUpdate
from bot.jobs.models import Job, JobState
from bot.jobs.settle import Settler, decode_notice, encode_notice
from bot.jobs.store import JobStore
from bot.media import ImageError, OutputImage, fit_image, per_file_budget
from bot.ops.metrics import Metrics
from bot.providers.base import ImageProvider, ProviderError
from bot.quota.service import QuotaService
from bot.rendering import text

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class RunnerConfig:
    """Timing and concurrency knobs (tests set them near zero)."""

    deadline_seconds: float = 600.0
    max_active: int = 50
    poll_min_interval: float = 0.4
    poll_max_interval: float = 15.0
    status_edit_min_interval: float = 2.0
    delivery_retries: int = 3
    delivery_retry_base: float = 1.0
    max_parallel_downloads: int = 16  # results being fetched and fitted at once (each held in memory, <= 64 MiB)
    max_running_per_user: int = 2
    lease_seconds: float = 30.0
    sweep_interval: float = 10.0
    # How often a process checks whether another one cancelled a job it drives (a Cancel click answered there).
    cancel_check_interval: float = 2.0
    # How often a job that another process's jobs keep out (the caps are bot-wide) asks for a slot again.
    slot_retry_interval: float = 0.5
    # How often the durations learned by all processes are read again from the database (by the sweeper).
    durations_refresh_interval: float = 60.0
    delivery_max_attempts: int = 6  # postponed attempts (each after the quick retries) before giving up
    delivery_postpone_base: float = 30.0
    queue_edit_interval: float = 1.0  # Discord allows about 5 message edits per 5 s in a channel
    queue_refresh_interval: float = 15.0  # re-read the place in line even when nothing moved here


class Postponed(Exception):
    """Chat delivery failed for now; the job is left for a later attempt (by any process)."""


class JobMessages:
    """Base of JobRunner holding everything that talks to the chat. The runner sets these attributes."""

    owner: str
    _store: JobStore
    _settler: Settler
    _providers: Mapping[str, ImageProvider]
    _publisher: Publisher
    _quota: QuotaService
    _config: RunnerConfig
    _clock: Callable[[], float]
    _sleep: Callable[[float], Awaitable[None]]
    _downloads: asyncio.Semaphore
    _last_edit: dict[int, float]
    _metrics: Metrics | None

    async def _fetch_images(self, job: Job, provider: ImageProvider, urls: tuple[str, ...]) -> list[OutputImage]:
        budget = per_file_budget(job.upload_limit, len(urls))

        async def one(index: int, url: str) -> OutputImage:
            async with self._downloads:
                data = await provider.download(url, MAX_DOWNLOAD_BYTES)
                return await asyncio.to_thread(fit_image, data, budget, f"image-{job.id}-{index + 1}")

        return list(await asyncio.gather(*(one(i, u) for i, u in enumerate(urls))))

    async def _complete(self, job: Job, images: list[OutputImage] | None) -> None:
        """Everything after the provider: post the result once, make the status message show the outcome, close."""
        if job.closed_at is not None:
            return
        if job.state is JobState.SUCCEEDED and job.delivered_at is None:
            job = await self._deliver(job, images)
        notice = decode_notice(job.notice)
        if notice is not None:
            try:
                job = await self._show(job, notice, strict=True)
            except DeliveryError as exc:
                if not exc.permanent:
                    await self._postpone(job.id, give_up=lambda: self._store.close(job.id, self._clock()))
                log.warning("job %d: status message can't show the outcome: %s", job.id, exc)
        await self._store.close(job.id, self._clock())

    async def _deliver(self, job: Job, images: list[OutputImage] | None) -> Job:
        """Post a finished job's result exactly once; returns the job as it now stands."""
        if images is None:
            # Resumed: the result may have been posted just before the process died.
            if job.delivery_started_at is not None:
                try:
                    existing = await self._retrying(job, lambda: self._publisher.find_result(job))
                except DeliveryError as exc:
                    if not exc.permanent:
                        return await self._postpone_delivery(job, str(exc))
                    # Can't look (no Read Message History, say): post again; the nonce still guards a quick repeat.
                    log.warning("job %d: could not look for an earlier result: %s", job.id, exc)
                    existing = None
                if existing is not None:
                    log.info("job %d: result was already posted as message %d", job.id, existing)
                    return await self._record_delivery(job, existing)
            try:
                provider = self._providers[job.provider]
                images = await self._fetch_images(job, provider, job.result_urls)
            except (KeyError, ProviderError, ImageError) as exc:
                log.warning("job %d: result could not be fetched again: %s", job.id, exc)
                return await self._settler.undeliverable(job, text.RESULT_EXPIRED, f"refetch: {exc}")
            await self._store.mark_delivery_started(job.id, self._clock())
        ready = images
        started = time.perf_counter()
        try:
            message_id = await self._retrying(job, lambda: self._publisher.post_result(job, ready))
        except DeliveryError as exc:
            log.error("job %d: could not post the result: %s", job.id, exc)
            if not exc.permanent:
                return await self._postpone_delivery(job, str(exc))
            return await self._settler.undeliverable(job, text.RESULT_NOT_POSTED, str(exc))
        log.debug("job %d: result posted in %.0f ms", job.id, (time.perf_counter() - started) * 1000)
        if self._metrics is not None:
            self._metrics.result_posted(self._clock() - _ready_at(job))
        return await self._record_delivery(job, message_id)

    async def _record_delivery(self, job: Job, message_id: int) -> Job:
        notice = encode_notice(StatusUpdate(Phase.DONE, result_message_id=message_id))
        await self._store.mark_delivered(job.id, self._clock(), message_id, notice)
        log.info("job %d: delivered as message %d", job.id, message_id)
        if self._metrics is not None:
            self._metrics.credits_charged(job.cost)
        return dataclasses.replace(job, delivered_at=self._clock(), result_message_id=message_id, notice=notice)

    async def _postpone_delivery(self, job: Job, reason: str) -> Job:
        """Postpone (raises Postponed) or, after the last attempt, fail the job refunded; returns it then."""
        await self._postpone(job.id, give_up=lambda: self._settler.undeliverable(job, text.RESULT_NOT_POSTED, reason))
        return await self._store.get(job.id)

    async def _postpone(self, job_id: int, give_up: Callable[[], Awaitable[object]] | None = None) -> None:
        """Let any process try this job's chat work again later, with backoff; after the last attempt, `give_up`
        (when given) decides the outcome and the job goes on to show it."""
        job = await self._store.get(job_id)
        if job.delivery_attempts + 1 >= self._config.delivery_max_attempts and give_up is not None:
            await give_up()
            return
        delay = min(900.0, self._config.delivery_postpone_base * 2**job.delivery_attempts) * random.uniform(0.8, 1.2)
        await self._store.postpone_delivery(job_id, self.owner, self._clock() + delay)
        raise Postponed(f"chat delivery postponed by {delay:.0f}s (attempt {job.delivery_attempts + 1})")

    async def _show(self, job: Job, update: StatusUpdate, *, strict: bool = False) -> Job:
        """Post or edit the status message. Failures are logged, never fatal to the job, unless `strict`."""
        try:
            if job.status_message_id is None:
                return await self._post_status(job, update)
            if update.phase in (Phase.QUEUED, Phase.GENERATING):
                wait = self._last_edit.get(job.id, 0.0) + self._config.status_edit_min_interval - self._clock()
                if wait > 0:
                    await self._sleep(wait)
            await self._retrying(job, lambda: self._publisher.edit_status(job, update))
            self._last_edit[job.id] = self._clock()
        except DeliveryError as exc:
            if strict:
                raise
            log.warning("job %d: status message not updated: %s", job.id, exc)
        return job

    async def _post_status(self, job: Job, update: StatusUpdate) -> Job:
        """The job's one status message: looked up first if an earlier attempt may have posted it."""
        existing = None
        if job.status_post_started_at is not None:
            existing = await self._retrying(job, lambda: self._publisher.find_status(job))
        if existing is not None:
            await self._store.set_status_message(job.id, existing)
            job = dataclasses.replace(job, status_message_id=existing)
            await self._retrying(job, lambda: self._publisher.edit_status(job, update))
            return job
        await self._store.mark_status_post_started(job.id, self._clock())
        # Input images are attached only while the job still needs them hosted (never to a final notice).
        files = await self._store.inputs(job.id) if job.kind == "edit" and not job.state.terminal else []
        message_id = await self._retrying(job, lambda: self._publisher.post_status(job, update, files))
        await self._store.set_status_message(job.id, message_id)
        self._last_edit[job.id] = self._clock()
        return dataclasses.replace(job, status_message_id=message_id, status_post_started_at=self._clock())

    async def _retrying(self, job: Job, action: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            try:
                return await action()
            except DeliveryError as exc:
                if exc.permanent or attempt >= self._config.delivery_retries:
                    raise
                delay = self._config.delivery_retry_base * 2**attempt * random.uniform(0.5, 1.5)
                log.warning("job %d: chat delivery failed (%s); retrying in %.1fs", job.id, exc, delay)
                await self._sleep(delay)
                attempt += 1


def _ready_at(job: Job) -> float:
    """When the task was ready at the provider: its own reported duration when it gave one, else when we saw it."""
    if job.submitted_at is not None and job.duration_ms is not None:
        return min(job.submitted_at + job.duration_ms / 1000, job.finished_at or float("inf"))
    return job.finished_at or job.created_at
