"""Running projections: eventsourcing `ProjectionRunner`s following the ledger's log.

`Projections(settings)` builds, for each projection, a reader of its view (what the API
queries) and, on `start()`, a runner (a thread following the log; LISTEN/NOTIFY on PostgreSQL,
polling on SQLite). In `ledger serve` they run in the service process by default; `ledger
project` runs them in a process of their own. On PostgreSQL a view's tables sit beside the
log's (`history_entries`, `history_tracking`, …); on SQLite each view is a file of its own
beside the log (`ledger.db` → `ledger.history.db`), so a view's writer never waits for the
log's, and rebuilding a view is deleting its file.

However many processes start their projections on one database, each projection runs in the
one holding its lease (`ledger.infrastructure.leases`); the others stand by, and their
supervisor starts the runner when the lease comes to them. Tables are made under the schema
lock, so processes starting together do not race in `CREATE TABLE`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any
from uuid import UUID

import msgspec
import structlog
from eventsourcing.application import Application
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.projection import Projection, ProjectionRunner
from eventsourcing.utils import Environment

from ledger.infrastructure.leases import Leases, schema_lock
from ledger.infrastructure.logpages import pages
from ledger.infrastructure.persistence import PostgresTuning, eventsourcing_env, is_postgres
from ledger.settings import Settings
from projections import failures
from projections.analytics import (
    AnalyticsProjection,
    AnalyticsView,
    PostgresAnalyticsView,
    SQLiteAnalyticsView,
)
from projections.daily import DailyProjection, PostgresDailyView, SQLiteDailyView
from projections.history import (
    HistoryProjection,
    HistoryView,
    PostgresHistoryView,
    SQLiteHistoryView,
)
from projections.members import (
    MembersProjection,
    MembersView,
    PostgresMembersView,
    SQLiteMembersView,
)
from projections.runner import BatchingProjectionRunner, replay_one
from projections.settlement import (
    PostgresSettlementView,
    SettlementProjection,
    SettlementView,
    SQLiteSettlementView,
)
from projections.sqlview import SqlView

APPLICATION_NAME = "Ledger"


class LedgerLog(Application[UUID]):
    """The ledger's log as a runner reads it: same name, so the same tables."""

    name = APPLICATION_NAME


# name -> (projection, PostgreSQL view, SQLite view)
PROJECTIONS: dict[str, tuple[type[Projection[Any]], type[SqlView], type[SqlView]]] = {
    HistoryProjection.name: (HistoryProjection, PostgresHistoryView, SQLiteHistoryView),
    SettlementProjection.name: (
        SettlementProjection,
        PostgresSettlementView,
        SQLiteSettlementView,
    ),
    MembersProjection.name: (MembersProjection, PostgresMembersView, SQLiteMembersView),
    AnalyticsProjection.name: (AnalyticsProjection, PostgresAnalyticsView, SQLiteAnalyticsView),
    DailyProjection.name: (DailyProjection, PostgresDailyView, SQLiteDailyView),
}
RESTART_SECONDS = 2.0  # a runner stopped by an outage is restarted after this
SUPERVISE_SECONDS = 0.5
# A replay holds a transaction per view for a page of events, and a view that only writes
# sends nothing until the page ends: on a busy machine that wait can pass the store's idle
# timeout (POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT, 5 s), which ends the rebuild.
REPLAY_IDLE_SECONDS = 120
log = structlog.get_logger("ledger.projections")


def _close(runner: ProjectionRunner[Any, Any]) -> None:
    """Stop a runner and close its view's connections too (eventsourcing's `__exit__` closes the
    runner's application, not the view it made: each restart would leave a pool open)."""
    try:
        runner.__exit__(None, None, None)
    finally:
        with contextlib.suppress(Exception):
            runner.view.datastore.close()


