"""The one entry point for new jobs: validate, record, hand to the runner."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from bot.db import Database
from bot.errors import InvalidRequest
from bot.jobs.models import Job, JobInput, JobState
from bot.jobs.runner import JobRunner
from bot.jobs.settle import Outcome
from bot.jobs.store import JobStore
from bot.media import ImageError, InputImage, fit_inputs
from bot.providers.catalog import (
    MAX_SEED,
    MODELS,
    PLACEHOLDER_URL,
    HubInput,
    ImageOptions,
    api_params,
    build_edit_input,
    build_input,
)
from bot.providers.prompts import describe_invalid
from bot.providers.router import Router
from bot.quota.service import QuotaService

log = logging.getLogger(__name__)

Ack = Callable[[Job], Awaitable[object]]  # acknowledges the request for this (recorded) job
ReadInputs = Callable[[], Awaitable[tuple[list[InputImage], InputImage | None]]]


@dataclass(frozen=True)
class Requester:
    """Who asked, and where the answer goes."""

    user_id: int
    guild_id: int | None
    channel_id: int
    upload_limit: int
    role_ids: tuple[int, ...] = ()
    answer_token: str | None = field(default=None, repr=False)  # the interaction's, when one asked


class JobService:
    """Creates jobs. The row exists (in one transaction with its charge) before the request is acknowledged and
    before anything reaches a provider."""

    def __init__(
        self,
        db: Database,
        store: JobStore,
        runner: JobRunner,
        quota: QuotaService,
        router: Router,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._store = store
        self._runner = runner
        self._quota = quota
        self._router = router
        self._clock = clock

    async def create_generate(
        self, requester: Requester, model: str, prompt: str, options: ImageOptions, *, ack: Ack | None = None
    ) -> Job:
        """Validate, charge and record a text-to-image request, acknowledge it, then start it.

        The capacity check, the price, the charge and the job row are one transaction, so concurrent requests can
        never spend the same credits twice. Raises InvalidRequest, QuotaExceeded or TooManyJobs (nothing charged).
        """
        payload = build_input(model, prompt, options)
        job = await self._insert(requester, "generate", model, payload, JobState.QUEUED, None)
        await self._acknowledge(job, ack)
        self._runner.enqueue(job.id)
        return job

    async def create_edit(
        self,
        requester: Requester,
        model: str,
        prompt: str,
        image_count: int,
        options: ImageOptions,
        read: ReadInputs,
        *,
        has_mask: bool = False,
        reply_to_message_id: int | None = None,
        ack: Ack | None = None,
    ) -> Job:
        """An edit: the row is recorded (and charged) as "preparing", then acknowledged, then `read` downloads and
        checks the images, which are stored before the job is queued. If reading fails, the job ends quietly,
        refunded, and the error goes back to the caller to answer privately."""
        payload = build_edit_input(model, prompt, image_count, options, has_mask)
        job = await self._insert(requester, "edit", model, payload, JobState.PREPARING, reply_to_message_id)
        return await self._prepare(job, read, ack)

    async def rerun(
        self,
        requester: Requester,
        job: Job,
        *,
        read: ReadInputs | None = None,
        image_count: int = 0,
        has_mask: bool = False,
        reply_to_message_id: int | None = None,
        ack: Ack | None = None,
    ) -> Job:
        """The same request again (Reroll): same model, prompt and options, with a new seed where there is one."""
        spec = MODELS.get(job.model)
        if spec is None:
            raise InvalidRequest("rerun.model_gone")
        params = dict(job.params)
        if "seed" in spec.fields:
            params["seed"] = random.randint(0, MAX_SEED)
        extra: dict[str, object] = {}
        if job.kind == "edit":
            extra["image_urls"] = [PLACEHOLDER_URL] * image_count
            if has_mask:
                extra["mask_url"] = PLACEHOLDER_URL
        try:
            payload = spec.input_model.model_validate({**params, **extra})
        except ValidationError as exc:
            raise InvalidRequest("rerun.invalid", detail=describe_invalid(exc)) from exc
        if job.kind != "edit" or read is None:
            new = await self._insert(requester, job.kind, job.model, payload, JobState.QUEUED, reply_to_message_id)
            await self._acknowledge(new, ack)
            self._runner.enqueue(new.id)
            return new
        new = await self._insert(requester, "edit", job.model, payload, JobState.PREPARING, reply_to_message_id)
        return await self._prepare(new, read, ack)

    async def _prepare(self, job: Job, read: ReadInputs, ack: Ack | None) -> Job:
        """Acknowledge a preparing job, read and store its inputs, then queue it; end it quietly if reading fails."""
        await self._acknowledge(job, ack)
        try:
            images, mask = await read()
            images = await self._fitted(images, mask, job.upload_limit)
            for item in _job_inputs(images, mask):
                await self._store.store_input(job.id, item)
        except BaseException as exc:
            # Nothing was sent anywhere: give the credits back and tell the member (through the caller) why.
            await self._runner.settle(job, Outcome(JobState.FAILED, "input_refused", str(exc)[:300], quiet=True))
            raise
        if not await self._store.mark_ready(job.id):
            return await self._store.get(job.id)  # cancelled or ended meanwhile
        self._runner.enqueue(job.id)
        return job

    async def _fitted(self, images: list[InputImage], mask: InputImage | None, upload_limit: int) -> list[InputImage]:
        """Shrink inputs as needed so that their status message never exceeds Discord's request limits."""
        try:
            return await asyncio.to_thread(fit_inputs, images, len(images) + (mask is not None), upload_limit)
        except ImageError as exc:  # too large even compressed (the inputs were checked before)
            raise InvalidRequest("edit.inputs_too_large") from exc

    async def _acknowledge(self, job: Job, ack: Ack | None) -> None:
        """Acknowledge the request whose row now exists; if that fails (too late, Discord down), the member saw it
        fail, so the job ends at once, refunded, instead of running unseen."""
        if ack is None:
            return
        try:
            with self._runner.acks.acknowledging():
                await ack(job)
        except BaseException as exc:
            await self._runner.settle(job, Outcome(JobState.FAILED, "not_acknowledged", str(exc)[:300], quiet=True))
            raise

    async def _insert(
        self,
        requester: Requester,
        kind: str,
        model: str,
        payload: HubInput,
        state: JobState,
        reply_to_message_id: int | None,
    ) -> Job:
        guild_id, user_id = requester.guild_id, requester.user_id
        route = self._router.route(model, payload.model_dump(mode="json", exclude_none=True))
        provider = route[0]
        params = api_params(payload)
        resolution = params.get("resolution") or _size_key(params.get("image_size"))
        now = self._clock()
        values = {
            "kind": kind,
            "state": state.value,
            "provider": provider,
            "model": model,
            "params": params,
            "prompt": payload.prompt,
            "duration_key": f"{provider}:{model}:{resolution or 'default'}",
            "user_id": requester.user_id,
            "guild_id": requester.guild_id,
            "channel_id": requester.channel_id,
            "upload_limit": requester.upload_limit,
            "reply_to_message_id": reply_to_message_id,
            "route": route,
            "created_at": now,
            # Random, never the row id: ids repeat across databases that share an API key.
            "idempotency_key": secrets.token_hex(16),
            "lease_owner": self._runner.owner,
            "lease_expires_at": now + self._runner.lease_seconds,
            "answer_token": requester.answer_token,
        }

        # The capacity check, the price, the charge and the row are one transaction, under the member's lock
        # (PostgreSQL runs READ COMMITTED with several processes; on SQLite write transactions take turns anyway).
        async with self._db.transaction() as tx:
            await tx.lock("user", user_id)
            limit, cost = await self._quota.quote(tx, guild_id, user_id, requester.role_ids, model, params)
            from_period = await self._quota.admit(tx, guild_id, user_id, limit, cost)
            job = await self._store.insert(tx, cost=cost, **values)
            await self._quota.record_charge(tx, job.id, guild_id, user_id, from_period, cost)
        log.info("job %d: %s created for user %d (%s, %d credits)", job.id, kind, user_id, model, job.cost)
        return job


def _job_inputs(images: list[InputImage], mask: InputImage | None) -> list[JobInput]:
    """Input rows in order: the images, then the mask (its position tells the runner which hosted URL is which)."""
    rows = [JobInput(i, "image", img.filename, img.content_type, img.data) for i, img in enumerate(images)]
    if mask is not None:
        rows.append(JobInput(len(images), "mask", mask.filename, mask.content_type, mask.data))
    return rows


def _size_key(image_size: object) -> str | None:
    if isinstance(image_size, dict):
        return f"{image_size.get('width')}x{image_size.get('height')}"
    return image_size if isinstance(image_size, str) else None
