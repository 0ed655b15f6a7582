"""The projection supervisor keeps restarting a failed runner until a restart succeeds: a
restart that fails too (the database still down) is tried again on the next round, so a view
never stops following the log for good after an outage."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from eventsourcing.persistence import OperationalError

from ledger.application import Ledger
from ledger.domain.commands import EnrolMember, RegisterStore
from ledger.settings import Settings
from projections.runtime import Projections

pytestmark = pytest.mark.integration


def test_a_runner_whose_restart_fails_is_restarted_on_a_later_round(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(settings)
    views = Projections(settings, ["history"])
    try:
        ledger.access.configure_store("S1", RegisterStore(name="One", kind="direct"), "t")
        views.start()
        views.wait(ledger.core.log_position())

        starts = 0
        start_runner = views._start_runner

        def first_restart_fails(name: str) -> None:
            nonlocal starts
            starts += 1
            if starts == 1:
                raise OperationalError("connection refused")  # the database is still down
            start_runner(name)

        monkeypatch.setattr(views, "_start_runner", first_restart_fails)
        # what eventsourcing's processing thread does when the database goes away mid-read
        runner = views.runners["history"]
        runner._thread_error = OperationalError("server closed the connection unexpectedly")
        runner._is_interrupted.set()

        ledger.members.enrol(EnrolMember(member_id="M1", store_id="S1"), "t", datetime.now(UTC))
        views.wait(ledger.core.log_position(), timeout=20)  # raises if the view never catches up
        assert starts == 2
        assert views.errors["history"] == "OperationalError: connection refused"
    finally:
        views.stop()
        ledger.close()