def projection_env(
    database_url: str, prefix: str = "", tuning: PostgresTuning | None = None
) -> dict[str, str]:
    """The log's settings, plus where each view lives on SQLite."""
    env = eventsourcing_env(database_url, tuning)
    if is_postgres(env):
        # A runner needs one connection at a time (plus LISTEN); readers overflow on demand.
        env |= {"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "4"}
    if env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        log_db = env["SQLITE_DBNAME"]
        for name in PROJECTIONS:
            view = prefix + name
            if "memory" in log_db:
                env[f"{view.upper()}_SQLITE_DBNAME"] = f"file:{view}?mode=memory&cache=shared"
            else:
                stem = log_db.removesuffix(".db")
                env[f"{view.upper()}_SQLITE_DBNAME"] = f"{stem}.{view}.db"
    return env


def _is_sqlite(env: dict[str, str]) -> bool:
    return env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"


def _named(projection: type[Projection[Any]], name: str) -> type[Projection[Any]]:
    """The projection under another name (its view lives in tables of that name)."""
    if projection.name == name:
        return projection
    return type(f"{projection.__name__}_{name}", (projection,), {"name": name})


class Projections:
    """The views (for reading) and, once started, the runners (for writing) of a process.

    `prefix` names a second set of views beside the live ones (`ledger verify` rebuilds into
    `verify_*` and compares). A runner that fails (the database went away) is restarted by a
    supervisor thread after RESTART_SECONDS, from its tracked position; one that cannot apply
    an event is restarted after a growing pause, and the failure is recorded
    (`projections.failures`).
    """

    def __init__(
        self, settings: Settings, names: list[str] | None = None, prefix: str = ""
    ) -> None:
        unknown = sorted(set(names or []) - set(PROJECTIONS))
        if unknown:
            raise ValueError(f"unknown projection(s): {', '.join(unknown)}")
        self.env = projection_env(settings.database_url, prefix, settings.postgres)
        self.names = names or list(PROJECTIONS)
        self.prefix = prefix
        self.views: dict[str, SqlView] = {}
        self.runners: dict[str, ProjectionRunner[Any, Any]] = {}
        self.errors: dict[str, str] = {}
        self.failures: dict[str, failures.ProjectionFailure] = {}  # those this process runs
        self._attempts: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}
        self._factories: list[InfrastructureFactory[Any]] = []
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._lock = threading.Lock()
        self._settings = settings
        self.leases: Leases | None = None
        self._own_leases: Leases | None = None
        with self._schema_lock():
            for name in self.names:
                env = Environment(prefix + name, self.env)
                factory = InfrastructureFactory[Any].construct(env=env)
                self._factories.append(factory)
                self.views[name] = factory.tracking_recorder(self._view_class(name))

    def _schema_lock(self) -> contextlib.AbstractContextManager[None]:
        settings = self._settings
        return schema_lock(settings.database_url, settings.postgres.connect_timeout_seconds)

    def _view_class(self, name: str) -> type[SqlView]:
        _, pg_view, sqlite_view = PROJECTIONS[name]
        return sqlite_view if _is_sqlite(self.env) else pg_view

    @property
    def history(self) -> HistoryView:
        view = self.views[HistoryProjection.name]
        assert isinstance(view, HistoryView)  # noqa: S101 - narrowing for the type checker
        return view

    @property
    def settlement(self) -> SettlementView:
        view = self.views[SettlementProjection.name]
        assert isinstance(view, SettlementView)  # noqa: S101 - narrowing for the type checker
        return view

    @property
    def members(self) -> MembersView:
        view = self.views[MembersProjection.name]
        assert isinstance(view, MembersView)  # noqa: S101 - narrowing for the type checker
        return view

    @property
    def analytics(self) -> AnalyticsView:
        view = self.views[AnalyticsProjection.name]
        assert isinstance(view, AnalyticsView)  # noqa: S101 - narrowing for the type checker
        return view

    # -- running ---------------------------------------------------------------------------

    def _start_runner(self, name: str) -> None:
        # A runner makes the log's and its view's tables if missing, as `open_ledger` does:
        # under the same lock, or a process starting beside it races it.
        with self._schema_lock():
            runner: ProjectionRunner[Any, Any] = BatchingProjectionRunner(
                application_class=LedgerLog,
                projection_class=_named(PROJECTIONS[name][0], self.prefix + name),
                view_class=self._view_class(name),
                env=self.env,
            )
        runner.__enter__()
        self.runners[name] = runner

    def start(self, leases: Leases | None = None) -> None:
        """Run each projection whose lease this process gets (SPEC 4: one process at a time; the
        others stand by, `ledger.infrastructure.leases`), and the supervisor that starts a
        runner when its lease is taken, stops it when the lease is lost, and restarts a failed
        one. `leases`: the process's own (shared with the scheduler), else one of its own."""
        if leases is None:
            self._own_leases = leases = Leases(
                self._settings.database_url,
                self._settings.lease_seconds,
                self._settings.postgres.connect_timeout_seconds,
            )
            leases.want(self.prefix + name for name in self.names)
            leases.start()
        else:
            leases.want(self.prefix + name for name in self.names)
            leases.refresh()
        self.leases = leases
        for name in self.names:
            if leases.holds(self.prefix + name):
                self._start_runner(name)
        self._supervisor = threading.Thread(
            target=self._supervise, name="projection-supervisor", daemon=True
        )
        self._supervisor.start()

    def _supervise(self) -> None:
        while not self._stopping.wait(SUPERVISE_SECONDS):
            with self._lock:
                for name in self.names:
                    self._look_after(name)

    def _look_after(self, name: str) -> None:
        """Start `name`'s runner when this process holds its lease, stop it when the lease is
        lost; restart it when its pause is over; note a failure; clear a failure the view has
        moved past."""
        runner = self.runners.get(name)
        if self.leases is not None and not self.leases.holds(self.prefix + name):
            if runner is not None:
                del self.runners[name]
                with contextlib.suppress(Exception):
                    _close(runner)
                log.warning("projection_standing_by", projection=name)
            return
        if runner is None:  # failed: restart once the back-off pause is over
            if time.monotonic() >= self._retry_at.get(name, 0.0):
                self._restart(name)
            return
        try:
            runner.run_forever(timeout=0)  # raises a failure once, then forgets it
        except Exception as e:
            del self.runners[name]
            with contextlib.suppress(Exception):  # its error is recorded below
                _close(runner)
            self._failed(name, e)
            return
        failure = self.failures.get(name)
        if failure is not None and (self.positions().get(name, 0) >= failure.position):
            self.failures.pop(name)
            self._attempts.pop(name, None)
            with contextlib.suppress(Exception):
                failures.clear(self.views[name])
            log.info("projection_recovered", projection=name, position=failure.position)

    def _failed(self, name: str, e: Exception) -> None:
        """Record why `name` stopped and when to try again: an event it cannot apply waits
        longer each time (2 s, doubling, up to 60 s); an outage is retried every round."""
        self.errors[name] = f"{type(e).__name__}: {e}"
        if not isinstance(e, failures.ProjectionFailed):
            log.warning("projection_restarting", projection=name, error=self.errors[name])
            self._retry_at[name] = time.monotonic() + RESTART_SECONDS
            return
        attempts = self._attempts.get(name, 0) + 1
        self._attempts[name] = attempts
        failure = msgspec.structs.replace(e.failure, attempts=attempts)
        self.failures[name] = failure
        with contextlib.suppress(Exception):  # the view's database may be what failed
            failures.record(self.views[name], failure)
        self._retry_at[name] = time.monotonic() + failures.backoff_seconds(attempts)
        log.error("projection_failed", **msgspec.structs.asdict(failure))

    def _restart(self, name: str) -> None:
        """Start `name`'s runner again; if that fails too, the next round tries again."""
        try:
            self._start_runner(name)
        except Exception as e:
            self.errors[name] = f"{type(e).__name__}: {e}"
            self._retry_at[name] = time.monotonic() + RESTART_SECONDS

    def failed(self) -> dict[str, failures.ProjectionFailure]:
        """The projections that cannot apply an event, as recorded in their views (by whichever
        process runs them)."""
        found = {}
        for name, view in self.views.items():
            failure = failures.read(view)
            if failure is not None:
                found[name] = failure
        return found

    def wait(self, notification_id: int | None, timeout: float = 10.0) -> None:
        """Block until every view has applied the log up to `notification_id`."""
        for name in self.names:
            self.views[name].wait(APPLICATION_NAME, notification_id, timeout=timeout)

    def positions(self) -> dict[str, int]:
        """Each view's tracked position in the log."""
        return {
            name: view.max_tracking_id(APPLICATION_NAME) or 0 for name, view in self.views.items()
        }

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
        with self._lock:
            runners, self.runners = self.runners, {}
            for runner in runners.values():
                try:
                    _close(runner)
                except Exception as e:
                    log.warning("projection_stopped_with_error", error=str(e))
        if self._own_leases is not None:
            self._own_leases.stop()
        for factory in self._factories:
            factory.close()

    # -- replay ----------------------------------------------------------------------------

    def drop(self) -> None:
        """Empty every view (tables and tracking) and create its tables afresh."""
        for view in self.views.values():
            view.drop()
            view.create_table()
            failures.clear(view)  # a rebuild starts afresh: a failure is found again if it is

    def replay(self, upto: int, progress: Any = None, page: int = 1_000) -> None:
        """Apply the log up to `upto` to the views in this thread, each from its own position,
        a page of events per transaction (`ledger rebuild` and `ledger verify`, which must stop
        exactly where the live views stand)."""
        log_reader = LedgerLog(env=self.env)
        try:
            projections = {
                name: PROJECTIONS[name][0](view=view) for name, view in self.views.items()
            }
            positions = self.positions()
            start = min(positions.values(), default=upto) + 1
            for notifications in pages(log_reader.recorder, start, upto, size=page):
                with contextlib.ExitStack() as batches:
                    for view in self.views.values():
                        batches.enter_context(view.batch(REPLAY_IDLE_SECONDS))
                    for notification in notifications:
                        replay_one(log_reader, projections, positions, notification)
                if progress is not None:
                    progress(notifications[-1].id)
        finally:
            log_reader.close()

    def catch_up(self, head: int, progress: Any = None, poll: float = 0.2) -> None:
        """Run until every view has reached `head`; `progress(done)` gets the slowest position."""
        started = not self.runners
        if started:
            for name in self.names:
                self._start_runner(name)
        try:
            while True:
                slowest = min(self.positions().values(), default=head)
                if progress is not None:
                    progress(slowest)
                if slowest >= head:
                    return
                for runner in self.runners.values():
                    runner.run_forever(timeout=0)  # re-raises a runner's failure
                time.sleep(poll)
        finally:
            if started:
                runners, self.runners = self.runners, {}
                for runner in runners.values():
                    _close(runner)
