"""Fail fast while PostgreSQL is down.

Each store call that finds the database gone is retried by eventsourcing (10 attempts, each
waiting up to the connect timeout for a connection), and requests for one key or one member
queue behind each other: without this gate a POS would wait tens of seconds for its 503. Once a
request has found the store unreachable, the gate answers later requests 503 at once, until a
probe (a fresh connection and `SELECT 1`, at most one every PROBE_SECONDS) reaches it again.
SQLite is a file beside the service: it has no such outage, and no gate.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio.to_thread
import psycopg
from litestar.types import ASGIApp, Receive, Scope, Send

from ledger.domain.errors import Unavailable
from ledger.infrastructure.persistence import eventsourcing_env, is_postgres, libpq_params

PROBE_SECONDS = 0.5
PROBE_TIMEOUT_SECONDS = 1
UNGATED_PATHS = ("/health", "/metrics", "/schema")


class StoreGate:
    """Whether the store is known to be down, and the probe that finds it back."""

    def __init__(self, database_url: str) -> None:
        self._conninfo: dict[str, Any] | None = None
        if is_postgres(eventsourcing_env(database_url)):
            self._conninfo = libpq_params(database_url) | {"connect_timeout": PROBE_TIMEOUT_SECONDS}
        self.down = False
        self._probed_at = 0.0
        self._lock = threading.Lock()

    def mark_down(self) -> None:
        if self._conninfo is not None:
            self.down = True

    def _reachable(self) -> bool:
        assert self._conninfo is not None  # noqa: S101 - only a PostgreSQL gate is ever down
        try:
            with psycopg.connect(**self._conninfo) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def up(self) -> bool:
        """Whether the store answers (probing it if it was down; blocking, up to ~1 s)."""
        if not self.down:
            return True
        with self._lock:  # one probe at a time; the others wait for its answer
            if self.down and time.monotonic() - self._probed_at >= PROBE_SECONDS:
                self._probed_at = time.monotonic()
                self.down = not self._reachable()
            return not self.down

    def check(self) -> None:
        if not self.up():
            raise Unavailable("the event store is unavailable; try again shortly")


def store_gate(gate: StoreGate) -> Any:
    """ASGI middleware (before authentication, which reads the store) that applies `gate`."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def gated(scope: Scope, receive: Receive, send: Send) -> None:
            path: str = scope.get("path", "")
            if gate.down and not path.startswith(UNGATED_PATHS):
                await anyio.to_thread.run_sync(gate.check)
            await app(scope, receive, send)

        return gated

    return middleware
