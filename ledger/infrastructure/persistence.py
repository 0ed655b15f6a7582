"""How events reach the store: the msgspec mapper, and the database URL as eventsourcing settings.

eventsourcing 9.5.6 maps events with `vars(event)`, which a msgspec Struct does not have; this
mapper encodes each event with msgspec (its class is the stored topic) and decodes it strictly
against that class. Nothing here writes SQL: the eventsourcing recorders do.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

import msgspec
import psycopg
from eventsourcing.persistence import (
    ApplicationRecorder,
    ListenNotifySubscription,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Subscription,
    Transcoder,
)
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresFactory, PostgresSubscription
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import Environment, get_topic, resolve_topic
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from ledger.domain.model import DomainEvent
from ledger.infrastructure.identityindex import IndexedPostgresRecorder, IndexedSQLiteRecorderMixin
from ledger.infrastructure.topics import STORED, topic_of

_encoder = msgspec.json.Encoder()
T = TypeVar("T")


_decoders: dict[str, msgspec.json.Decoder[DomainEvent]] = {}
_decoders_made = threading.Lock()


def _decoder(topic: str) -> msgspec.json.Decoder[DomainEvent]:
    """The decoder of a stored topic. Every stored class's decoder is made at the first call,
    under a lock: msgspec 0.22 builds a Struct type's decoding information on first use, and
    two threads doing that at once for related types crashed the process (SIGSEGV in
    msgspec's _core: 8 writer processes of 4 threads each, issue 18; the projection runners
    starting together on SQLite, issue 17); the lock and making them all at once leave no
    Struct of the log half-described while another thread decodes."""
    found = _decoders.get(topic)
    if found is None:
        with _decoders_made:
            if not _decoders:
                for stored in STORED:
                    _decoders[stored] = msgspec.json.Decoder(type=resolve_topic(stored))
            found = _decoders.get(topic)
            if found is None:
                found = _decoders[topic] = msgspec.json.Decoder(type=resolve_topic(topic))
    return found


_typed: dict[type, msgspec.json.Decoder[Any]] = {}


def typed_decoder(cls: type[T]) -> msgspec.json.Decoder[T]:
    """A decoder of stored states into `cls`, a lighter Struct that keeps only some of an
    event's fields (unknown fields are skipped, not built: D67). Made under the same lock as
    the topics' decoders (D63); `MsgspecMapper.prepare` makes them before threads run."""
    found = _typed.get(cls)
    if found is None:
        with _decoders_made:
            found = _typed.get(cls)
            if found is None:
                found = _typed[cls] = msgspec.json.Decoder(type=cls)
    return found


class NullTranscoder(Transcoder):
    """The mapper encodes whole events itself; a transcoder is never asked to."""

    def encode(self, obj: Any) -> bytes:  # pragma: no cover - never called
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:  # pragma: no cover - never called
        raise NotImplementedError


class UndecodableEvent(MapperDeserialisationError):
    """A stored event that does not decode as its topic's class, with where it is in the log
    (its notification id, when it was read as a notification)."""

    def __init__(self, message: str, stored: StoredEvent) -> None:
        super().__init__(message)
        self.position = int(getattr(stored, "id", 0) or 0)
        self.topic = stored.topic
        self.originator = f"{stored.originator_id} v{stored.originator_version}"


