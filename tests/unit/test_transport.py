"""The providers' HTTP transport: connections are reused, one the server closed is never reused, and the pool
keeps to its limits under many requests at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpcore
import httpx
import pytest

from bot.providers.pool import LinearPool
from bot.providers.transport import PoolTransport, SocketKeepingBackend, make_client

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@asynccontextmanager
async def server(
    close_after_answer: bool, delay: float = 0.0, open_now: list[int] | None = None
) -> AsyncIterator[tuple[str, list[int]]]:
    """A keep-alive HTTP server on loopback; with `close_after_answer` it hangs up after each answer, without
    saying so in a header (as servers with short idle timeouts do). Yields its URL and a connection counter;
    `open_now` tracks [connections open now, the most ever open at once]."""
    connections = [0]
    gauge = open_now if open_now is not None else [0, 0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        gauge[0] += 1
        gauge[1] = max(gauge[1], gauge[0])
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                await asyncio.sleep(delay)
                writer.write(RESPONSE)
                await writer.drain()
                if close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            gauge[0] -= 1
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", connections
    finally:
        srv.close()
        await srv.wait_closed()


async def test_the_client_pools_through_the_socket_keeping_backend() -> None:
    async with make_client("http://127.0.0.1:9", 1.0) as client:
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert isinstance(pool, LinearPool)
        assert isinstance(pool._network_backend, SocketKeepingBackend)


async def test_sequential_requests_reuse_one_connection() -> None:
    async with server(close_after_answer=False) as (url, connections), make_client(url, 2.0) as client:
        for _ in range(50):
            assert (await client.get("/tasks/1")).status_code == 200
    assert connections[0] == 1


async def test_a_connection_the_server_closed_is_not_reused() -> None:
    async with server(close_after_answer=True) as (url, connections), make_client(url, 2.0) as client:
        for _ in range(5):
            assert (await client.get("/tasks/1")).status_code == 200
            await asyncio.sleep(0.05)  # the server's FIN arrives while the connection sits idle in the pool
    assert connections[0] == 5


async def test_a_proxy_from_the_environment_is_still_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    async with make_client("https://api.example", 1.0) as client:
        proxied = client._transport_for_url(httpx.URL("https://api.example/hub/v1/tasks/1"))  # type: ignore[attr-defined]
        assert isinstance(proxied._pool, httpcore.AsyncHTTPProxy)  # type: ignore[attr-defined]


async def test_many_requests_at_once_keep_to_the_pool_limits_and_reuse_connections() -> None:
    gauge = [0, 0]
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=2)
    async with (
        server(close_after_answer=False, delay=0.01, open_now=gauge) as (url, connections),
        httpx.AsyncClient(base_url=url, transport=PoolTransport(limits)) as client,
    ):
        for _ in range(2):
            answers = await asyncio.gather(*(client.get(f"/tasks/{i}") for i in range(40)))
            assert [a.status_code for a in answers] == [200] * 40
        await asyncio.sleep(0.05)
        assert gauge[1] == 4  # the cap, reached and never passed
        assert gauge[0] == 2  # idle connections beyond the keep-alive limit were closed
        assert connections[0] <= 6  # 80 requests: the second batch reused the kept connections
