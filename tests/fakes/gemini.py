"""The MountSea `/gemini` endpoint, served by the fake MountSea beside the Hub (provider-api.md §2).

201 `{taskId}`; one image per task; statuses pending → ready ("about to start", not finished) → processing →
completed with `result.imageUrls`, or failed with a numeric `errorCode` and `errorMessage`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

MODELS = {"nano-banana-fast", "nano-banana-pro", "nano-banana-2"}
RATIOS = {"21:9", "1:1", "4:3", "3:2", "2:3", "5:4", "4:5", "3:4", "16:9", "9:16"}
EXTREME = {"1:4", "4:1", "1:8", "8:1"}


class GeminiRoutes:
    """Mixed into FakeHub, which owns tasks, plans, faults and auth."""

    def add_gemini_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/gemini/image/generate", self._gemini_submit)  # type: ignore[attr-defined]
        router.add_get("/gemini/task/result", self._gemini_poll)  # type: ignore[attr-defined]

    async def _gemini_submit(self: Any, request: web.Request) -> web.StreamResponse:
        self.submit_calls += 1
        body = await request.json()
        if (scripted := await self._scripted(request, self.submit_faults)) is not None:
            return scripted
        if not self._authorised(request):
            return web.json_response({"message": "Unauthorized", "statusCode": 401}, status=401)
        problem = _invalid(body)
        if problem:
            return web.json_response({"message": problem, "statusCode": 400}, status=400)
        self.submissions.append({"endpoint": "gemini", **body})
        plan = self.plans.popleft() if self.plans else self.default_plan()
        from tests.fakes.hub import Task  # noqa: PLC0415 - avoids an import cycle with hub.py

        task = Task(id=str(uuid.uuid4()), model=body["model"], input=body, created=time.time(), plan=plan)
        self.tasks[task.id] = task
        return web.json_response({"taskId": task.id}, status=201)

    async def _gemini_poll(self: Any, request: web.Request) -> web.StreamResponse:
        self.poll_calls += 1
        if (scripted := await self._scripted(request, self.poll_faults)) is not None:
            return scripted
        if not self._authorised(request):
            return web.json_response({"message": "Unauthorized"}, status=401)
        task = self.tasks.get(request.query.get("taskId", ""))
        if task is None:
            return web.json_response({"message": "task not found", "statusCode": 404}, status=404)
        task.polls += 1
        elapsed = time.time() - task.created
        base = {"taskId": task.id, "createdAt": "2026-11-21T00:00:00Z", "traceId": "trace-1"}
        if elapsed < task.plan.duration:
            status = "ready" if elapsed < task.plan.duration * 0.5 else "processing"
            return web.json_response({**base, "status": status, "result": None})
        if task.first_seen_done is None:
            task.first_seen_done = time.time()
        if task.plan.outcome != "completed":
            return web.json_response(
                {
                    **base,
                    "status": task.plan.outcome,
                    "errorCode": 1001,
                    "errorMessage": task.plan.error_message,
                    "result": None,
                }
            )
        url = f"http://{request.host}/files/{task.id}/0"
        return web.json_response({**base, "status": "completed", "result": {"imageUrls": [url]}})


def _invalid(body: Any) -> str | None:
    if not isinstance(body, dict) or not str(body.get("prompt", "")).strip():
        return "prompt is required"
    if body.get("action") not in ("generate", "edit"):
        return "action must be generate or edit"
    if body.get("num_images", 1) != 1:
        return "only support generate 1 image"
    model = body.get("model", "nano-banana-fast")
    if model not in MODELS:
        return f"model must be one of {sorted(MODELS)}"
    if body["action"] == "edit" and not body.get("image_urls"):
        return "image_urls is required when action is edit"
    ratio = body.get("aspect_ratio")
    if ratio is not None and ratio not in RATIOS and not (ratio in EXTREME and model == "nano-banana-2"):
        return "invalid aspect_ratio"
    if "resolution" in body and (model == "nano-banana-fast" or body["resolution"] not in ("1K", "2K", "4K")):
        return "resolution only applies to nano-banana-pro and nano-banana-2"
    unknown = set(body) - {"prompt", "action", "num_images", "image_urls", "aspect_ratio", "model", "resolution"}
    return f"unknown fields {sorted(unknown)}" if unknown else None
