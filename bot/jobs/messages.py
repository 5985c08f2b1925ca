"""The chat side of running jobs: status messages, result images made ready to post, and exactly-once delivery.

Posting goes through the Publisher (channel and message ids only), with retries for transient Discord errors.
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
from bot.jobs.store import JobStore
from bot.media import ImageError, OutputImage, fit_image, per_file_budget
from bot.providers.base import ImageProvider, ProviderError
from bot.quota.service import QuotaService
from bot.rendering import text

log = logging.getLogger(__name__)

T = TypeVar("T")
USER_CANCELLED = "user_cancelled"  # vs. "cancelled": the provider cancelled the task
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
    max_parallel_downloads: int = 8
    max_running_per_user: int = 2


class JobMessages:
    """Base of JobRunner holding everything that talks to the chat. The runner sets these attributes."""

    _store: JobStore
    _providers: Mapping[str, ImageProvider]
    _publisher: Publisher
    _quota: QuotaService
    _config: RunnerConfig
    _clock: Callable[[], float]
    _sleep: Callable[[float], Awaitable[None]]
    _downloads: asyncio.Semaphore
    _last_edit: dict[int, float]

    async def _fetch_images(self, job: Job, provider: ImageProvider, urls: tuple[str, ...]) -> list[OutputImage]:
        budget = per_file_budget(job.upload_limit, len(urls))

        async def one(index: int, url: str) -> OutputImage:
            async with self._downloads:
                data = await provider.download(url, MAX_DOWNLOAD_BYTES)
                return await asyncio.to_thread(fit_image, data, budget, f"image-{job.id}-{index + 1}")

        return list(await asyncio.gather(*(one(i, u) for i, u in enumerate(urls))))

    async def _deliver(self, job: Job, images: list[OutputImage] | None) -> None:
        if job.state is not JobState.SUCCEEDED:
            reason = job.error_message or text.GENERIC_FAILURE
            phase = Phase.CANCELLED if job.error_code == USER_CANCELLED else Phase.FAILED
            await self._show(job, StatusUpdate(phase, reason=reason, refunded=True))
            await self._store.mark_delivered(job.id, self._clock(), None)
            return
        if images is None:
            # Resumed after a restart: the result may have been posted just before the process died.
            if job.delivery_started_at is not None:
                existing = await self._retrying(job, lambda: self._publisher.find_result(job))
                if existing is not None:
                    log.info("job %d: result was already posted as message %d", job.id, existing)
                    await self._record_delivery(job, existing)
                    return
            try:
                provider = self._providers[job.provider]
                images = await self._fetch_images(job, provider, job.result_urls)
            except (KeyError, ProviderError, ImageError) as exc:
                log.warning("job %d: result could not be fetched again: %s", job.id, exc)
                await self._show(job, StatusUpdate(Phase.FAILED, reason=text.RESULT_EXPIRED, refunded=True))
                await self._abandon(job, "result_unavailable")
                return
            await self._store.mark_delivery_started(job.id, self._clock())
        ready = images
        started = time.perf_counter()
        try:
            message_id = await self._retrying(job, lambda: self._publisher.post_result(job, ready))
        except DeliveryError as exc:
            log.error("job %d: could not post the result: %s", job.id, exc)
            await self._abandon(job, str(exc)[:500])
            return
        log.debug("job %d: result posted in %.0f ms", job.id, (time.perf_counter() - started) * 1000)
        await self._record_delivery(job, message_id)

    async def _abandon(self, job: Job, reason: str) -> None:
        """Give up delivering a finished image: the user got nothing, so they are not charged."""
        async with self._store.transaction() as tx:
            await self._store.mark_delivered(job.id, self._clock(), None, reason, tx=tx)
            if await self._quota.refund(tx, job.id):
                log.info("job %d: refunded %d credits (not delivered)", job.id, job.cost)

    async def _record_delivery(self, job: Job, message_id: int) -> None:
        await self._store.mark_delivered(job.id, self._clock(), message_id)
        log.info("job %d: delivered as message %d", job.id, message_id)
        await self._show(job, StatusUpdate(Phase.DONE, result_message_id=message_id))

    async def _show(self, job: Job, update: StatusUpdate) -> Job:
        """Post or edit the status message; failures are logged, never fatal to the job."""
        try:
            if job.status_message_id is None:
                files = await self._store.inputs(job.id) if job.kind == "edit" else []
                message_id = await self._retrying(job, lambda: self._publisher.post_status(job, update, files))
                await self._store.set_status_message(job.id, message_id)
                self._last_edit[job.id] = self._clock()
                return dataclasses.replace(job, status_message_id=message_id)
            if update.phase in (Phase.QUEUED, Phase.GENERATING):
                wait = self._last_edit.get(job.id, 0.0) + self._config.status_edit_min_interval - self._clock()
                if wait > 0:
                    await self._sleep(wait)
            await self._retrying(job, lambda: self._publisher.edit_status(job, update))
            self._last_edit[job.id] = self._clock()
        except DeliveryError as exc:
            log.warning("job %d: status message not updated: %s", job.id, exc)
        return job

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