class MsgspecMapper(Mapper[Any]):
    """Maps msgspec Struct events to stored events and back (optionally compressed/encrypted)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Made here, where an application is built (before its threads run), not by the first
        # threads that read the log at once.
        _decoder(next(iter(STORED)))

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        state = _encoder.encode(domain_event)
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=topic_of(type(domain_event)),
            state=state,
        )

    @staticmethod
    def prepare(*classes: type) -> None:
        """Make the typed decoders of these classes now (where a service is built)."""
        for cls in classes:
            typed_decoder(cls)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return self.decode_as(stored_event, None)

    def decode_as(self, stored_event: StoredEvent, cls: type[T] | None) -> T:
        """The stored event decoded as `cls` (None: as its topic's own class)."""
        state = stored_event.state
        try:
            if self.cipher:
                state = self.cipher.decrypt(state)
            if self.compressor:
                state = self.compressor.decompress(state)
            if cls is None:
                return cast(T, _decoder(stored_event.topic).decode(state))
            return typed_decoder(cls).decode(state)
        except (msgspec.DecodeError, ValueError) as e:
            msg = (
                f"cannot decode stored event {stored_event.topic} of "
                f"{stored_event.originator_id} v{stored_event.originator_version}: {e}"
            )
            raise UndecodableEvent(msg, stored_event) from e


POLL_SECONDS = 0.05


class PollingSubscription(ListenNotifySubscription[SQLiteApplicationRecorder]):
    """SQLite has no LISTEN/NOTIFY: wake the library's puller every POLL_SECONDS instead."""

    def __init__(
        self, recorder: SQLiteApplicationRecorder, gt: int | None = None, topics: Sequence[str] = ()
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._ticker = threading.Thread(target=self._tick, daemon=True, name="sqlite-poll")
        self._ticker.start()

    def _tick(self) -> None:
        while not self._has_been_stopped:
            self._has_been_notified.set()
            threading.Event().wait(POLL_SECONDS)


class SubscribableSQLiteRecorder(IndexedSQLiteRecorderMixin, SQLiteApplicationRecorder):
    """The SQLite application recorder, plus `subscribe()` (by polling) so that eventsourcing's
    `ProjectionRunner` can follow a SQLite log as it follows a PostgreSQL one, and the identity
    index beside the events (`ledger.infrastructure.identityindex`)."""

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return PollingSubscription(recorder=self, gt=gt, topics=topics)


# After a notification, a PostgreSQL subscription waits this long before reading the log, so
# that one page (and one view transaction) carries the appends of that while instead of one
# each: SQLite's followers poll every POLL_SECONDS and batch the same way.
GATHER_SECONDS = 0.05


class GatheringSubscription(PostgresSubscription):
    """eventsourcing's LISTEN/NOTIFY subscription, reading the log at most every GATHER_SECONDS
    while appends keep coming (a full page is still followed by the next at once)."""

    def _loop_on_pull(self) -> None:
        try:
            self._pull()  # already recorded events
            pause = threading.Event()
            while not self._has_been_stopped:
                self._has_been_notified.wait()
                pause.wait(GATHER_SECONDS)
                self._pull()  # newly recorded events
        except BaseException as e:
            if self._thread_error is None:
                self._thread_error = e
            self.stop()


class FollowedPostgresRecorder(IndexedPostgresRecorder):
    """The PostgreSQL application recorder (with the identity index), whose subscriptions (the
    projection runners') gather appends into pages (`GatheringSubscription`)."""

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return GatheringSubscription(recorder=self, gt=gt, topics=topics)


DEFAULT_DATABASE_URL = "sqlite:///./ledger.db"


class PostgresTuning(msgspec.Struct, frozen=True, kw_only=True):
    """How a process uses PostgreSQL (LEDGER_PG_* variables; README's configuration table)."""

    # Also the pool's wait for a connection; eventsourcing tries a statement 10 times, so a
    # request that meets an outage answers 503 after ~22 s, not ~52 s. Not 1: a recorder's
    # first connection gets one try, and under load 1 s was too short.
    connect_timeout_seconds: int = 2
    # 0 would mean "wait forever" for the events table lock: never what a POS wants.
    lock_timeout_seconds: int = 5
    pool_size: int = 2  # opened at start; more on demand, up to pool_size + max_overflow
    max_overflow: int = 18


class LibpqFactory(PostgresFactory):
    """eventsourcing's PostgreSQL factory, connecting with every libpq parameter of the database
    URL (`sslmode`, `sslrootcert`, `application_name`, `target_session_attrs`, several hosts…):
    the library's own factory passes only dbname, host, port, user and password."""

    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        conninfo = env.get("POSTGRES_CONNINFO")
        if conninfo:
            self.datastore.pool.kwargs = conninfo_to_dict(conninfo) | {"row_factory": dict_row}


POSTGRES_FACTORY = get_topic(LibpqFactory)


def is_postgres(env: Mapping[str, str]) -> bool:
    return env["PERSISTENCE_MODULE"] == POSTGRES_FACTORY


def libpq_params(database_url: str, connect_timeout_seconds: float = 2.0) -> dict[str, str]:
    """The libpq parameters of a `postgresql://` URL (through `psycopg.conninfo`, so every one
    libpq knows is honoured; `PG*` variables fill the gaps as libpq's own do), without our own
    `?schema=`. Defaults kept from the first releases: host 127.0.0.1, user postgres."""
    parts = urlsplit(database_url)
    query = [p for p in parts.query.split("&") if p and not p.startswith("schema=")]
    try:
        params = conninfo_to_dict(parts._replace(query="&".join(query)).geturl())
    except psycopg.ProgrammingError as e:
        raise ValueError(f"database URL: {e}") from e
    if not params.get("dbname") and not os.environ.get("PGDATABASE"):
        raise ValueError("no database name in the database URL")
    if "host" not in params and "PGHOST" not in os.environ:
        params["host"] = "127.0.0.1"
    if "user" not in params and "PGUSER" not in os.environ:
        params["user"] = "postgres"
    # libpq's own bound on one connection attempt (a silent host would hang for minutes)
    params.setdefault("connect_timeout", str(max(2, round(connect_timeout_seconds))))
    return {k: str(v) for k, v in params.items()}


def eventsourcing_env(database_url: str, tuning: PostgresTuning | None = None) -> dict[str, str]:
    """Translate `LEDGER_DATABASE_URL` into eventsourcing's persistence settings.

    `sqlite:///relative.db`, `sqlite:////absolute.db`, `sqlite:///:memory:`, or
    `postgresql://user[:password]@host[:port]/db[?schema=name&sslmode=…&…]`.
    """
    env = {
        "MAPPER_TOPIC": get_topic(MsgspecMapper),
        "TRANSCODER_TOPIC": get_topic(NullTranscoder),
    }
    parts = urlsplit(database_url)
    if parts.scheme == "sqlite":
        path = database_url[len("sqlite:///") :]
        if not path:
            raise ValueError(f"no SQLite path in database URL {database_url!r}")
        env |= {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "APPLICATION_RECORDER_TOPIC": get_topic(SubscribableSQLiteRecorder),
        }
        if path == ":memory:":
            env["SQLITE_DBNAME"] = "file::memory:?cache=shared"
        env["SQLITE_LOCK_TIMEOUT"] = "10"
        return env
    if parts.scheme in ("postgresql", "postgres"):
        tuning = tuning or PostgresTuning()
        params = libpq_params(database_url, tuning.connect_timeout_seconds)
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        env |= {
            "PERSISTENCE_MODULE": POSTGRES_FACTORY,
            "APPLICATION_RECORDER_TOPIC": get_topic(FollowedPostgresRecorder),
            "POSTGRES_CONNINFO": make_conninfo(**params),
            # eventsourcing's own (it requires them; the connections use POSTGRES_CONNINFO)
            "POSTGRES_DBNAME": params.get("dbname", os.environ.get("PGDATABASE", "")),
            "POSTGRES_HOST": params.get("host", os.environ.get("PGHOST", "")),
            "POSTGRES_PORT": params.get("port", os.environ.get("PGPORT", "5432")),
            "POSTGRES_USER": params.get("user", os.environ.get("PGUSER", "")),
            "POSTGRES_PASSWORD": params.get("password", ""),
            "POSTGRES_CONNECT_TIMEOUT": str(tuning.connect_timeout_seconds),
            "POSTGRES_LOCK_TIMEOUT": str(tuning.lock_timeout_seconds),
            "POSTGRES_POOL_SIZE": str(tuning.pool_size),
            "POSTGRES_MAX_OVERFLOW": str(tuning.max_overflow),
            # No ping before every statement (a round trip each): a connection broken by an
            # outage fails once, the pool drops it and eventsourcing's retry reconnects.
            "POSTGRES_PRE_PING": "n",
            "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
        }
        if "schema" in query:
            env["POSTGRES_SCHEMA"] = unquote(query["schema"])
        return env
    raise ValueError(
        f"unsupported database URL {database_url!r}: use sqlite:///path or postgresql://..."
    )


def put_snapshots(store: Any, snapshots: Sequence[Any]) -> None:
    """Write `snapshots` to the snapshot `store` in one transaction. On PostgreSQL as four
    arrays in binary: the library's insert sends an array of composite rows, whose text
    encoding of a big member's state costs more than the insert itself."""
    recorder = store.recorder
    if not isinstance(recorder, PostgresAggregateRecorder):
        store.put(list(snapshots))
        return
    stored = [store.mapper.to_stored_event(snapshot) for snapshot in snapshots]
    with recorder.datastore.transaction(commit=True) as curs:
        curs.execute(
            SQL(
                "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[])"
            ).format(
                schema=Identifier(recorder.datastore.schema),
                table=Identifier(recorder.events_table_name),
            ),
            (
                [e.originator_id for e in stored],
                [e.originator_version for e in stored],
                [e.topic for e in stored],
                [e.state for e in stored],
            ),
        )
