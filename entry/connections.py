"""Connection bounds for the HTTP server (SPEC 3.1): headers within 10 s, a bounded number of
open connections per process.

uvicorn (0.54, httptools) starts no timer when a connection opens: a client that never finishes
its request headers holds its connection (and a file descriptor) forever, and its
`limit_concurrency` counts such connections too, answering every real request 503 once enough
of them are held (measured: docs/DECISIONS.md D34). This protocol is uvicorn's own, plus:

- a timer per request from its first byte (and from the connection's opening) to the end of its
  headers: past LEDGER_HEADER_TIMEOUT (10 s) the connection is closed;
- at most LEDGER_MAX_CONNECTIONS (1,000) open connections per process. A connection beyond the
  bound first makes room by closing the connection that has waited longest for its headers
  (a slow client, never a request being served); when every connection is busy with a request,
  the new one is answered 503 at once and closed.

So a flood of half-open connections costs at most the bound in descriptors and is shed oldest
first, and `/health/live` keeps answering. The server stays swappable: `ledger serve` hands
uvicorn this class (`http=`); another ASGI server would need its own equivalent.
"""

from __future__ import annotations

import asyncio
import os
import resource
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_REFUSAL_BODY = (
    b'{"type":"too-many-connections","title":"Too many open connections","status":503,'
    b'"detail":"every connection of this process is busy; try again in a moment"}'
)
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: application/problem+json\r\n"
    b"connection: close\r\n"
    b"retry-after: 1\r\n"
    b"content-length: " + str(len(_REFUSAL_BODY)).encode() + b"\r\n\r\n" + _REFUSAL_BODY
)


def _setting(variable: str, default: float) -> float:
    return float(os.environ.get(variable) or default)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout and a bound on open connections."""

    max_connections: ClassVar[int] = int(_setting("LEDGER_MAX_CONNECTIONS", 1_000))
    header_timeout: ClassVar[float] = _setting("LEDGER_HEADER_TIMEOUT", 10.0)
    # connections waiting for a request's headers, oldest first (one process, one event loop)
    waiting: ClassVar[dict[BoundedHttpToolsProtocol, None]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.max_connections and len(self.connections) > self.max_connections:
            oldest = next(iter(self.waiting), None)
            if oldest is None:  # every connection is busy with a request: refuse this one
                transport.write(REFUSAL)
                transport.close()
                return
            oldest.transport.close()
            oldest._stop_waiting()
        self._wait_for_headers()

    def _wait_for_headers(self) -> None:
        if self._header_timer is None and self.header_timeout > 0:
            self._header_timer = self.loop.call_later(self.header_timeout, self._too_slow)
            self.waiting[self] = None

    def _stop_waiting(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self.waiting.pop(self, None)

    def _too_slow(self) -> None:
        self._header_timer = None
        self.waiting.pop(self, None)
        if not self.transport.is_closing():
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._wait_for_headers()  # each request on a kept-alive connection has its own 10 s

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)


def bounded(max_connections: int, header_timeout: float) -> type[BoundedHttpToolsProtocol]:
    """The protocol with these bounds (a server in a test; `ledger serve` reads the env)."""
    return type(
        "BoundedHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {"max_connections": max_connections, "header_timeout": header_timeout, "waiting": {}},
    )


def raise_descriptor_limit(needed: int) -> None:
    """Let the process hold `needed` connections plus its pools and files: raise the soft limit
    on open files towards the hard one (never above it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
