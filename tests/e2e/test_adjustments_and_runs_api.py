"""Adjustments, expiry runs and tier reviews over HTTP on both stores (SPEC 2.2, 2.5, 2.6)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import msgspec
import pytest
from litestar.testing import TestClient

from api.app import create_app
from entry.cli import main
from ledger.settings import Settings
from tests.chain import ADMIN, Chain, now_iso
from tests.e2e.conftest import Clock
from tests.polling import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def ready(chain: Chain) -> Chain:
    chain.standard()
    chain.enrol("M1")
    return chain


def test_credit_and_debit_adjustments(ready: Chain) -> None:
    credit = ready.adjust("ADJ-1", 80, reason="lost receipt", ticket="CS-42")
    assert credit.status_code == 201, credit.text
    body = credit.json()
    assert body["points"] == 80 and body["balance"]["points"] == 80
    assert body["reason"] == "lost receipt" and body["ticket"] == "CS-42" and body["operator"]
    assert body["expires_at"] is not None
    debit = ready.adjust("ADJ-2", -30)
    assert debit.status_code == 201 and debit.json()["balance"]["points"] == 50
    beyond = ready.adjust("ADJ-3", -51)
    assert beyond.status_code == 409 and beyond.json()["type"] == "insufficient-points"
    assert ready.member()["points"] == 50


def test_adjustments_are_idempotent_by_number(ready: Chain) -> None:
    first = ready.adjust("ADJ-1", 10)
    again = ready.adjust("ADJ-1", 10)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert ready.adjust("ADJ-1", 11).status_code == 409
    assert ready.member()["points"] == 10


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"points": 0}, "points"), ({"reason": ""}, "reason"), ({"ticket": ""}, "ticket")],
)
def test_bad_adjustments_are_422(ready: Chain, fields: dict[str, object], field: str) -> None:
    response = ready.adjust("ADJ-1", **({"points": 5} | fields))  # type: ignore[arg-type]
    assert response.status_code == 422 and response.json()["field"] == field
    assert ready.member()["points"] == 0


def test_only_customer_service_adjusts(ready: Chain) -> None:
    body = {"adjustment_no": "A", "points": 5, "reason": "r", "ticket": "t"}
    response = ready.client.post("/v1/members/M1/adjustments", json=body, headers=ready.pos())
    assert response.status_code == 403


def test_an_expiry_run_expires_due_lots_once(ready: Chain) -> None:
    old = [{"sku": "A", "category": "otc", "amount_fen": 10_000}]
    ready.sale("R1", lines=old, occurred_at="2025-06-01T10:00:00+08:00")  # due 2026-04-01
    ready.sale("R2", lines=old)  # due next year
    expiring = ready.member()["expiring"]
    assert expiring[0] == {
        "points": 100,
        "expires_at": "2026-04-01T00:00:00+08:00",
        "overdue": True,
    }
    assert ready.member()["points"] == 200  # overdue points count until the run

    run = ready.client.post("/v1/admin/expiry-runs", json={"as_of": now_iso()}, headers=ADMIN)
    assert run.status_code == 200, run.text
    assert (run.json()["lots_expired"], run.json()["points_expired"]) == (1, 100)
    assert ready.member()["points"] == 100
    again = ready.client.post("/v1/admin/expiry-runs", json={"as_of": now_iso()}, headers=ADMIN)
    assert again.json()["lots_expired"] == 0


def test_a_voided_redemption_refills_an_expired_lot_which_expires_again(ready: Chain) -> None:
    old = [{"sku": "A", "category": "otc", "amount_fen": 10_000}]
    ready.sale("R1", lines=old, occurred_at="2025-06-01T10:00:00+08:00")  # due 2026-04-01
    before_due = "2026-03-01T10:00:00+08:00"  # a due lot is gone for writes (SPEC 2.3)
    assert ready.redeem("X1", "cash_offset", 60, occurred_at=before_due).status_code == 201
    run = ready.client.post("/v1/admin/expiry-runs", json={"as_of": now_iso()}, headers=ADMIN)
    assert run.json()["points_expired"] == 40
    assert ready.redemption_action("X1", "void").json()["points_restored"] == 60
    assert ready.member()["points"] == 60
    run = ready.client.post("/v1/admin/expiry-runs", json={"as_of": now_iso()}, headers=ADMIN)
    assert run.json()["points_expired"] == 60
    assert ready.member()["points"] == 0


def test_runs_refuse_a_future_as_of_and_non_admins(ready: Chain) -> None:
    future = ready.client.post(
        "/v1/admin/expiry-runs", json={"as_of": "2099-01-01T00:00:00+08:00"}, headers=ADMIN
    )
    assert future.status_code == 422 and future.json()["field"] == "as_of"
    service = ready.client.post(
        "/v1/admin/tier-reviews", json={"as_of": now_iso()}, headers=ready.service()
    )
    assert service.status_code == 403


def test_a_tier_review_downgrades_members_whose_spend_left_the_window(ready: Chain) -> None:
    big = [{"sku": "A", "category": "otc", "amount_fen": 250_000}]
    assert ready.sale("R1", lines=big, occurred_at="2024-01-10T10:00:00+08:00").status_code == 201
    assert ready.member()["tier"] == "silver"
    ready.enrol("M2")
    review = ready.client.post("/v1/admin/tier-reviews", json={"as_of": now_iso()}, headers=ADMIN)
    assert review.status_code == 200, review.text
    assert review.json()["members_reviewed"] == 2 and review.json()["downgraded"] == 1
    assert ready.member()["tier"] == "normal"
    again = ready.client.post("/v1/admin/tier-reviews", json={"as_of": now_iso()}, headers=ADMIN)
    assert again.json()["downgraded"] == 0


def test_the_cli_runs_expiry_and_tier_review(
    ready: Chain,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = [{"sku": "A", "category": "otc", "amount_fen": 10_000}]
    ready.sale("R1", lines=old, occurred_at="2025-06-01T10:00:00+08:00")
    monkeypatch.setenv("LEDGER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LEDGER_MASTER_KEY", settings.master_key.hex())
    assert main(["expire", "--as-of", now_iso()]) == 0
    assert '"points_expired":100' in capsys.readouterr().out
    assert main(["review-tiers", "--as-of", now_iso()]) == 0
    assert '"members_reviewed":1' in capsys.readouterr().out
    assert ready.member()["points"] == 0


def test_serve_with_expire_daily_runs_expiry_at_0005_chain_time(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        chain = Chain(client).standard()
        chain.enrol("M1")
        old = [{"sku": "A", "category": "otc", "amount_fen": 10_000}]
        chain.sale("R1", lines=old, occurred_at="2025-06-01T10:00:00+08:00")
        pos = chain.pos("S1")
    zone = ZoneInfo("Asia/Shanghai")
    clock = Clock()
    # the service starts at 00:04:50: its start (ledger, views, runners) must be over before
    # 00:05, or the scheduler plans tomorrow's run; on a loaded machine that took over 1 s
    just_before = datetime.combine(datetime.now(zone).date(), time(0, 4, 50), tzinfo=zone)
    clock.offset = just_before - datetime.now(UTC)
    app = create_app(msgspec.structs.replace(settings, expire_daily=True), clock=clock)
    with TestClient(app) as client:
        wait_until(  # 60 s for a busy CI machine; the run itself takes well under a second
            lambda: client.get("/v1/members/M1", headers=pos).json()["points"] == 0,
            60,
            "the daily expiry run did not happen",
            interval=0.2,
        )


def test_a_service_started_after_0005_runs_the_days_expiry_at_once(settings: Settings) -> None:
    """A restart after 00:05 (a crash, a deploy) does not leave the day without its run: the
    scheduler runs it at start, as of the moment it runs."""
    with TestClient(create_app(settings)) as client:
        chain = Chain(client).standard()
        chain.enrol("M1")
        old = [{"sku": "A", "category": "otc", "amount_fen": 10_000}]
        chain.sale("R1", lines=old, occurred_at="2025-06-01T10:00:00+08:00")
        pos = chain.pos("S1")
    zone = ZoneInfo("Asia/Shanghai")
    clock = Clock()
    started = datetime.combine(datetime.now(zone).date(), time(10, 0), tzinfo=zone)
    clock.offset = started - datetime.now(UTC)
    app = create_app(msgspec.structs.replace(settings, expire_daily=True), clock=clock)
    with TestClient(app) as client:
        wait_until(  # long before tomorrow's 00:05
            lambda: client.get("/v1/members/M1", headers=pos).json()["points"] == 0,
            60,
            "the day's expiry run did not happen at start",
            interval=0.2,
        )
