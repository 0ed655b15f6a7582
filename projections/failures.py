"""A projection that cannot apply an event: stopped alone, retried with back-off, and said so.

When a view cannot apply an event (one it cannot decode, or one its SQL refuses), the runner
stops at that event (its rows and position roll back), the failure is recorded in the view's own
database (`<projection>_failure`, made with the view's tables), and the supervisor (`projections.runtime`) tries again after
a growing pause. Every process reads the record: `/health/ready` answers 503 naming the
projection and the event's position, `/metrics` shows `ledger_projection_failed{projection}`
1, and `ledger verify` exits 1 naming the event. The record goes once the view has moved past
that position (a fixed projection, or a rebuild). The write path and the other projections go
on: each projection has its own runner and view.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from projections.sqlview import FAILURE_TABLE, SqlView

TABLE = FAILURE_TABLE
BACKOFF_FIRST_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 60.0
ERROR_CHARS_MAX = 500


class ProjectionFailure(msgspec.Struct, frozen=True, kw_only=True):
    """Which event a projection could not apply, and why."""

    projection: str
    position: int  # the event's notification id in the log
    topic: str
    originator: str  # "<aggregate id> v<version>"
    error: str
    failed_at: str  # ISO 8601, UTC
    attempts: int = 1

    def describe(self) -> str:
        return (
            f"projection {self.projection} cannot apply the event at position {self.position} "
            f"({self.topic} of {self.originator}): {self.error}"
        )


class ProjectionFailed(Exception):
    """Raised by a runner or a replay at the event it cannot apply."""

    def __init__(self, failure: ProjectionFailure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


def failed(projection: str, position: int, event: Any, error: BaseException) -> ProjectionFailed:
    """The failure of `projection` at the event at `position` (decoded, or as stored)."""
    topic = getattr(event, "topic", None) or type(event).__name__
    originator = f"{event.originator_id} v{event.originator_version}"
    return ProjectionFailed(
        ProjectionFailure(
            projection=projection,
            position=position,
            topic=topic,
            originator=originator,
            error=f"{type(error).__name__}: {error}"[:ERROR_CHARS_MAX],
            failed_at=datetime.now(UTC).isoformat(),
        )
    )


def backoff_seconds(attempts: int) -> float:
    """The pause before the next try after `attempts` failed ones: 2 s, doubling, at most 60."""
    return float(min(BACKOFF_FIRST_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS))


def _run(view: SqlView, sql: str, params: tuple[Any, ...] = (), fetch: bool = False) -> list[Any]:
    sql = sql.replace("?", view.placeholder)
    with view._raw_transaction(commit=True) as raw:
        raw.execute(sql, params)
        return list(raw.fetchall()) if fetch else []


def record(view: SqlView, failure: ProjectionFailure) -> None:
    table = view.table_name(TABLE)
    _run(view, f"DELETE FROM {table} WHERE projection = ?", (failure.projection,))
    _run(
        view,
        f"INSERT INTO {table} (projection, position, topic, originator, error, failed_at, "
        "attempts) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            failure.projection,
            failure.position,
            failure.topic,
            failure.originator,
            failure.error,
            failure.failed_at,
            failure.attempts,
        ),
    )


def read(view: SqlView) -> ProjectionFailure | None:
    rows = _run(
        view,
        f"SELECT projection, position, topic, originator, error, failed_at, attempts "
        f"FROM {view.table_name(TABLE)}",
        fetch=True,
    )
    if not rows:
        return None
    row = rows[0]
    values = tuple(row.values()) if isinstance(row, dict) else tuple(row)
    names = ("projection", "position", "topic", "originator", "error", "failed_at", "attempts")
    return ProjectionFailure(**dict(zip(names, values, strict=True)))


def clear(view: SqlView) -> None:
    _run(view, f"DELETE FROM {view.table_name(TABLE)}")
