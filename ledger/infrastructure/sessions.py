"""Console sessions that were signed out, beside the log (so every API process refuses them).

The console keeps its session in an encrypted cookie (`api/console/session.py`); a cookie is
valid until it expires, so signing out must be remembered on the server: the session's random
id goes into this table, and a request bearing it is sent to the sign-in page. Rows older than
a session's life are deleted as new ones come.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from eventsourcing.persistence import ApplicationRecorder, OperationalError
from eventsourcing.postgres import PostgresDatastore
from psycopg_pool import PoolTimeout

TABLE = "console_sessions_ended"


class EndedSessions:
    def __init__(self, recorder: ApplicationRecorder, keep: timedelta) -> None:
        self._datastore: Any = recorder.datastore  # type: ignore[attr-defined]
        self._postgres = isinstance(self._datastore, PostgresDatastore)
        self._keep = keep
        self._table = f'"{self._datastore.schema}"."{TABLE}"' if self._postgres else TABLE
        self._execute(
            f"CREATE TABLE IF NOT EXISTS {self._table} (session_id TEXT PRIMARY KEY, "
            "ended_at TEXT NOT NULL)",
            fetch=False,
        )

    def _execute(self, sql: str, params: tuple[Any, ...] = (), fetch: bool = True) -> list[Any]:
        if self._postgres:
            sql = sql.replace("?", "%s")
        try:
            with self._datastore.transaction(commit=True) as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall()) if fetch else []
        except (psycopg.Error, PoolTimeout) as e:  # what eventsourcing's own recorders raise
            raise OperationalError(e) from e

    def end(self, session_id: str) -> None:
        now = datetime.now(UTC)
        self._execute(
            f"DELETE FROM {self._table} WHERE ended_at < ?",
            ((now - self._keep).isoformat(),),
            fetch=False,
        )
        self._execute(
            f"INSERT INTO {self._table} (session_id, ended_at) VALUES (?, ?) "
            "ON CONFLICT (session_id) DO NOTHING",
            (session_id, now.isoformat()),
            fetch=False,
        )

    def ended(self, session_id: str) -> bool:
        rows = self._execute(f"SELECT 1 FROM {self._table} WHERE session_id = ?", (session_id,))
        return bool(rows)
