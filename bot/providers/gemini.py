"""MountSea Gemini endpoint: `POST /gemini/image/generate` and `GET /gemini/task/result` (provider-api.md §2).

One image per task, so a request for n images is n tasks, tracked under one composite id (a JSON list).
Its status `ready` means "about to start", not finished.
"""

from __future__ import annotations

import json
from typing import Any

from bot.i18n import Msg, msg
from bot.ops.logs import log_context
from bot.providers.base import ProviderError, ProviderProtocolError, ProviderUnavailable, TaskState, TaskStatus
from bot.providers.catalog import DEFAULT_SAFETY_TOLERANCE, RATIOS_10
from bot.providers.http import BearerApi, preview

MODEL_IDS = {"nano-banana": "nano-banana-fast", "nano-banana-pro": "nano-banana-pro", "nano-banana-2": "nano-banana-2"}
EXTREME_RATIOS = ("1:4", "4:1", "1:8", "8:1")
_STATES = {
    "pending": TaskState.PENDING,
    "ready": TaskState.PENDING,
    "assigned": TaskState.PENDING,
    "queued": TaskState.PENDING,
    "processing": TaskState.RUNNING,
    "running": TaskState.RUNNING,
    "completed": TaskState.SUCCEEDED,
    "failed": TaskState.FAILED,
    "cancelled": TaskState.CANCELLED,
    "timeout": TaskState.TIMEOUT,
}


class PartialSubmit(ProviderError):
    """Only some of a multi-image request's tasks were created."""

    user_message = msg("provider.partial").encode()
    code = "partial_submit"


class GeminiProvider(BearerApi):
    """Client for MountSea's `/gemini` image endpoint (same key and base URL as the Hub)."""

    name = "gemini"
    idempotent_submit = False

    def unsupported(self, model: str, params: dict[str, Any]) -> Msg | None:
        family = model.removesuffix("-edit")
        if family not in MODEL_IDS:
            return msg("service.endpoint_no_model")
        if "seed" in params:
            return msg("service.no_seed")
        if "mask_url" in params:
            return msg("service.no_mask")
        if params.get("safety_tolerance", DEFAULT_SAFETY_TOLERANCE) != DEFAULT_SAFETY_TOLERANCE:
            return msg("service.no_safety")
        ratio = params.get("aspect_ratio")
        if ratio not in (None, "auto", *RATIOS_10) and not (ratio in EXTREME_RATIOS and family == "nano-banana-2"):
            return msg("service.no_ratio", ratio=str(ratio))
        if params.get("resolution") not in (None, "1K", "2K", "4K") or (
            family == "nano-banana" and params.get("resolution") not in (None, "1K")
        ):
            return msg("service.no_resolution_for_model", resolution=str(params.get("resolution")))
        return None

    def request_body(self, model: str, params: dict[str, Any]) -> dict[str, Any]:
        """One task body, sent `tasks` times (one image per task)."""
        return {"tasks": int(params.get("num_images", 1)), "request": self._task_body(model, params)}

    def _task_body(self, model: str, params: dict[str, Any]) -> dict[str, Any]:
        family = model.removesuffix("-edit")
        body: dict[str, Any] = {"prompt": params["prompt"], "model": MODEL_IDS[family], "num_images": 1}
        if model.endswith("-edit"):
            body["action"] = "edit"
            body["image_urls"] = params["image_urls"]
        else:
            body["action"] = "generate"
        if params.get("aspect_ratio") not in (None, "auto"):
            body["aspect_ratio"] = params["aspect_ratio"]
        if family != "nano-banana" and params.get("resolution"):
            body["resolution"] = params["resolution"]
        return body

    async def submit(self, body: dict[str, Any], idempotency_key: str) -> str:
        """One task per image; returns a JSON list of task ids."""
        request: dict[str, Any] = body["request"]
        ids: list[str] = []
        for _ in range(int(body["tasks"])):
            try:
                ids.append(await self._submit_one(request))
            except ProviderUnavailable as exc:
                if not ids:
                    raise  # nothing was created: another provider may take the job
                # Some tasks exist and will run (and bill) here: never hand the job to another provider.
                raise PartialSubmit(f"gemini accepted {len(ids)} of the tasks: {exc}") from exc
        return json.dumps(ids)

    async def _submit_one(self, body: dict[str, Any]) -> str:
        payload = await self._call(
            "POST",
            "/gemini/image/generate",
            json=body,
            idempotent=False,
            creates=True,
            what=f"gemini submit {body['model']}",
        )
        task_id = payload.get("taskId") or payload.get("task_id")
        if not isinstance(task_id, str | int) or not str(task_id):
            raise ProviderProtocolError(f"gemini submit answer has no taskId: {preview(payload)}")
        return str(task_id)

    async def poll(self, task_id: str) -> TaskStatus:
        ids = json.loads(task_id) if task_id.startswith("[") else [task_id]
        statuses = [await self._poll_one(one) for one in ids]
        for status in statuses:
            if status.state in (TaskState.FAILED, TaskState.TIMEOUT, TaskState.CANCELLED):
                return status
        if all(s.state is TaskState.SUCCEEDED for s in statuses):
            return TaskStatus(
                TaskState.SUCCEEDED, images=tuple(u for s in statuses for u in s.images), raw=statuses[0].raw
            )
        running = any(s.state is TaskState.RUNNING or s.state is TaskState.SUCCEEDED for s in statuses)
        return TaskStatus(TaskState.RUNNING if running else TaskState.PENDING, raw=statuses[0].raw)

    async def _poll_one(self, task_id: str) -> TaskStatus:
        with log_context(task_id=task_id):
            payload = await self._call(
                "GET", "/gemini/task/result", params={"taskId": task_id}, idempotent=True, what=f"gemini poll {task_id}"
            )
        return parse_result(payload)


def parse_result(payload: dict[str, Any]) -> TaskStatus:
    """Normalise a TaskResultDto; unknown statuses count as still running."""
    state = _STATES.get(str(payload.get("status", "")).lower(), TaskState.RUNNING)
    result = payload.get("result")
    images: tuple[str, ...] = ()
    if isinstance(result, dict):
        urls = result.get("imageUrls") or result.get("image_urls") or result.get("images") or []
        if isinstance(result.get("imageUrl"), str):
            urls = [result["imageUrl"]]
        images = tuple(u if isinstance(u, str) else u.get("url", "") for u in urls if isinstance(u, str | dict))
        images = tuple(u for u in images if u.startswith(("http://", "https://", "data:")))
    code = payload.get("errorCode")
    message = payload.get("errorMessage")
    return TaskStatus(
        state,
        images=images,
        error_code=None if code is None else str(code),
        error_message=message if isinstance(message, str) else None,
        raw=payload,
    )
