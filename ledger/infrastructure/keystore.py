"""The member-key table, beside the event log in the same database (SQLite or PostgreSQL).

The one table of the ledger that is not an event store, and the one place rows are deleted:
erasure must destroy a key for good, which an append-only log cannot do. It uses the event
recorder's own connections, so it needs no configuration of its own. A destroyed key leaves a
row with no key in it, so "erased" can be told from "never had personal data".
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import ApplicationRecorder, OperationalError
from eventsourcing.postgres import PostgresDatastore
from psycopg_pool import PoolTimeout

from ledger.infrastructure.vault import KeyState

TABLE = "member_keys"


class SqlKeyStore:
    """`ledger.vault.KeyStore` on the recorder's datastore (portable SQL, `?` placeholders)."""

    def __init__(self, recorder: ApplicationRecorder) -> None:
        self._datastore: Any = recorder.datastore  # type: ignore[attr-defined]
        self._postgres = isinstance(self._datastore, PostgresDatastore)
        if self._postgres:
            self._table = f'"{self._datastore.schema}"."{TABLE}"'
            blob, now = "BYTEA", "now()"
        else:
            self._table = TABLE
            blob, now = "BLOB", "CURRENT_TIMESTAMP"
        self._execute(
            f"CREATE TABLE IF NOT EXISTS {self._table} ("
            "member_id TEXT PRIMARY KEY, "
            f"wrapped {blob}, "
            f"created_at TIMESTAMP NOT NULL DEFAULT {now}, "
            "destroyed_at TIMESTAMP)",
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

    def create(self, member: UUID, wrapped: bytes) -> bytes:
        self._execute(
            f"INSERT INTO {self._table} (member_id, wrapped) VALUES (?, ?) "
            "ON CONFLICT (member_id) DO NOTHING",
            (str(member), wrapped),
            fetch=False,
        )
        kept = self.get(member)
        if not isinstance(kept, bytes):
            raise TypeError(f"member {member} had a key, and it was destroyed")
        return kept

    def get(self, member: UUID) -> KeyState:
        rows = self._execute(
            f"SELECT wrapped FROM {self._table} WHERE member_id = ?", (str(member),)
        )
        if not rows:
            return None
        wrapped = rows[0]["wrapped"]
        return "erased" if wrapped is None else bytes(wrapped)

    def get_many(self, members: list[UUID]) -> dict[UUID, KeyState]:
        """The key states of those of `members` that have a key row."""
        if not members:
            return {}
        rows = self._execute(
            f"SELECT member_id, wrapped FROM {self._table} "
            f"WHERE member_id IN ({', '.join('?' * len(members))})",
            tuple(str(m) for m in members),
        )
        return {
            UUID(r["member_id"]): "erased" if r["wrapped"] is None else bytes(r["wrapped"])
            for r in rows
        }

    def destroy(self, member: UUID) -> bool:
        now = "now()" if self._postgres else "CURRENT_TIMESTAMP"
        rows = self._execute(
            f"UPDATE {self._table} SET wrapped = NULL, destroyed_at = {now} "
            "WHERE member_id = ? AND wrapped IS NOT NULL RETURNING member_id",
            (str(member),),
        )
        return bool(rows)

    def rewrap(self, member: UUID, old: bytes, new: bytes) -> bool:
        rows = self._execute(
            f"UPDATE {self._table} SET wrapped = ? WHERE member_id = ? AND wrapped = ? "
            "RETURNING member_id",
            (new, str(member), old),
        )
        return bool(rows)

    def members(self) -> list[UUID]:
        rows = self._execute(f"SELECT member_id FROM {self._table} WHERE wrapped IS NOT NULL")
        return [UUID(row["member_id"]) for row in rows]
