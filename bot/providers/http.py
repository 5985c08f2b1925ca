"""Shared HTTP plumbing for providers: error mapping, retries with backoff and Retry-After."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.utils
import functools
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from bot.i18n import msg
from bot.ops.logs import log_context
from bot.providers.base import (
    ProviderAuthError,
    ProviderError,
    ProviderProtocolError,
    ProviderRejected,
    ProviderUnavailable,
    SubmitOutcomeUnknown,
)
from bot.providers.limiter import AdaptiveLimit
from bot.providers.transport import MAX_CONNECTIONS
from bot.providers.urls import Resolver, check_url, pinned, resolve_host

log = logging.getLogger(__name__)

# The request never left this machine, so retrying cannot create a second task.
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
MAX_BACKOFF_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 120.0
# Seconds from a call to `send` to its last attempt leaving (waits for the in-flight cap, backoffs), for the
# caller's task: a poll's answer describes the task as it was then, not when the poll was asked for.
_SENT_AFTER: ContextVar[float] = ContextVar("sent_after", default=0.0)


def time_to_send() -> float:
    """How long the last `send` in this task waited before its request left (0 if none since `reset_time_to_send`)."""
    return _SENT_AFTER.get()


def reset_time_to_send() -> None:
    _SENT_AFTER.set(0.0)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry 429/5xx/network failures, and where result downloads may go."""

    max_retries: int = 4
    base_seconds: float = 1.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    allow_private_urls: bool = False  # RESULT_URLS_ALLOW_PRIVATE: only for image services on a local network
    resolve: Resolver = resolve_host

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        delay: float = min(MAX_BACKOFF_SECONDS, self.base_seconds * 2.0**attempt) * random.uniform(0.5, 1.5)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
        return delay


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def error_detail(response: httpx.Response) -> str | None:
    """A short, human-readable reason from an error body, or None."""
    try:
        body: Any = response.json()
    except ValueError:
        text = response.text.strip()
        return _clean(text) if text and len(text) < 300 and "<" not in text else None
    if isinstance(body, dict):
        for key in ("errorMessage", "error_message", "message", "detail", "error", "msg"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail")
            if isinstance(value, list) and value and isinstance(value[0], dict):
                value = value[0].get("msg") or value[0].get("message")
            if isinstance(value, str) and value.strip():
                return _clean(value)
    return None


def _clean(text: str) -> str:
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= 300 else text[:297] + "..."


class _Retry(Exception):
    def __init__(self, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def raise_for_status(response: httpx.Response) -> None:
    """Map a non-2xx answer to the provider error taxonomy (retryable ones raise _Retry)."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status in (401, 403):
        raise ProviderAuthError(f"HTTP {status} from {response.request.url.path}")
    if status == 429 or status >= 500:
        raise _Retry(status, parse_retry_after(response.headers.get("Retry-After")))
    raise ProviderRejected(status, error_detail(response))


async def send(
    client: httpx.AsyncClient,
    build: Callable[[], httpx.Request],
    *,
    policy: RetryPolicy,
    idempotent: bool,
    what: str,
    creates: bool = False,
    stream: bool = False,
    limiter: AdaptiveLimit | None = None,
    follow_redirects: bool = True,
) -> httpx.Response:
    """Send a request, retrying what is safe to retry.

    Network errors before the request left, and 429s, are always retried: nothing was created. Errors after it
    was sent (read timeout, dropped connection) and 5xx answers are retried only for idempotent requests. For a
    request that `creates` something (a submit), such an error means a task may exist: SubmitOutcomeUnknown, at
    once when the request is not idempotent, after the retries when it is — never ProviderUnavailable, which
    would let the job fail over to another provider.
    With stream=True the caller must close the returned response. `limiter` caps requests in flight and learns
    from each answer (see bot.providers.limiter).
    """
    attempt = 0
    maybe_created = False
    entered = time.monotonic()
    while True:
        try:
            if limiter is None:
                _SENT_AFTER.set(time.monotonic() - entered)
                response = await client.send(build(), stream=stream, follow_redirects=follow_redirects)
            else:
                async with limiter:
                    sent = time.monotonic()
                    _SENT_AFTER.set(sent - entered)
                    response = await client.send(build(), stream=stream, follow_redirects=follow_redirects)
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    limiter.answered(response.status_code, retry_after, time.monotonic() - sent)
            try:
                if follow_redirects or not response.is_redirect:  # else the caller checks and follows it
                    raise_for_status(response)
            except BaseException:
                await response.aclose()
                raise
            return response
        except _Retry as exc:
            reason, retry_after = str(exc), exc.retry_after
            if creates and exc.status >= 500:
                if not idempotent:
                    raise SubmitOutcomeUnknown(f"{what}: {reason} after the request was sent") from exc
                maybe_created = True
        except NOT_SENT_ERRORS as exc:
            reason, retry_after = type(exc).__name__, None
        except httpx.TransportError as exc:
            if not idempotent:
                raise SubmitOutcomeUnknown(f"{what}: {type(exc).__name__} after the request was sent") from exc
            reason, retry_after = type(exc).__name__, None
            maybe_created = maybe_created or creates
        if attempt >= policy.max_retries:
            if maybe_created:
                raise SubmitOutcomeUnknown(f"{what}: gave up after {attempt + 1} attempts ({reason}); a task may exist")
            raise ProviderUnavailable(f"{what}: gave up after {attempt + 1} attempts ({reason})")
        delay = policy.backoff(attempt, retry_after)
        log.warning("%s failed (%s); retry %d/%d in %.1fs", what, reason, attempt + 1, policy.max_retries, delay)
        await policy.sleep(delay)
        attempt += 1


class ImageTooLarge(ProviderError):
    """A result image is bigger than the bot will download."""

    user_message = msg("provider.result_too_big").encode()
    code = "result_too_large"


MAX_REDIRECTS = 5
DOWNLOAD_DEADLINE_SECONDS = 120.0  # a whole download, however slowly the bytes trickle in
_READ_CHUNK = 64 * 1024


async def download(client: httpx.AsyncClient, url: str, max_bytes: int, policy: RetryPolicy) -> bytes:
    """Download an image URL or decode a data: URI, refusing anything over `max_bytes`.

    Redirects are followed here, hop by hop, so every address is checked (see `bot.providers.urls`), and
    each request goes to the address that was checked.
    Compressed bodies are refused (no gzip bomb) and the cap is enforced while streaming.
    """
    if url.startswith("data:"):
        return await asyncio.to_thread(_decode_data_uri, url, max_bytes)
    target = httpx.URL(url)
    try:
        async with asyncio.timeout(DOWNLOAD_DEADLINE_SECONDS):
            for _ in range(MAX_REDIRECTS + 1):
                address = await check_url(target, allow_private=policy.allow_private_urls, resolve=policy.resolve)
                via, headers, extensions = pinned(target, address)
                response = await send(
                    client,
                    functools.partial(client.build_request, "GET", via, headers=headers, extensions=extensions),
                    policy=policy,
                    idempotent=True,
                    what="result download",
                    stream=True,
                    follow_redirects=False,
                )
                try:
                    if not response.is_redirect:
                        return await _read_capped(response, max_bytes)
                    location = response.headers.get("Location")
                    if not location:
                        raise ProviderProtocolError("result redirect without a Location")
                    target = target.join(location)
                finally:
                    await response.aclose()
    except TimeoutError as exc:
        raise ProviderUnavailable(f"result download took over {DOWNLOAD_DEADLINE_SECONDS:.0f}s") from exc
    raise ProviderProtocolError(f"result download redirected more than {MAX_REDIRECTS} times")


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ImageTooLarge(f"result is {declared} bytes")
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ProviderProtocolError(f"result sent with Content-Encoding {encoding!r}")
    chunks = bytearray()
    async for chunk in response.aiter_bytes(_READ_CHUNK):  # identity encoding: these are the raw bytes
        chunks += chunk
        if len(chunks) > max_bytes:
            raise ImageTooLarge(f"result exceeds {max_bytes} bytes")
    return bytes(chunks)


def _decode_data_uri(url: str, max_bytes: int) -> bytes:
    """Decode a base64 data: URI (blocking: call it in a thread); its size is checked before decoding."""
    header, _, data = url.partition(",")
    if len(data) * 3 // 4 > max_bytes:
        raise ImageTooLarge("data URI too large")
    if not header.endswith(";base64"):
        raise ProviderProtocolError("data URI is not base64")
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise ProviderProtocolError("data URI is not valid base64") from exc


def json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProviderProtocolError(f"non-JSON answer from {response.request.url.path}") from exc
    if (
        isinstance(payload, dict)
        and isinstance(payload.get("data"), dict)
        and "code" in payload
        and ("status" not in payload and "task_id" not in payload and "taskId" not in payload)
    ):
        payload = payload["data"]  # tolerate a {code, data} envelope
    if not isinstance(payload, dict):
        raise ProviderProtocolError(f"unexpected answer from {response.request.url.path}: {preview(payload)}")
    return payload


def preview(payload: Any) -> str:
    text = json.dumps(payload, default=str)
    return text if len(text) <= 1000 else text[:1000] + "..."


RequestObserver = Callable[[str, str], None]  # (provider, outcome)


def outcome_of(error: BaseException | None) -> str:
    """The `outcome` label of imagebot_provider_requests_total for an API call that raised `error`."""
    if error is None:
        return "ok"
    if isinstance(error, ProviderAuthError):
        return "auth"
    if isinstance(error, ProviderRejected):
        return "rejected"
    if isinstance(error, ProviderUnavailable):
        return "unavailable"
    return "unknown"  # the answer was lost (SubmitOutcomeUnknown) or unreadable


class BearerApi:
    """What every provider client shares: its own httpx client, a Bearer key added per request, retries,
    a cap on API calls in flight, and result downloads (which never carry the key)."""

    name = "provider"

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: SecretStr,
        policy: RetryPolicy,
        observe: RequestObserver | None = None,
        max_in_flight: int = MAX_CONNECTIONS,
    ) -> None:
        self._client = client
        self._api_key = api_key
        self._policy = policy
        self._observe = observe
        self._in_flight = AdaptiveLimit(max_in_flight)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}

    async def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        idempotent: bool,
        creates: bool = False,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One API call with the key, the retry policy and the in-flight cap; returns the JSON object."""
        merged = {**self._auth(), **(headers or {})}
        with log_context(provider=self.name), self._observed():
            response = await send(
                self._client,
                lambda: self._client.build_request(method, path, headers=merged, **kwargs),
                policy=self._policy,
                idempotent=idempotent,
                creates=creates,
                what=what,
                limiter=self._in_flight,
            )
            return json_object(response)

    @contextlib.contextmanager
    def _observed(self) -> Iterator[None]:
        """Count one API call by its outcome (for /metrics)."""
        error: BaseException | None = None
        try:
            yield
        except ProviderError as exc:
            error = exc
            raise
        finally:
            if self._observe is not None:
                self._observe(self.name, outcome_of(error))

    async def _probe(self, path: str, *, what: str, **kwargs: Any) -> Any:
        """One cheap authenticated GET (at most one retry) returning its JSON; for startup checks."""
        policy = RetryPolicy(max_retries=min(1, self._policy.max_retries), base_seconds=self._policy.base_seconds)
        with self._observed():
            response = await send(
                self._client,
                lambda: self._client.build_request("GET", path, headers=self._auth(), **kwargs),
                policy=policy,
                idempotent=True,
                what=what,
                limiter=self._in_flight,
            )
            try:
                return response.json()
            except ValueError as exc:
                raise ProviderProtocolError(f"non-JSON answer from {path}") from exc

    async def check_key(self) -> None:
        """Raise ProviderAuthError if the service refuses the key; other errors mean "could not tell"."""

    async def download(self, url: str, max_bytes: int) -> bytes:
        """Fetch a result image (http(s) or data: URI), at most `max_bytes`. Not behind the API-call limiter:
        a finished job's image must not wait for hundreds of polls (callers bound downloads themselves)."""
        return await download(self._client, url, max_bytes, self._policy)
