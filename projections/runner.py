"""The runner that follows the log for one projection: eventsourcing's `ProjectionRunner`,
applying the events its subscription has already fetched in one view transaction, and naming
the event a view cannot apply (`projections.failures`). `replay_one` does the same for a replay
(`ledger rebuild`, `ledger verify`)."""

from __future__ import annotations

import threading
import weakref
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Tracking
from eventsourcing.projection import ApplicationSubscription, ProjectionRunner

from ledger.infrastructure.persistence import UndecodableEvent
from projections import failures
from projections.sqlview import SqlView

APPLICATION_NAME = "Ledger"
# Events applied in one view transaction at most: what is already fetched (pages queued by the
# subscription's reader included), bounded so that a catch-up's transaction stays short.
BATCH_MAX = 2_000


class BatchingProjectionRunner(ProjectionRunner[Any, Any]):
    """eventsourcing's runner, applying in one view transaction the events its subscription
    has already fetched (the pages it has queued, up to BATCH_MAX events), instead of one
    transaction per event. Rows and
    position still commit together, so a batch is applied entirely or not at all. An event the
    view cannot apply stops the runner with `ProjectionFailed` naming it; after a recorded
    failure the runner applies one event per transaction, so the events before it commit."""

    @staticmethod
    def _process_events_loop(
        subscription: ApplicationSubscription[Any],
        projection: Any,
        is_stopping: threading.Event,
        runner: weakref.ReferenceType[Any],
    ) -> None:
        events = iter(subscription)
        view: SqlView = projection.view
        name: str = projection.name
        try:
            careful = failures.read(view) is not None
            while True:
                event, tracking = _next(events, name)  # waits for the next event
                with view.batch():
                    _apply(projection, name, event, tracking)
                    applied = 1
                    while not careful and applied < BATCH_MAX and _fetched(subscription):
                        event, tracking = _next(events, name)
                        _apply(projection, name, event, tracking)
                        applied += 1
        except StopIteration:
            pass
        except BaseException as e:  # as eventsourcing's loop: the runner re-raises it
            alive = runner()
            if alive is not None:
                alive._thread_error = e
        finally:
            is_stopping.set()


def _next(events: Any, name: str) -> tuple[Any, Tracking]:
    try:
        event, tracking = next(events)
    except UndecodableEvent as e:  # raised by the mapper, which knows the stored event
        raise failures.ProjectionFailed(
            failures.ProjectionFailure(
                projection=name,
                position=e.position,
                topic=e.topic,
                originator=e.originator,
                error=str(e)[: failures.ERROR_CHARS_MAX],
                failed_at=datetime.now(UTC).isoformat(),
            )
        ) from e
    return event, tracking


def _apply(projection: Any, name: str, event: Any, tracking: Tracking) -> None:
    try:
        projection.process_event(event, tracking)
    except Exception as e:
        raise failures.failed(name, tracking.notification_id, event, e) from e


def _fetched(subscription: ApplicationSubscription[Any]) -> bool:
    """Whether the subscription holds more events already fetched (no wait for the next): in
    the page being read, or in a page its reader thread has queued since."""
    inner = subscription.subscription
    index = getattr(inner, "_notifications_index", None)
    fetched = getattr(inner, "_notifications", None)
    if index is not None and fetched is not None and index < len(fetched):
        return True
    queued = getattr(inner, "_notifications_queue", None)
    return queued is not None and queued.qsize() > 0


def replay_one(
    log_reader: Application[Any],
    projections: dict[str, Any],
    positions: dict[str, int],
    notification: Any,
) -> None:
    """Apply one stored event to every projection not yet past it; `ProjectionFailed` names
    the event a projection cannot apply."""
    tracking = Tracking(APPLICATION_NAME, notification.id)
    try:
        event = log_reader.mapper.to_domain_event(notification)
    except UndecodableEvent as e:
        name = next(iter(projections))
        raise failures.failed(name, notification.id, notification, e) from e
    for name, projection in projections.items():
        if positions[name] < notification.id:
            try:
                projection.process_event(event, tracking)
            except Exception as e:
                raise failures.failed(name, notification.id, event, e) from e
