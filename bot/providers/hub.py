"""MountSea Hub: `POST /hub/v1/image` and `GET /hub/v1/tasks/{task_id}` (provider-api.md §1)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from bot.i18n import Msg
from bot.ops.logs import log_context
from bot.providers.base import ProviderProtocolError, TaskState, TaskStatus
from bot.providers.http import BearerApi, preview

log = logging.getLogger(__name__)

_STATES = {
    "pending": TaskState.PENDING,
    "processing": TaskState.RUNNING,
    "completed": TaskState.SUCCEEDED,
    "failed": TaskState.FAILED,
    "timeout": TaskState.TIMEOUT,
    "cancelled": TaskState.CANCELLED,
}


class HubProvider(BearerApi):
    """Client for the MountSea Hub image endpoints."""

    name = "hub"
    idempotent_submit = False  # the Hub documents no idempotency key: a retried POST may create a second task

    def unsupported(self, model: str, params: dict[str, Any]) -> Msg | None:
        return None  # requests are validated against the Hub's own input models

    def request_body(self, model: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"model": model, "input": params}

    async def submit(self, body: dict[str, Any], idempotency_key: str) -> str:
        """Create a task; return its id (from `task_id`, `taskId` or `id`). Sent once: no idempotency key."""
        payload = await self._call(
            "POST", "/hub/v1/image", json=body, idempotent=False, creates=True, what=f"hub submit {body['model']}"
        )
        for key in ("task_id", "taskId", "id"):
            value = payload.get(key)
            if isinstance(value, str | int) and str(value):
                return str(value)
        raise ProviderProtocolError(f"hub submit answer has no task id: {preview(payload)}")

    async def poll(self, task_id: str) -> TaskStatus:
        """Read the task and normalise its state and result images."""
        path = f"/hub/v1/tasks/{quote(task_id, safe='')}"
        with log_context(task_id=task_id):
            return parse_task(await self._call("GET", path, idempotent=True, what=f"hub poll {task_id}"))

    async def list_models(self) -> frozenset[str]:
        """The image model ids the Hub lists now (`GET /hub/v1/models?capability=image`, §1.6).

        Its response schema is undocumented, so lists of ids or of objects, bare or under `data`/`models`/
        `items`, are all read. ProviderProtocolError when nothing recognisable comes back."""
        payload = await self._probe("/hub/v1/models", params={"capability": "image"}, what="hub model list")
        return parse_model_list(payload)

    async def check_key(self) -> None:
        await self.list_models()


def parse_model_list(payload: Any) -> frozenset[str]:
    """Model ids from a model list answer; entries of another capability are skipped."""
    items = payload
    if isinstance(payload, dict):
        items = next(
            (payload[k] for k in ("data", "models", "items", "results") if isinstance(payload.get(k), list)), None
        )
    if not isinstance(items, list):
        raise ProviderProtocolError(f"hub model list is not a list: {preview(payload)}")
    ids: set[str] = set()
    for item in items:
        if isinstance(item, str):
            ids.add(item)
        elif isinstance(item, dict) and item.get("capability", "image") == "image":
            value = next(
                (item[k] for k in ("model", "id", "model_id", "name", "slug") if isinstance(item.get(k), str)), None
            )
            if value:
                ids.add(value)
    if items and not ids:
        raise ProviderProtocolError(f"hub model list has no model ids: {preview(payload)}")
    return frozenset(ids)


def parse_task(payload: dict[str, Any]) -> TaskStatus:
    """Normalise a Hub task object; unknown statuses count as still running."""
    raw_status = str(payload.get("status", "")).lower()
    state = _STATES.get(raw_status)
    images = extract_image_urls(payload.get("data"))
    if state is None:
        state = TaskState.SUCCEEDED if payload.get("ready") is True and images else TaskState.RUNNING
        log.debug("hub task %s has unknown status %r", payload.get("task_id"), raw_status)
    error_code = payload.get("error_code")
    elapsed = payload.get("elapsed_ms")
    return TaskStatus(
        state=state,
        images=images,
        error_code=None if error_code is None else str(error_code),
        error_message=payload.get("error_message") if isinstance(payload.get("error_message"), str) else None,
        elapsed_ms=int(elapsed) if isinstance(elapsed, int | float) else None,
        raw=payload,
    )


def extract_image_urls(data: Any) -> tuple[str, ...]:
    """Image URLs from the undocumented `data` shape, trying every layout seen in related APIs."""
    if isinstance(data, list):
        return _urls_from_list(data)
    if not isinstance(data, dict):
        return ()
    for key in ("images", "imageUrls", "image_urls"):
        if isinstance(data.get(key), list):
            found = _urls_from_list(data[key])
            if found:
                return found
    image = data.get("image")
    if isinstance(image, dict) and isinstance(image.get("url"), str):
        return (image["url"],)
    if isinstance(data.get("url"), str):
        return (data["url"],)
    output = data.get("output")
    if isinstance(output, dict):
        return extract_image_urls(output)
    return ()


def _urls_from_list(items: list[Any]) -> tuple[str, ...]:
    urls = []
    for item in items:
        if isinstance(item, str):
            urls.append(item)
        elif isinstance(item, dict) and isinstance(item.get("url"), str):
            urls.append(item["url"])
    return tuple(u for u in urls if u.startswith(("http://", "https://", "data:")))
