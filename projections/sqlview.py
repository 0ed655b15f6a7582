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

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar, cast

from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection
from eventsourcing.sqlite import SQLiteTrackingRecorder
from psycopg.sql import SQL

from projections.arrayinsert import ARRAY_MIN_ROWS, ArrayInsert, array_insert, insert_table

Row = tuple[Any, ...]
FAILURE_TABLE = "failure"
TRACKED_APPLICATION = "Ledger"  # the log every view follows (its tracking rows carry this name)
_WHOLE = "whole"  # the memo key saying the memo holds every row it keeps copies of


class Table:
    """A view table: `columns` as SQL column definitions (portable types), `key` its primary key."""

    def __init__(self, columns: str, key: str, indexes: Sequence[str] = ()) -> None:
        self.columns = columns
        self.key = key
        self.indexes = indexes
        self.types = {
            name: kind.upper() for name, kind in (column.split() for column in columns.split(","))
        }


def utc_text(instant: datetime) -> str:
    """Times as sortable UTC text, so one comparison works on both stores."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Cursor:
    """One transaction on a view: portable SQL in, plain tuples out.

    `write()` buffers a statement; the buffer is flushed per distinct statement (in the order
    each first appeared) before any read and at the end of the transaction, so a batch of
    events costs a few round trips, not one per row. So writes of different statements must
    commute: views write inserts of fresh keys, additive upserts, or upserts that set a value
    (the last write of one statement wins, as its order is kept). On PostgreSQL many rows of an
    INSERT go as arrays (`projections.arrayinsert`), else with one `executemany`.
    """

    def __init__(
        self, raw: Any, names: dict[str, str], placeholder: str, view: SqlView, batch: bool = False
    ) -> None:
        self._raw = raw
        self._names = names
        self._placeholder = placeholder
        self._view = view
        self._batch = batch
        self._pending: dict[str, list[tuple[Any, ...]]] = {}
        self.position: Tracking | None = None  # in a batch: the last event's, written at its end

    def _sql(self, statement: str) -> str:
        return statement.format(**self._names).replace("?", self._placeholder)

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        """Run a statement now (after the buffered writes): reads, DDL."""
        self.flush()
        self._raw.execute(self._sql(statement), tuple(params))

    def write(self, statement: str, params: Sequence[Any] = ()) -> None:
        self._pending.setdefault(statement, []).append(tuple(params))

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for statement, rows in pending.items():
            plan = self._view.array_insert(statement) if len(rows) >= ARRAY_MIN_ROWS else None
            if plan is None:
                self._raw.executemany(self._sql(statement), rows)
                continue
            for arrays in plan.chunks(rows):
                self._raw.execute(self._sql(plan.sql), arrays)

    def all(self) -> list[Row]:
        return [_tuple(row) for row in self._raw.fetchall()]

    def one(self) -> Row | None:
        row = self._raw.fetchone()
        return None if row is None else _tuple(row)

    def track(self, tracking: Tracking) -> None:
        self.position = tracking

    def finish(self) -> None:
        """Flush the writes and record the position of the last event applied."""
        self.flush()
        if self.position is not None:
            self._view.track_in(self._raw, self.position)
            self.position = None


def _tuple(row: Any) -> Row:
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)


class SqlView(TrackingRecorder, ABC):
    """A view's tables and the one way to write them (with the tracking position)."""

    TABLES: ClassVar[dict[str, Table]] = {}

    def array_insert(self, statement: str) -> ArrayInsert | None:
        """How to write many rows of `statement` as arrays (PostgreSQL), or None: row by row."""
        return None

    @abstractmethod
    def table_name(self, table: str) -> str: ...

    def track_in(self, raw: Any, tracking: Tracking) -> None:
        """Insert the position with the library's own statement, in this transaction."""
        cast(Any, self)._insert_tracking(raw, tracking)

    @property
    @abstractmethod
    def placeholder(self) -> str: ...

    @contextmanager
    def _raw_transaction(self, commit: bool) -> Iterator[Any]:
        """A transaction of the recorder's datastore (PostgreSQL or SQLite)."""
        with cast(Any, self).datastore.transaction(commit=commit) as raw:
            yield raw

    @abstractmethod
    def _drop_tracking(self, cursor: Cursor) -> None: ...

    def _allow_idle(self, raw: Any, seconds: int) -> None:
        """Let this transaction stay idle up to `seconds` between statements (PostgreSQL)."""

    @abstractmethod
    def create_table(self) -> None: ...

    def _names(self) -> dict[str, str]:
        return {name: self.table_name(name) for name in self.TABLES}

    @contextmanager
    def transaction(self, commit: bool = True) -> Iterator[Cursor]:
        """A transaction of its own, or, inside `batch()` on this thread, the batch's."""
        batch: Cursor | None = getattr(self._local, "batch", None)
        if batch is not None:
            yield batch
            return
        try:
            with self._raw_transaction(commit) as raw:
                cursor = Cursor(raw, self._names(), self.placeholder, self)
                yield cursor
                if commit:
                    cursor.finish()
        except BaseException:
            self.forget()
            raise

    @contextmanager
    def batch(self, idle_seconds: int | None = None) -> Iterator[None]:
        """Apply many events in one transaction (replays): their rows, then the position of the
        last one, commit together, so a batch is applied entirely or not at all. `idle_seconds`:
        how long the transaction may wait between statements (a view that only writes sends
        nothing until the batch ends) before PostgreSQL ends it; default the store's setting."""
        try:
            with self._raw_transaction(True) as raw:
                if idle_seconds is not None:
                    self._allow_idle(raw, idle_seconds)
                cursor = Cursor(raw, self._names(), self.placeholder, self, batch=True)
                self._local.batch = cursor
                try:
                    yield
                    cursor.finish()
                finally:
                    self._local.batch = None
        except BaseException:
            self.forget()
            raise

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Writes that commit together: in the batch under way on this thread, or else in a
        batch of their own (one event's rows written by two methods, and its position)."""
        if getattr(self._local, "batch", None) is not None:
            yield
            return
        with self.batch():
            yield

    def forget(self) -> None:
        """Drop what the view keeps in memory (a failed transaction may have run ahead of it)."""
        self.__dict__.pop("_memo", None)

    def memo(self) -> dict[str, Any]:
        """The view's in-memory copies of what it wrote (valid while this is the only writer:
        one process per projection), dropped whenever a transaction fails."""
        memo: dict[str, Any] = self.__dict__.setdefault("_memo", {})
        return memo

    def memo_is_whole(self) -> bool:
        """Whether the memo's copies are all there is: this view object emptied the view
        (`drop()`, as a rebuild does) and has kept every copy since, so a row it has no copy
        of does not exist and need not be read (a replay's reads are each a round trip that
        also flushes the buffered writes). A view that drops copies calls `memo_is_partial()`."""
        return bool(self.memo().get(_WHOLE))

    def memo_is_partial(self) -> None:
        self.memo()[_WHOLE] = False

    @property
    def _local(self) -> threading.local:
        local: threading.local | None = self.__dict__.get("_thread_local")
        if local is None:
            local = self.__dict__.setdefault("_thread_local", threading.local())
        return local

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
        # where the runner records an event this view cannot apply (projections.failures)
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {self.table_name(FAILURE_TABLE)} (projection TEXT "
            "PRIMARY KEY, position BIGINT, topic TEXT, originator TEXT, error TEXT, "
            "failed_at TEXT, attempts INTEGER)"
        )
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
        self.forget()
        self.memo()[_WHOLE] = True  # empty, and so is the memo (see memo_is_whole)


class PostgresSqlView(PostgresTrackingRecorder, SqlView):
    """Tables named `<projection>_<table>` in the log's schema."""

    def array_insert(self, statement: str) -> ArrayInsert | None:
        name = insert_table(statement)
        table = self.TABLES.get(name) if name else None
        return array_insert(statement, tuple(table.types.items())) if table else None

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

    def _allow_idle(self, raw: Any, seconds: int) -> None:
        raw.execute(f"SET LOCAL idle_in_transaction_session_timeout = '{int(seconds)}s'")

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

    def _drop_tracking(self, cursor: Cursor) -> None:
        cursor.execute("DELETE FROM tracking WHERE application_name = ?", (TRACKED_APPLICATION,))


V = TypeVar("V", bound=SqlView)
Handler = Callable[[Any, Any, Tracking], None]


def all_subclasses(cls: type) -> list[type]:
    """Every subclass of `cls`, at any depth (the event types a projection handles alike)."""
    found: list[type] = []
    subclasses: list[type] = cls.__subclasses__()
    for sub in subclasses:
        found += [sub, *all_subclasses(sub)]
    return found


def handles(*event_types: type) -> Callable[[Handler], Handler]:
    """Mark a projection method as the handler of these event types."""

    def mark(method: Handler) -> Handler:
        method._handles = event_types  # type: ignore[attr-defined]
        return method

    return mark


class ViewProjection(Projection[V], Generic[V]):
    """A projection dispatching each event to its `@handles` method by type (a dict lookup);
    an event it has no handler for only moves the view's position."""

    _handlers: ClassVar[dict[type, Handler]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers = dict(cls._handlers)
        for method in vars(cls).values():
            for event_type in getattr(method, "_handles", ()):
                handlers[event_type] = method
        cls._handlers = handlers

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        handler = self._handlers.get(type(domain_event))
        if handler is None:
            self.view.record_position(tracking)
        else:
            handler(self, domain_event, tracking)
