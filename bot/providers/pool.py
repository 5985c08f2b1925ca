"""httpcore's connection pool with its bookkeeping made linear.

On every request and every answer, httpcore 1.0.9 re-examines the whole pool: it asks each connection whether
the server closed it (a poll(2) per idle socket), and for each idle one counts the pool again (quadratic). At K =
1,000 that bookkeeping was a quarter of the bot's CPU (py-spy). The same known problem and the same fix are
upstream: encode/httpcore#1035 (open), pydantic/httpx2#974 and #1075. Here one pass counts and evicts, a
connection is asked whether the server closed it when it is about to be reused (and idle ones in a sweep at
most once a second), and each idle HTTP/1.1 connection goes to one waiting request per pass (the providers
speak HTTP/1.1 only). httpcore is pinned in requirements.lock, and
tests/unit/test_transport.py covers reuse, a connection closed by the server, the keep-alive limit and the cap.
"""

from __future__ import annotations

import time

import httpcore
from httpcore._async.connection_pool import AsyncPoolRequest
from httpcore._async.interfaces import AsyncConnectionInterface

SWEEP_SECONDS = 1.0  # idle connections past their keep-alive, or closed by the server, go at least this often


class LinearPool(httpcore.AsyncConnectionPool):
    """`httpcore.AsyncConnectionPool` with the same behaviour and a pass that is linear in the pool's size."""

    _next_sweep = 0.0

    def _assign_requests_to_connections(self) -> list[AsyncConnectionInterface]:
        closing: list[AsyncConnectionInterface] = []
        self._connections = [c for c in self._connections if not c.is_closed()]
        # A connection handed to a request that has not started on it yet still looks idle: it is spoken for
        # (upstream would close it or hand it out twice: encode/httpcore#1110).
        reserved = {id(r.connection) for r in self._requests if r.connection is not None}
        idle = [c for c in self._connections if c.is_idle() and id(c) not in reserved]
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_SECONDS
            expired = [c for c in idle if c.has_expired()]
            for gone in expired:
                self._connections.remove(gone)
                idle.remove(gone)
            closing.extend(expired)
        # Beyond the keep-alive limit, the connections idle longest go (upstream counts all connections here).
        surplus = max(0, len(idle) - self._max_keepalive_connections)
        for gone in idle[:surplus]:
            self._connections.remove(gone)
            closing.append(gone)
        idle = idle[surplus:]
        queued = [request for request in self._requests if request.is_queued()]
        if not queued:
            return closing
        available = [c for c in self._connections if c.is_available() and id(c) not in reserved]
        for request in queued:
            connection = self._reusable(request, available, idle, closing)
            if connection is None and len(self._connections) >= self._max_connections and idle:
                spare = idle.pop(0)  # full: close an idle connection (to another origin) to make room
                if spare in available:
                    available.remove(spare)
                self._connections.remove(spare)
                closing.append(spare)
            if connection is None and len(self._connections) < self._max_connections:
                connection = self.create_connection(request.request.url.origin)
                self._connections.append(connection)
            if connection is not None:
                request.assign_to_connection(connection)
                if connection in idle:
                    idle.remove(connection)
        return closing

    def _reusable(
        self,
        request: AsyncPoolRequest,
        available: list[AsyncConnectionInterface],
        idle: list[AsyncConnectionInterface],
        closing: list[AsyncConnectionInterface],
    ) -> AsyncConnectionInterface | None:
        """An available connection to the request's origin that the server has not closed (taken from `available`:
        an HTTP/1.1 connection serves one request at a time). Closed ones found on the way go."""
        origin = request.request.url.origin
        for connection in list(available):
            if not connection.can_handle_request(origin):
                continue
            available.remove(connection)
            if connection.has_expired():
                self._connections.remove(connection)
                if connection in idle:
                    idle.remove(connection)
                closing.append(connection)
                continue
            return connection
        return None
