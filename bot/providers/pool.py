"""httpcore's connection pool with its bookkeeping made linear.

On every request and every answer, httpcore 1.0.9 re-examines the whole pool: it asks each connection whether
the server closed it (a poll(2) per idle socket), and for each idle one counts the pool again (quadratic). At K =
1,000 that bookkeeping was a quarter of the bot's CPU (py-spy). The same known problem and the same fix are
upstream: encode/httpcore#1035 (open), pydantic/httpx2#974 and #1075. Here one pass counts and evicts, a
connection is asked whether the server closed it when it is about to be reused (and idle ones in a sweep at
most once a second), and a connection handed to a waiting request is neither closed nor handed out again
before that request starts on it (encode/httpcore#1110). HTTP/1.1 only, which is what the providers speak.
httpcore is pinned in requirements.lock; tests/unit/test_transport.py covers reuse, a connection closed by the
server, the keep-alive limit and the connection cap.
"""

from __future__ import annotations

import time
from typing import Any

import httpcore
from httpcore._async.connection_pool import AsyncPoolRequest
from httpcore._async.interfaces import AsyncConnectionInterface

SWEEP_SECONDS = 1.0  # idle connections past their keep-alive, or closed by the server, go at least this often


class LinearPool(httpcore.AsyncConnectionPool):
    """`httpcore.AsyncConnectionPool` (HTTP/1.1) with a pass that is linear in the pool's size."""

    _next_sweep = 0.0

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("http2"):
            raise ValueError("LinearPool hands each connection to one request at a time: HTTP/1.1 only")
        super().__init__(**kwargs)

    def _assign_requests_to_connections(self) -> list[AsyncConnectionInterface]:
        closing: list[AsyncConnectionInterface] = []
        live = [c for c in self._connections if not c.is_closed()]
        # A connection handed to a request that has not started on it yet still looks idle: it is spoken for.
        reserved = {id(r.connection) for r in self._requests if r.connection is not None}
        idle = [c for c in live if c.is_idle() and id(c) not in reserved]
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_SECONDS
            expired = {id(c) for c in idle if c.has_expired()}
            closing += [c for c in idle if id(c) in expired]
            idle = [c for c in idle if id(c) not in expired]
        # Beyond the keep-alive limit, the oldest idle connections go (upstream counts all connections here).
        surplus = max(0, len(idle) - self._max_keepalive_connections)
        closing += idle[:surplus]
        idle = idle[surplus:]
        gone = {id(c) for c in closing}
        self._connections = [c for c in live if id(c) not in gone]
        queued = [request for request in self._requests if request.is_queued()]
        if not queued:
            return closing
        available = [c for c in self._connections if c.is_available() and id(c) not in reserved]
        for request in queued:
            connection = self._reusable(request, available, idle, closing)
            if connection is None and len(self._connections) >= self._max_connections and idle:
                # Full: close an idle connection (to another origin) to make room.
                self._drop(idle[0], closing, available, idle)
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
        """An available connection to the request's origin that the server has not closed, taken from `available`
        (an HTTP/1.1 connection serves one request at a time). Closed ones found on the way go."""
        origin = request.request.url.origin
        index = 0
        while index < len(available):
            connection = available[index]
            if not connection.can_handle_request(origin):
                index += 1
                continue
            del available[index]
            if not connection.has_expired():
                return connection
            self._drop(connection, closing, idle)
        return None

    def _drop(
        self,
        connection: AsyncConnectionInterface,
        closing: list[AsyncConnectionInterface],
        *choices: list[AsyncConnectionInterface],
    ) -> None:
        """Take a connection out of the pool and of this pass's `choices`, to be closed."""
        self._connections.remove(connection)
        for choice in choices:
            if connection in choice:
                choice.remove(connection)
        closing.append(connection)
