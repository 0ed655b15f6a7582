"""A poison event, written behind the service's back straight into the events table, on both
stores (SPEC 3.1, finding 1 of issue 14): the projections that cannot apply it stop there alone
and say so — `/health/ready` 503 naming the projection and the event's position, `/metrics`
`ledger_projection_failed{projection}` 1, `ledger verify` exits 1 naming the event at once —
while the write path and the projection that can apply it go on."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import psycopg
import pytest
from litestar.testing import TestClient

from entry.cli import main as cli_main
from ledger.application import Ledger
from ledger.domain import ids
from ledger.domain.member import MemberEnrolled
from ledger.infrastructure.topics import topic_of
from ledger.settings import Settings
from tests.chain import Chain
from tests.polling import caught_up, wait_until

pytestmark = pytest.mark.e2e

YEAR_ONE = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))


def _write_behind_the_back(settings: Settings, ledger: Ledger) -> int:
    """An enrolment in year 1 (+14:00), inserted with SQL: what the API now refuses, and what
    a log written before the bounds may hold. Returns its position in the log."""
    event = MemberEnrolled(
        originator_id=ids.member_id("POISON"),
        originator_version=1,
        member_id="POISON",
        store_id="S1",
        occurred_at=YEAR_ONE,
        tier=None,
        birthday=None,
        sealed=None,
        id_hash=None,
        fingerprint="",
        operator="behind the back",
    )
    row = (topic_of(MemberEnrolled), msgspec.json.encode(event))
    url = settings.database_url
    if url.startswith("sqlite"):
        datastore: Any = ledger.core.recorder.datastore  # type: ignore[attr-defined]
        with datastore.transaction(commit=True) as cursor:
            cursor.execute(
                "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
                "VALUES (?, 1, ?, ?)",
                (event.originator_id.hex, *row),
            )
    else:
        base, schema = url.split("?schema=")
        with psycopg.connect(base, autocommit=True) as db:
            db.execute(
                f'INSERT INTO "{schema}".ledger_events '  # noqa: S608 - the test's own schema
                "(originator_id, originator_version, topic, state) VALUES (%s, 1, %s, %s)",
                (event.originator_id, *row),
            )
    return ledger.core.log_position()


def test_a_poison_event_stops_only_the_projections_that_cannot_apply_it(
    chain: Chain,
    client: TestClient[Any],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    chain.standard()
    assert chain.enrol("M1").status_code == 201
    assert chain.sale("R1").status_code == 201
    caught_up(client)
    ledger: Ledger = client.app.state.ledger
    position = _write_behind_the_back(settings, ledger)

    assert chain.sale("R2").status_code == 201  # the write path goes on
    named = f"at position {position}"

    def not_ready() -> list[str]:
        response = client.get("/health/ready")
        reasons: list[str] = response.json()["reasons"]
        return reasons if response.status_code == 503 and named in str(reasons) else []

    reasons = wait_until(not_ready, 30, "/health/ready did not name the poison event")
    assert any("projection history" in reason for reason in reasons)
    assert client.get("/health").status_code == 503
    assert client.get("/health/live").status_code == 200

    metrics = client.get("/metrics").text
    assert 'ledger_projection_failed{projection="history"} 1.0' in metrics
    assert 'ledger_projection_failed{projection="settlement"} 0.0' in metrics

    head = ledger.core.log_position()
    settlement = client.app.state.queries.projections.views["settlement"]
    wait_until(
        lambda: (settlement.max_tracking_id("Ledger") or 0) >= head,
        20,
        "the settlement view did not go past the poison event",
    )

    monkeypatch.setenv("LEDGER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LEDGER_MASTER_KEY", settings.master_key.hex())
    started = time.monotonic()
    assert cli_main(["verify"]) == 1
    assert time.monotonic() - started < 25  # never the 30-second wait and a traceback
    out = capsys.readouterr().out
    assert named in out and "projection history cannot apply" in out
