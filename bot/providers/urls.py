"""Where result downloads may go: public http(s) addresses only, checked for every hop.

A provider's result URL is data from the network. Without these checks a hostile or compromised answer
(or a redirect) could make the bot fetch from loopback, the private network or a cloud metadata service.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bot.i18n import msg
from bot.providers.base import ProviderError, ProviderProtocolError, ProviderUnavailable

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]
_LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa", ".lan")


class UnsafeResultUrl(ProviderError):
    """A result URL (or a redirect) pointing at an address the bot does not fetch from."""

    user_message = msg("provider.bad_address").encode()
    code = "result_url_refused"


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the system resolver, off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def is_public(address: str) -> bool:
    """False for loopback, private, link-local, multicast, reserved and unspecified addresses (IPv4-mapped too)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_url(url: httpx.URL, *, allow_private: bool, resolve: Resolver) -> str | None:
    """Raise unless `url` is http(s) and every address its host resolves to is public (or private is allowed).

    Returns the checked address to connect to, so that a second DNS answer (DNS rebinding) cannot send the
    request elsewhere; None when private addresses are allowed and the host is left to the HTTP client.
    """
    if url.scheme not in ("http", "https") or not url.host:
        raise ProviderProtocolError("result URL has an unsupported scheme")
    if allow_private:
        return None
    host = url.host.lower().rstrip(".")
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        raise _refused(host)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = await resolve(host, url.port or (443 if url.scheme == "https" else 80))
        except OSError as exc:
            raise ProviderUnavailable(f"result host {host!r} does not resolve: {exc}") from exc
    if not addresses or not all(is_public(a) for a in addresses):
        raise _refused(host)
    return addresses[0]


def pinned(url: httpx.URL, address: str | None) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """URL, headers and httpx extensions that reach `address` while asking for `url`'s host: the Host header
    names it, and for https the TLS server name (SNI) too, so its certificate is still checked against it."""
    headers = {"Accept-Encoding": "identity"}  # compressed bodies are refused, never inflated
    if address is None:
        return url, headers, {}
    headers["Host"] = url.netloc.decode("ascii")
    extensions: dict[str, Any] = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return url.copy_with(host=address), headers, extensions


def _refused(host: str) -> UnsafeResultUrl:
    log.warning("refused to download a result from %r: not a public address", host)
    return UnsafeResultUrl(f"result host {host!r} is not a public address")
