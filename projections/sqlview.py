"""Views written once for both stores: SQL with `?` placeholders and `{table}` names, run by
eventsourcing's PostgreSQL or SQLite tracking recorder.

A view declares its tables (`TABLES`: name → column definitions and key) and writes through
`transaction()`, whose cursor also inserts the tracking position, so a view's rows and its
position move together in one transaction. On PostgreSQL the tables carry the projection's
prefix beside the log (`settlement_rows`); on SQLite they sit in the view's own file.
`dump()` reads every table in key order, for `ledger verify`; `drop()` removes them all, for
`ledger rebuild`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder
from psycopg.sql import SQL

Row = tuple[Any, ...]
TRACKED_APPLICATION = "Ledger"  # the log every view follows (its tracking rows carry this name)


class Table:
    """A view table: `columns` as SQL column definitions (portable types), `key` its primary key."""

    def __init__(self, columns: str, key: str, indexes: Sequence[str] = ()) -> None:
        self.columns = columns
        self.key = key
        self.indexes = indexes


def utc_text(instant: datetime) -> str:
    """Times as sortable UTC text, so one comparison works on both stores."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Cursor:
    """One transaction on a view: portable SQL in, plain tuples out."""

    def __init__(self, raw: Any, names: dict[str, str], placeholder: str, view: SqlView) -> None:
        self._raw = raw
        self._names = names
        self._placeholder = placeholder
        self._view = view

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        text = statement.format(**self._names).replace("?", self._placeholder)
        self._raw.execute(text, tuple(params))

    def all(self) -> list[Row]:
        return [_tuple(row) for row in self._raw.fetchall()]

    def one(self) -> Row | None:
        row = self._raw.fetchone()
        return None if row is None else _tuple(row)

    def track(self, tracking: Tracking) -> None:
        self._view.track_in(self._raw, tracking)


def _tuple(row: Any) -> Row:
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)


class SqlView(TrackingRecorder, ABC):
    """A view's tables and the one way to write them (with the tracking position)."""

    TABLES: ClassVar[dict[str, Table]] = {}

    @abstractmethod
    def table_name(self, table: str) -> str: ...

    @abstractmethod
    def track_in(self, raw: Any, tracking: Tracking) -> None: ...

    @property
    @abstractmethod
    def placeholder(self) -> str: ...

    @abstractmethod
    @contextmanager
    def _raw_transaction(self, commit: bool) -> Iterator[Any]: ...

    @abstractmethod
    def _drop_tracking(self, cursor: Cursor) -> None: ...

    @abstractmethod
    def create_table(self) -> None: ...

    def _names(self) -> dict[str, str]:
        return {name: self.table_name(name) for name in self.TABLES}

    @contextmanager
    def transaction(self, commit: bool = True) -> Iterator[Cursor]:
        with self._raw_transaction(commit) as raw:
            yield Cursor(raw, self._names(), self.placeholder, self)

    def create_statements(self) -> list[str]:
        statements = []
        for name, table in self.TABLES.items():
            full = self.table_name(name)
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {full} ({table.columns}, PRIMARY KEY ({table.key}))"
            )
            for i, columns in enumerate(table.indexes):
                index = self.table_name(f"{name}_i{i}").rsplit(".", 1)[-1]
                statements.append(f"CREATE INDEX IF NOT EXISTS {index} ON {full} ({columns})")
        return statements

    def record_position(self, tracking: Tracking) -> None:
        """An event this view has nothing to do with: only the position moves."""
        with self.transaction() as cursor:
            cursor.track(tracking)

    def dump(self) -> Iterator[tuple[str, list[Row]]]:
        """Every table's rows in key order (what `ledger verify` compares)."""
        with self.transaction(commit=False) as cursor:
            for name, table in self.TABLES.items():
                cursor.execute(f"SELECT * FROM {{{name}}} ORDER BY {table.key}")
                yield name, cursor.all()

    def drop(self) -> None:
        """Remove the view's tables and its tracking (a rebuild starts from the log's start)."""
        with self.transaction() as cursor:
            for name in self.TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS {{{name}}}")
            self._drop_tracking(cursor)


class PostgresSqlView(PostgresTrackingRecorder, SqlView):
    """Tables named `<projection>_<table>` in the log's schema."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prefix = self.tracking_table_name.removesuffix("_tracking")
        self.sql_create_statements += [
            cast(Any, SQL(statement)) for statement in self.create_statements()
        ]

    def table_name(self, table: str) -> str:
        return f'"{self.datastore.schema}"."{self._prefix}_{table}"'

    @property
    def placeholder(self) -> str:
        return "%s"

    def track_in(self, raw: Any, tracking: Tracking) -> None:
        self._insert_tracking(raw, tracking)

    @contextmanager
    def _raw_transaction(self, commit: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as curs:
            yield curs

    def _drop_tracking(self, cursor: Cursor) -> None:
        cursor.execute(
            f'DELETE FROM "{self.datastore.schema}"."{self.tracking_table_name}" '
            "WHERE application_name = ?",
            (TRACKED_APPLICATION,),
        )


class SQLiteSqlView(SQLiteTrackingRecorder, SqlView):
    """Tables with plain names in the view's own database file."""

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *self.create_statements()]

    def table_name(self, table: str) -> str:
        return table

    @property
    def placeholder(self) -> str:
        return "?"

    def track_in(self, raw: Any, tracking: Tracking) -> None:
        self._insert_tracking(raw, tracking)

    @contextmanager
    def _raw_transaction(self, commit: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as curs:
            yield curs

    def _drop_tracking(self, cursor: Cursor) -> None:
        cursor.execute("DELETE FROM tracking WHERE application_name = ?", (TRACKED_APPLICATION,))
