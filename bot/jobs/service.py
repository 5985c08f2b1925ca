"""The one entry point for new jobs: validate, record, hand to the runner."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.db import Database
from bot.errors import InvalidRequest
from bot.jobs.models import Job
from bot.jobs.runner import JobRunner
from bot.jobs.store import JobStore
from bot.providers.catalog import ImageOptions, api_params, build_input

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Requester:
    """Who asked, and where the answer goes."""

    user_id: int
    guild_id: int | None
    channel_id: int
    upload_limit: int


class JobService:
    """Creates jobs. The row exists (in one transaction) before anything reaches a provider."""

    def __init__(
        self,
        db: Database,
        store: JobStore,
        runner: JobRunner,
        *,
        provider_for: Callable[[str], str | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._store = store
        self._runner = runner
        self._provider_for = provider_for
        self._clock = clock

    async def create_generate(self, requester: Requester, model: str, prompt: str, options: ImageOptions) -> Job:
        """Validate a text-to-image request, record it, and start it. Raises InvalidRequest."""
        payload = build_input(model, prompt, options)
        provider = self._provider_for(model)
        if provider is None:
            raise InvalidRequest(f"The model `{model}` is not available on this bot.")
        params = api_params(payload)
        resolution = params.get("resolution") or _size_key(params.get("image_size"))
        async with self._db.transaction() as tx:
            job_id = await self._store.insert(
                tx,
                kind="generate",
                provider=provider,
                model=model,
                params=params,
                prompt=payload.prompt,
                duration_key=f"{provider}:{model}:{resolution or 'default'}",
                user_id=requester.user_id,
                guild_id=requester.guild_id,
                channel_id=requester.channel_id,
                upload_limit=requester.upload_limit,
                created_at=self._clock(),
            )
        log.info("job %d: created for user %d (%s)", job_id, requester.user_id, model)
        self._runner.enqueue(job_id)
        return await self._store.get(job_id)


def _size_key(image_size: object) -> str | None:
    if isinstance(image_size, dict):
        return f"{image_size.get('width')}x{image_size.get('height')}"
    return image_size if isinstance(image_size, str) else None
