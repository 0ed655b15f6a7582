"""Locks in the database: which process runs each projection and the daily scheduler (SPEC 4),
and one process at a time making the schema.

PostgreSQL: session-level advisory locks on a connection of their own. A process holds a lease
for as long as that connection lives: when the process dies (even `kill -9`) the server ends the
session and frees the lock, and a process standing by takes it at its next try (every
LEDGER_LEASE_SECONDS). A holder whose lock connection breaks gives up everything it holds at
once (another process may already have taken over) and asks again once it reconnects. Locks are
keyed by the database, schema and name, so schemas side by side in one database (the tests')
do not share them.

SQLite: one process serves a SQLite file (its writers are serialised anyway), so every lease
is granted to whoever asks; running several processes on one SQLite file is not supported.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterable, Iterator

import psycopg
import structlog
from psycopg.conninfo import make_conninfo

from ledger.infrastructure.persistence import eventsourcing_env, is_postgres, libpq_params

SCHEMA_LOCK = "schema"
SCHEMA_LOCK_WAIT_SECONDS = 120  # another process making the tables on a slow machine
log = structlog.get_logger("ledger.leases")


def _key(env: dict[str, str], name: str) -> int:
    """A signed 64-bit advisory lock key for `name` in this database and schema."""
    where = f"{env['POSTGRES_DBNAME']}/{env.get('POSTGRES_SCHEMA', 'public')}/{name}"
    return int.from_bytes(hashlib.blake2b(where.encode(), digest_size=8).digest(), signed=True)


def _connect(database_url: str, connect_seconds: float) -> psycopg.Connection[tuple[object, ...]]:
    params = libpq_params(database_url, connect_seconds)
    params["application_name"] = params.get("application_name", "ledger") + " (locks)"
    return psycopg.connect(make_conninfo(**params), autocommit=True)


@contextlib.contextmanager
def schema_lock(database_url: str, connect_seconds: float = 2.0) -> Iterator[None]:
    """Hold the schema lock while the tables are made: two processes starting together on an
    empty database would otherwise race in `CREATE TABLE IF NOT EXISTS` (which is not safe
    against a concurrent create: `duplicate key … pg_type_typname_nsp_index`)."""
    env = eventsourcing_env(database_url)
    if not is_postgres(env):
        yield
        return
    with _connect(database_url, connect_seconds) as conn:
        conn.execute(f"SET statement_timeout = '{SCHEMA_LOCK_WAIT_SECONDS}s'")
        conn.execute("SELECT pg_advisory_lock(%s)", [_key(env, SCHEMA_LOCK)])
        yield  # the lock ends with the session


class Leases:
    """The named leases this process wants, and which of them it holds.

    `want(names)` names them; `refresh()` (run by a thread every `interval` seconds once
    `start()`ed, and once at start) checks the lock connection and asks for each one not held;
    `holds(name)` is what the projections' supervisor and the scheduler read.
    """

    def __init__(
        self, database_url: str, interval: float = 1.0, connect_seconds: float = 2.0
    ) -> None:
        self._url = database_url
        self._env = eventsourcing_env(database_url)
        self._postgres = is_postgres(self._env)
        self._connect_seconds = connect_seconds
        self.interval = interval
        self._wanted: set[str] = set()
        self._held: set[str] = set()
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._guard = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def want(self, names: Iterable[str]) -> None:
        with self._guard:
            self._wanted |= set(names)

    def holds(self, name: str) -> bool:
        return name in self._held

    def held(self) -> set[str]:
        return set(self._held)

    def refresh(self) -> None:
        """Ask for every wanted lease not held; on a broken lock connection, hold nothing."""
        with self._guard:
            if not self._postgres:
                self._held = set(self._wanted)
                return
            if not self._wanted:
                return  # no lock connection for a process that runs nothing
            try:
                self._ask()
            except psycopg.Error as e:
                if self._held:
                    log.warning("leases_lost", held=sorted(self._held), error=str(e))
                self._held = set()
                self._close()

    def _ask(self) -> None:
        if self._conn is None or self._conn.closed:
            self._held = set()
            self._conn = _connect(self._url, self._connect_seconds)
        self._conn.execute("SELECT 1")  # the session (and so what it holds) is alive
        for name in sorted(self._wanted - self._held):
            row = self._conn.execute(
                "SELECT pg_try_advisory_lock(%s)", [_key(self._env, name)]
            ).fetchone()
            if row is not None and row[0]:
                self._held.add(name)
                log.info("lease_taken", lease=name)

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="leases", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.refresh()

    def stop(self) -> None:
        """Give up every lease (closing the session frees its locks at once)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        with self._guard:
            self._held = set()
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
