"""Result downloads: only public addresses (every redirect hop checked), a streamed size cap, data URIs off the loop."""

from __future__ import annotations

import base64
import gzip
import threading
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from aiohttp import web

from bot.config import Settings
from bot.providers import http as provider_http
from bot.providers.base import ProviderProtocolError
from bot.providers.http import ImageTooLarge, RetryPolicy, download
from bot.providers.transport import make_client
from bot.providers.urls import UnsafeResultUrl
from tests.fakes.images import png
from tests.fakes.loopback import serve


def resolver(table: dict[str, list[str]]) -> Callable[[str, int], object]:
    async def resolve(host: str, port: int) -> list[str]:
        return table[host]

    return resolve


PUBLIC = resolver({"cdn.example": ["93.184.215.14"], "cdn2.example": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"]})


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return make_client("https://api.example", 2.0, transport=httpx.MockTransport(handler))


@pytest.fixture
async def local_server() -> AsyncIterator[tuple[str, list[str]]]:
    hits: list[str] = []

    async def image(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=png(), content_type="image/png")

    app = web.Application()
    app.router.add_get("/{name}", image)
    runner, url = await serve(app)
    yield url, hits
    await runner.cleanup()


async def test_loopback_results_are_refused_unless_allowed(local_server: tuple[str, list[str]]) -> None:
    url, hits = local_server
    async with make_client("https://api.example", 2.0) as client:
        with pytest.raises(UnsafeResultUrl):
            await download(client, f"{url}/out.png", 1_000_000, RetryPolicy())
        assert hits == []  # not even one request left the bot
        allowed = RetryPolicy(allow_private_urls=True)  # RESULT_URLS_ALLOW_PRIVATE=true, for local test servers
        assert await download(client, f"{url}/out.png", 1_000_000, allowed) == png()
    assert hits == ["/out.png"]


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/a.png",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/a.png",
        "http://192.168.0.10/a.png",
        "http://[::1]/a.png",
        "http://[fe80::1]/a.png",
        "http://[::ffff:127.0.0.1]/a.png",
        "http://224.0.0.251/a.png",
        "http://[ff02::1]/a.png",
        "http://0.0.0.0/a.png",
        "http://100.64.0.1/a.png",
        "http://private.example/a.png",
        "http://mixed.example/a.png",
    ],
)
async def test_non_public_addresses_are_refused(url: str) -> None:
    seen: list[httpx.Request] = []
    table = {"private.example": ["172.16.5.4"], "mixed.example": ["93.184.215.14", "127.0.0.1"]}
    policy = RetryPolicy(resolve=resolver(table))  # type: ignore[arg-type]
    async with mock_client(lambda r: seen.append(r) or httpx.Response(200, content=png())) as client:
        with pytest.raises(UnsafeResultUrl):
            await download(client, url, 1_000_000, policy)
    assert seen == []


async def test_each_redirect_hop_is_checked() -> None:
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        host, path = request.headers["Host"], request.url.path
        seen.append((f"{request.url.scheme}://{host}{path}", str(request.url.host)))
        if host == "cdn.example" and path == "/to-public":
            return httpx.Response(302, headers={"Location": "https://cdn2.example/final.png"})
        if host == "cdn.example":
            return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        return httpx.Response(200, content=png())

    policy = RetryPolicy(resolve=PUBLIC)  # type: ignore[arg-type]
    async with mock_client(handler) as client:
        assert await download(client, "https://cdn.example/to-public", 1_000_000, policy) == png()
        with pytest.raises(UnsafeResultUrl):
            await download(client, "https://cdn.example/to-metadata", 1_000_000, policy)
    assert seen == [  # each request went to the address that was checked, asking for the host by name
        ("https://cdn.example/to-public", "93.184.215.14"),
        ("https://cdn2.example/final.png", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"),
        ("https://cdn.example/to-metadata", "93.184.215.14"),
    ]


async def test_a_second_dns_answer_cannot_redirect_the_request() -> None:
    answers = [["93.184.215.14"], ["127.0.0.1"]]  # DNS rebinding: public when checked, loopback afterwards
    seen: list[httpx.Request] = []

    async def rebinding(host: str, port: int) -> list[str]:
        return answers.pop(0)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=png())

    async with mock_client(handler) as client:
        assert await download(client, "https://evil.example/a.png", 1_000_000, RetryPolicy(resolve=rebinding)) == png()
    assert seen[0].url.host == "93.184.215.14" and seen[0].headers["Host"] == "evil.example"
    assert seen[0].extensions["sni_hostname"] == "evil.example"  # the certificate is still checked for the name


async def test_redirect_loops_end() -> None:
    loop = httpx.Response(302, headers={"Location": "https://cdn.example/again"})
    async with mock_client(lambda r: loop) as client:
        with pytest.raises(ProviderProtocolError, match="redirected more than"):
            await download(client, "https://cdn.example/a", 1_000_000, RetryPolicy(resolve=PUBLIC))  # type: ignore[arg-type]


async def test_the_size_cap_is_enforced_while_streaming() -> None:
    sent: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:  # no Content-Length, and it never ends
            sent.append(1)
            yield b"\0" * 65536

    async with mock_client(lambda r: httpx.Response(200, content=endless())) as client:
        with pytest.raises(ImageTooLarge):
            await download(client, "https://cdn.example/a", 1_000_000, RetryPolicy(resolve=PUBLIC))  # type: ignore[arg-type]
    assert len(sent) <= 1_000_000 // 65536 + 2


async def test_compressed_bodies_are_not_inflated() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield gzip.compress(b"\0" * 10_000_000)  # 10 KB that would inflate to 10 MB

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body(), headers={"Content-Encoding": "gzip"})

    async with mock_client(handler) as client:
        with pytest.raises(ProviderProtocolError, match="Content-Encoding"):
            await download(client, "https://cdn.example/a", 1_000_000, RetryPolicy(resolve=PUBLIC))  # type: ignore[arg-type]


async def test_data_uris_are_bounded_and_decoded_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    real = provider_http._decode_data_uri

    def spy(url: str, max_bytes: int) -> bytes:
        threads.append(threading.current_thread())
        return real(url, max_bytes)

    monkeypatch.setattr(provider_http, "_decode_data_uri", spy)
    uri = "data:image/png;base64," + base64.b64encode(png()).decode()
    async with make_client("https://api.example", 2.0) as client:
        assert await download(client, uri, 1_000_000, RetryPolicy()) == png()
        with pytest.raises(ImageTooLarge):
            await download(client, uri, 10, RetryPolicy())
    assert threads and all(t is not threading.main_thread() for t in threads)


def test_private_result_urls_are_off_by_default() -> None:
    base = {"discord_token": "t", "mountsea_api_key": "k"}
    assert Settings(_env_file=None, **base).result_urls_allow_private is False  # type: ignore[call-arg]
    allowed = Settings(_env_file=None, result_urls_allow_private="true", **base)  # type: ignore[call-arg, arg-type]
    assert allowed.result_urls_allow_private is True
