"""The identity index beside the log: what links a member to a person, kept where it can be
deleted (SPEC 2.8).

One row per member who gave personal data: the keyed hash of the ID number (unique: one member
per person), the keyed hash of the normalised phone number (finding a member by phone), the
birthday's month and day (the birthday multiplier) and the keyed fingerprint of the personal
part of the enrolment request (telling a retry from another request). The log itself holds
none of these, so erasure, which deletes the row with the member's key, leaves nothing in the
database that links the member to an ID number, a phone or a birthday.

Rows are written inside the same transaction as the enrolment's events: the recorders below are
eventsourcing's, with `_insert_events` / `insert_events` extended to apply an `IdentityChange`
handed down through `Application.save(..., identity=...)`. A second member with the same ID
number therefore fails that transaction with an `IntegrityError`, as a version clash does.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any, cast
from uuid import UUID

import msgspec
import psycopg
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.sql import SQL, Identifier
from psycopg_pool import PoolTimeout

from ledger.infrastructure.keystore import TABLE as KEYS_TABLE

TABLE = "member_identity"
BULK_EVENTS_MIN = 1_000  # events of one save written by `_insert_bulk` (an import's batch)
COLUMNS = ("member_id", "id_hash", "phone_hash", "birthday", "fingerprint")


class IdentityRow(msgspec.Struct, frozen=True, kw_only=True):
    """What links one member to a person (every field derived from their personal data)."""

    member_id: UUID
    id_hash: str | None = None
    phone_hash: str | None = None
    birthday: str | None = None  # 'MM-DD'
    fingerprint: str | None = None  # keyed, over the personal part of the enrolment request


class NewKey(msgspec.Struct, frozen=True):
    """A member key made for an import, wrapped by the master key (`ledger.infrastructure.vault`)."""

    member_id: UUID
    wrapped: bytes


class IdentityChange(msgspec.Struct, frozen=True, kw_only=True):
    """Rows to write and members to forget, in the transaction of some events (and the member
    keys an import made, so that its members' keys, rows and events commit together)."""

    put: tuple[IdentityRow, ...] = ()
    forget: tuple[UUID, ...] = ()
    keys: tuple[NewKey, ...] = ()

    @staticmethod
    def merged(changes: Iterable[IdentityChange | None]) -> IdentityChange | None:
        found = [c for c in changes if c is not None]
        if not found:
            return None
        return IdentityChange(
            put=tuple(r for c in found for r in c.put),
            forget=tuple(m for c in found for m in c.forget),
            keys=tuple(k for c in found for k in c.keys),
        )


def _table(datastore: Any, name: str = TABLE) -> str:
    if isinstance(datastore, PostgresDatastore):
        return f'"{datastore.schema}"."{name}"'
    return name


def create_statements(table: str) -> list[str]:
    index = f"{TABLE}_phone"
    return [
        f"CREATE TABLE IF NOT EXISTS {table} (member_id TEXT PRIMARY KEY, id_hash TEXT UNIQUE, "
        "phone_hash TEXT, birthday TEXT, fingerprint TEXT)",
        f"CREATE INDEX IF NOT EXISTS {index} ON {table} (phone_hash)",
    ]


def _apply(cursor: Any, datastore: Any, change: IdentityChange, placeholder: str) -> None:
    """Write `change` with `cursor`, inside the caller's transaction (one statement per kind:
    an import writes hundreds of rows at a time)."""
    table, marks = _table(datastore), ", ".join([placeholder] * len(COLUMNS))
    for member in change.forget:
        cursor.execute(f"DELETE FROM {table} WHERE member_id = {placeholder}", (str(member),))
    if change.keys:
        cursor.executemany(
            f"INSERT INTO {_table(datastore, KEYS_TABLE)} (member_id, wrapped) "
            f"VALUES ({placeholder}, {placeholder})",
            [(str(k.member_id), k.wrapped) for k in change.keys],
        )
    if change.put:
        cursor.executemany(
            f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({marks})",
            [
                (str(r.member_id), r.id_hash, r.phone_hash, r.birthday, r.fingerprint)
                for r in change.put
            ],
        )


class IndexedSQLiteRecorderMixin:
    """For the SQLite application recorder: the index table, and rows in the insert's transaction."""

    def construct_create_table_statements(self) -> list[str]:
        statements: list[str] = super().construct_create_table_statements()  # type: ignore[misc]
        return statements + create_statements(TABLE)

    def _insert_events(
        self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        change: IdentityChange | None = kwargs.get("identity")
        if change is not None:
            _apply(c, getattr(self, "datastore", None), change, "?")
        return super()._insert_events(c, stored_events, **kwargs)  # type: ignore[misc,no-any-return]


class IndexedPostgresRecorder(PostgresApplicationRecorder):
    """PostgreSQL's application recorder, plus the index table and its rows written in the same
    transaction as the events (through the library's insert function, as without an index)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._index_table = _table(self.datastore)
        self.sql_create_statements += [
            cast(Any, SQL(s)) for s in create_statements(self._index_table)
        ]

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        change: IdentityChange | None = kwargs.get("identity")
        if len(stored_events) >= BULK_EVENTS_MIN:
            return self._insert_bulk(stored_events, change)
        if change is None or not self.datastore.enable_db_functions:  # see _insert_events
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        rows = [
            self.construct_pg_stored_event(
                originator_id=e.originator_id,
                originator_version=e.originator_version,
                topic=e.topic,
                state=e.state,
            )
            for e in stored_events
        ]
        with self.datastore.transaction(commit=True) as curs:
            _apply(curs, self.datastore, change, "%s")
            curs.execute(self.sql_invoke_pg_function_insert_events, (rows,))
            return [int(r[self.pg_function_name_insert_events]) for r in curs.fetchall()]

    def _insert_bulk(
        self, stored_events: Sequence[StoredEvent], change: IdentityChange | None
    ) -> list[int]:
        """Many events (an import's batch) in one statement over four arrays, in binary: the
        library's insert function takes an array of composite rows, whose text encoding costs
        more than the insert itself at this size. The same lock and notification as the library
        takes, in the same order; ids in the order given (`WITH ORDINALITY`)."""
        with self.datastore.transaction(commit=True) as curs:
            if change is not None:
                self._apply_bulk(curs, change)
            self._lock_table(curs)
            self._notify_channel(curs)
            curs.execute(
                self._bulk_statement,
                (
                    [e.originator_id for e in stored_events],
                    [e.originator_version for e in stored_events],
                    [e.topic for e in stored_events],
                    [e.state for e in stored_events],
                ),
            )
            return [int(r["notification_id"]) for r in curs.fetchall()]

    def _apply_bulk(self, curs: Any, change: IdentityChange) -> None:
        """`_apply`, with the rows and keys each in one statement over arrays."""
        _apply(curs, self.datastore, IdentityChange(forget=change.forget), "%s")
        if change.keys:
            curs.execute(
                f"INSERT INTO {_table(self.datastore, KEYS_TABLE)} (member_id, wrapped) "
                "SELECT * FROM unnest(%b::text[], %b::bytea[])",
                ([str(k.member_id) for k in change.keys], [k.wrapped for k in change.keys]),
            )
        if change.put:
            columns = [[str(r.member_id) for r in change.put]] + [
                [getattr(r, c) for r in change.put] for c in COLUMNS[1:]
            ]
            curs.execute(
                f"INSERT INTO {self._index_table} ({', '.join(COLUMNS)}) SELECT * FROM "
                f"unnest({', '.join(['%b::text[]'] * len(COLUMNS))})",
                columns,
            )

    @functools.cached_property
    def _bulk_statement(self) -> Any:
        return SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT i, v, t, s FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "WITH ORDINALITY AS e(i, v, t, s, n) ORDER BY n RETURNING notification_id"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))

    def _insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        """Without the database functions the library calls this in the insert's transaction."""
        change: IdentityChange | None = kwargs.get("identity")
        if change is not None:
            _apply(curs, self.datastore, change, "%s")
        super()._insert_events(curs, stored_events, **kwargs)


class IdentityIndex:
    """Reads of the index (and the writes that belong to no event: rebuilding it), on the
    recorder's own connections."""

    def __init__(self, recorder: ApplicationRecorder) -> None:
        self._datastore: Any = recorder.datastore  # type: ignore[attr-defined]
        self._postgres = isinstance(self._datastore, PostgresDatastore)
        self.table = _table(self._datastore)
        for statement in create_statements(self.table):  # a store made before the index
            self._execute(statement, fetch=False)

    def _execute(self, sql: str, params: tuple[Any, ...] = (), fetch: bool = True) -> list[Any]:
        if self._postgres:
            sql = sql.replace("?", "%s")
        try:
            if self._postgres and fetch:
                # One statement on an autocommit connection is its own transaction: no BEGIN
                # and COMMIT round trips around a read (a sale's birthday lookup).
                with self._datastore.cursor() as cursor:
                    cursor.execute(sql, params)
                    return list(cursor.fetchall())
            with self._datastore.transaction(commit=True) as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall()) if fetch else []
        except (psycopg.Error, PoolTimeout) as e:  # what eventsourcing's own recorders raise
            raise OperationalError(e) from e

    def _rows(self, where: str, *values: str) -> list[IdentityRow]:
        if not values:
            return []
        rows = self._execute(
            f"SELECT {', '.join(COLUMNS)} FROM {self.table} "
            f"WHERE {where} IN ({', '.join('?' * len(values))})",
            values,
        )
        return [
            IdentityRow(
                member_id=UUID(r["member_id"]),
                id_hash=r["id_hash"],
                phone_hash=r["phone_hash"],
                birthday=r["birthday"],
                fingerprint=r["fingerprint"],
            )
            for r in rows
        ]

    def row(self, member: UUID) -> IdentityRow | None:
        found = self._rows("member_id", str(member))
        return found[0] if found else None

    def holder_of(self, id_hash: str) -> UUID | None:
        """The member whose ID number hashes to `id_hash`, if any."""
        found = self._rows("id_hash", id_hash)
        return found[0].member_id if found else None

    def rows_of(self, members: Sequence[UUID]) -> dict[UUID, IdentityRow]:
        """The rows of these members (an import asks for a batch at a time)."""
        return {r.member_id: r for r in self._rows("member_id", *map(str, members))}

    def holders(self, id_hashes: Sequence[str]) -> dict[str, UUID]:
        """The members holding these ID-number hashes."""
        return {r.id_hash: r.member_id for r in self._rows("id_hash", *id_hashes) if r.id_hash}

    def by_phone(self, phone_hash: str) -> list[UUID]:
        return [r.member_id for r in self._rows("phone_hash", phone_hash)]

    def put_if_free(self, row: IdentityRow) -> bool:
        """Write `row` unless its member or its ID number has a row already (a rebuild)."""
        try:
            self._execute(
                f"INSERT INTO {self.table} ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join(['?'] * len(COLUMNS))})",
                (str(row.member_id), row.id_hash, row.phone_hash, row.birthday, row.fingerprint),
                fetch=False,
            )
        except IntegrityError:
            return False
        return True

    def birthdays(self, limit: int) -> dict[UUID, str | None]:
        """Up to `limit` members' birthdays ('MM-DD', or None), in one read: a process loads
        them at start instead of one read per member's first sale."""
        rows = self._execute(f"SELECT member_id, birthday FROM {self.table} LIMIT ?", (limit,))
        return {UUID(r["member_id"]): r["birthday"] for r in rows}

    def members(self) -> set[UUID]:
        return {UUID(r["member_id"]) for r in self._execute(f"SELECT member_id FROM {self.table}")}
