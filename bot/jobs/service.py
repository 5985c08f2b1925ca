"""The one entry point for new jobs: validate, record, hand to the runner."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.db import Database
from bot.errors import InvalidRequest
from bot.jobs.models import Job, JobInput
from bot.jobs.runner import JobRunner
from bot.jobs.store import JobStore
from bot.media import InputImage
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
from bot.providers.router import Router
from bot.quota.service import QuotaService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Requester:
    """Who asked, and where the answer goes."""

    user_id: int
    guild_id: int | None
    channel_id: int
    upload_limit: int
    role_ids: tuple[int, ...] = ()


class JobService:
    """Creates jobs. The row exists (in one transaction) before anything reaches a provider."""

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

    async def create_generate(self, requester: Requester, model: str, prompt: str, options: ImageOptions) -> Job:
        """Validate, charge and record a text-to-image request, then start it.

        The capacity check, the charge and the job row are one transaction, so concurrent requests can
        never spend the same credits twice. Raises InvalidRequest, QuotaExceeded or TooManyJobs.
        """
        payload = build_input(model, prompt, options)
        return await self._create(requester, "generate", model, payload, options, [], None)

    async def create_edit(
        self,
        requester: Requester,
        model: str,
        prompt: str,
        images: list[InputImage],
        options: ImageOptions,
        *,
        mask: InputImage | None = None,
        reply_to_message_id: int | None = None,
    ) -> Job:
        """Like create_generate, for an edit of checked input images (kept until the status message hosts them)."""
        payload = build_edit_input(model, prompt, len(images), options, mask is not None)
        inputs = _job_inputs(images, mask)
        return await self._create(requester, "edit", model, payload, options, inputs, reply_to_message_id)

    async def rerun(
        self,
        requester: Requester,
        job: Job,
        *,
        inputs: list[InputImage] | None = None,
        mask: InputImage | None = None,
        reply_to_message_id: int | None = None,
    ) -> Job:
        """The same request again (Reroll): same model, prompt and options, with a new seed where there is one."""
        spec = MODELS.get(job.model)
        if spec is None:
            raise InvalidRequest("This result's model is no longer offered.")
        params = dict(job.params)
        if "seed" in spec.fields:
            params["seed"] = random.randint(0, MAX_SEED)
        images = inputs or []
        extra: dict[str, object] = {}
        if job.kind == "edit":
            extra["image_urls"] = [PLACEHOLDER_URL] * len(images)
            if mask is not None:
                extra["mask_url"] = PLACEHOLDER_URL
        try:
            payload = spec.input_model.model_validate({**params, **extra})
        except ValueError as exc:
            raise InvalidRequest(f"This request can't be repeated: {exc}") from exc
        job_inputs = _job_inputs(images, mask)
        resolution = params.get("resolution")
        options = ImageOptions(resolution=resolution if isinstance(resolution, str) else None)
        return await self._create(requester, job.kind, job.model, payload, options, job_inputs, reply_to_message_id)

    async def _create(
        self,
        requester: Requester,
        kind: str,
        model: str,
        payload: HubInput,
        options: ImageOptions,
        inputs: list[JobInput],
        reply_to_message_id: int | None,
    ) -> Job:
        route = self._router.route(model, payload.model_dump(mode="json", exclude_none=True))
        provider = route[0]
        params = api_params(payload)
        resolution = params.get("resolution") or _size_key(params.get("image_size"))
        async with self._db.transaction() as tx:
            await self._quota.check_capacity(tx, requester.user_id)
            cost = await self._quota.cost(tx, requester.guild_id, model, options.resolution, payload.num_images)
            job_id = await self._store.insert(
                tx,
                kind=kind,
                provider=provider,
                model=model,
                params=params,
                prompt=payload.prompt,
                duration_key=f"{provider}:{model}:{resolution or 'default'}",
                user_id=requester.user_id,
                guild_id=requester.guild_id,
                channel_id=requester.channel_id,
                upload_limit=requester.upload_limit,
                cost=cost,
                reply_to_message_id=reply_to_message_id,
                route=route,
                created_at=self._clock(),
            )
            for item in inputs:
                await self._store.insert_input(tx, job_id, item)
            await self._quota.reserve(tx, job_id, requester.guild_id, requester.user_id, requester.role_ids, cost)
        log.info("job %d: %s created for user %d (%s, %d credits)", job_id, kind, requester.user_id, model, cost)
        self._runner.enqueue(job_id)
        return await self._store.get(job_id)


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
