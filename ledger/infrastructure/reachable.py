"""Whether PostgreSQL answers at start: a bounded wait, then one line saying why not.

Without it a process started against an unreachable server waited ~13 s inside eventsourcing's
retries and printed a 100-line traceback. Here the start tries a plain connection (and
`SELECT 1`) until LEDGER_START_TIMEOUT passes, so that a database coming up beside the service
(a container started at the same time) is waited for, and a wrong address is said in one line.
SQLite is a file: nothing to wait for.
"""

from __future__ import annotations

import time

import psycopg
from psycopg.conninfo import make_conninfo

from ledger.infrastructure.persistence import eventsourcing_env, is_postgres, libpq_params

RETRY_SECONDS = 0.5


class Unreachable(RuntimeError):
    """The database did not answer within the start's wait."""


def where(params: dict[str, str]) -> str:
    """host:port/dbname, never a password."""
    host = params.get("host", "(PGHOST)")
    return f"{host}:{params.get('port', '5432')}/{params.get('dbname', '(PGDATABASE)')}"


def wait_for_database(database_url: str, timeout_seconds: float, connect_seconds: float) -> None:
    """Return once the database answers; raise Unreachable (one line) after `timeout_seconds`."""
    if not is_postgres(eventsourcing_env(database_url)):
        return
    params = libpq_params(database_url, connect_seconds)
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            with psycopg.connect(make_conninfo(**params)) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as e:
            if time.monotonic() + RETRY_SECONDS > deadline:
                reason = " ".join(str(e).split()) or type(e).__name__
                raise Unreachable(
                    f"PostgreSQL at {where(params)} not reachable after {timeout_seconds:g} s "
                    f"(LEDGER_START_TIMEOUT): {reason}"
                ) from None
            time.sleep(RETRY_SECONDS)
        else:
            return
