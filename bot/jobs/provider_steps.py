"""The provider side of driving a job: submit (once, or resent byte for byte where a key allows), host an
edit's inputs, poll on a plan revised as estimates change, and turn the finished task into a settled job.

A mixin of JobRunner, which sets the attributes declared here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import time

from bot.jobs.delivery import DeliveryError, Phase, StatusUpdate
from bot.jobs.messages import JobMessages
from bot.jobs.models import Job, JobState
from bot.jobs.schedule import DurationStats, Sighting, next_poll
from bot.jobs.settle import Outcome
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
from bot.providers.http import reset_time_to_send, time_to_send
from bot.rendering import text

log = logging.getLogger(__name__)

DEFAULT_PRIOR_SECONDS = 30.0
REPLAN_SECONDS = 1.0  # a sleeping job re-plans at least this often, catching what its key learned

_FINAL_STATES = {
    TaskState.FAILED: JobState.FAILED,
    TaskState.TIMEOUT: JobState.TIMED_OUT,
    TaskState.CANCELLED: JobState.CANCELLED,
}


class ProviderSteps(JobMessages):
    """Submit and poll (the chat-side steps come from JobMessages). The runner sets these attributes."""

    stats: DurationStats
    _own_finished: set[int]  # jobs whose duration this process learned and has not yet seen re-read
    _line_moved: asyncio.Event

    def _line_advanced(self) -> None:
        """Wake the jobs waiting in line: one ahead of them left the line (submitted, ended or gone)."""
        self._line_moved.set()
        self._line_moved = asyncio.Event()

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
        prior = spec.typical_seconds if spec else DEFAULT_PRIOR_SECONDS
        key = job.duration_key
        token = self.stats.begin(key)
        try:
            return await self._poll_until_done(job, provider, prior)
        finally:
            self.stats.end(key, token)

    async def _poll_until_done(
        self, job: Job, provider: ImageProvider, prior: float
    ) -> tuple[Job, list[OutputImage] | None]:
        assert job.provider_task_id is not None and job.submitted_at is not None and job.deadline_at is not None
        key, seen = job.duration_key, Sighting()
        # Jobs submitted together share a model; a per-job phase keeps them from polling in waves.
        phase = random.random()
        polls = 0
        while True:
            # Re-planned on every turn: the key's model changes as other jobs finish, this job's as it is seen.
            window = self.stats.predict(key, prior, seen)
            rel = next_poll(
                self.stats.model(key, prior),
                seen,
                window,
                phase,
                self._config.poll_min_interval,
                self._config.poll_max_interval,
            )
            next_at = job.submitted_at + rel
            now = self._clock()
            # Poll at least once before judging the deadline: after an outage the task may have finished (and been
            # billed) while nobody was looking.
            if polls and now >= job.deadline_at:
                log.info("job %d: deadline reached after %d polls", job.id, polls)
                return await self._end(job, JobState.TIMED_OUT, "deadline", text.DEADLINE_REACHED), None
            if next_at > now and (polls or now < job.deadline_at):
                # Wake at least every REPLAN_SECONDS to re-plan with what the key has learned meanwhile.
                await self._sleep(min(next_at, job.deadline_at, now + REPLAN_SECONDS) - now)
                continue
            polls += 1
            asked = self._clock() - job.submitted_at
            reset_time_to_send()
            try:
                status = await provider.poll(job.provider_task_id)
            except ProviderUnavailable as exc:
                log.warning("job %d: poll failed, will keep trying until the deadline: %s", job.id, exc)
                status = None
            except ProviderError as exc:
                log.warning("job %d: poll refused: %s", job.id, exc)
                return await self._end(job, JobState.FAILED, exc.code, exc.user_message), None
            state = status.state if status is not None else None
            # When the poll left, not when it was asked for: under load it may wait for the in-flight cap.
            seen.saw(asked + time_to_send(), None if state is None else state is not TaskState.PENDING)
            if status is None or not status.state.terminal:
                if status is not None and status.state is TaskState.RUNNING and job.state is JobState.SUBMITTED:
                    await self._store.mark_running(job.id)
                    job = dataclasses.replace(job, state=JobState.RUNNING)
                log.debug("job %d: poll %d: %s", job.id, polls, status.state if status else "unavailable")
                continue
            log.info("job %d: task %s after %d polls", job.id, status.state, polls)
            started = time.perf_counter()
            result = await self._on_terminal(job, provider, status, seen)
            log.debug("job %d: result handled in %.0f ms", job.id, (time.perf_counter() - started) * 1000)
            return result

    async def _on_terminal(
        self, job: Job, provider: ImageProvider, status: TaskStatus, seen: Sighting | None = None
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
        start = (seen.pending_until, seen.running_at) if seen and seen.running_at and seen.pending_until else None
        self.stats.add(job.duration_key, duration_ms / 1000, start)
        self._own_finished.add(job.id)  # not to be learned twice when the durations are re-read
        start_ms = (round(start[0] * 1000), round(start[1] * 1000)) if start else None
        outcome = Outcome(JobState.SUCCEEDED, duration_ms=duration_ms, start_ms=start_ms, result_urls=status.images)
        return await self._settler.settle(job, outcome), images
