"""The HTTP client of one provider: pooled connections whose pool stays cheap with many jobs in flight.

httpcore's pool re-checks every pooled connection on each request and each answer ("has the server closed this
idle one?"). Through anyio that check builds a dict of socket attributes and calls getpeername() every time; with
a few dozen connections and hundreds of polls a second it took a third of the bot's CPU (py-spy, K = 500). The
network backend here keeps each connection's socket and answers that one question with a single poll(2).
"""

# ruff: noqa: ASYNC109  (the timeout parameters are httpcore's network-backend interface)
from __future__ import annotations

import select
import socket
import ssl
import typing
import urllib.request

import httpcore
import httpx

from bot import __version__
from bot.providers.pool import LinearPool

MAX_CONNECTIONS = 1000  # pooled connections per provider; API calls in flight adapt below it (AdaptiveLimit)
KEEPALIVE_CONNECTIONS = 64
DOWNLOAD_HEADROOM = 8  # extra pooled connections for result downloads


def make_client(
    base_url: str, timeout_seconds: float, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """One client per provider: explicit timeouts, pooled connections, no auth in its default headers.

    The key is added per API request instead, so result downloads from other hosts never carry it.
    """
    limits = httpx.Limits(
        max_connections=MAX_CONNECTIONS + DOWNLOAD_HEADROOM, max_keepalive_connections=KEEPALIVE_CONNECTIONS
    )
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
        limits=limits,
        headers={"User-Agent": f"imagebot/{__version__} (+discord)"},
        transport=transport or _pool_unless_proxied(limits),
        follow_redirects=True,
    )


def _pool_unless_proxied(limits: httpx.Limits) -> httpx.AsyncBaseTransport | None:
    """Our pool, unless HTTP(S)_PROXY/ALL_PROXY is set: httpx honours those only when it builds the transport itself."""
    proxies = urllib.request.getproxies()
    return None if any(proxies.get(scheme) for scheme in ("http", "https", "all")) else PoolTransport(limits)


class PoolTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over `LinearPool` with `SocketKeepingBackend`.

    httpx takes neither, so the pool it builds is replaced by ours with the same limits (httpx and httpcore are
    pinned in requirements.lock; tests/unit/test_transport.py checks the swap still takes effect).
    """

    def __init__(self, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        self._pool = LinearPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=SocketKeepingBackend(),
        )


class SocketKeepingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's default (anyio) backend, with streams that answer "is_readable" cheaply."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            return _readable(self._socket)
        return self._inner.get_extra_info(info)


def _readable(sock: socket.socket | None) -> bool:
    """Whether a read would return at once: data, or the b"" of a connection the server closed."""
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True  # gone: as good as closed
    if not hasattr(select, "poll"):  # Windows
        return bool(select.select([fd], [], [], 0)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
