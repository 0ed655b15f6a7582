"""The ledger application on real stores (SQLite and PostgreSQL): atomicity, idempotency,
concurrency, restarts and snapshots."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from eventsourcing.persistence import IntegrityError

from ledger.application import Ledger
from ledger.domain import ids
from ledger.domain.commands import EnrolMember, PostSale, RegisterStore, SaleLine
from ledger.domain.errors import IdempotencyConflict, MemberNotFound, NoRuleSetInForce, SaleNotFound
from ledger.domain.member import Member
from ledger.domain.sale import SaleReceipt, record_sale
from ledger.services.core import project_member
from ledger.settings import Settings
from tests.rulesets import SPEC_EXAMPLE, doc, ruleset

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


def _sale(receipt: str, amount_fen: int = 10000, member: str = "M1") -> PostSale:
    return PostSale(
        store_id="S1",
        receipt_no=receipt,
        member_id=member,
        occurred_at=NOW - timedelta(minutes=1),
        lines=[SaleLine(sku="A", amount_fen=amount_fen, category="otc")],
    )


@pytest.fixture
def ledger(settings: Settings) -> Ledger:
    app = Ledger(settings)
    app.rules.publish(ruleset(doc(SPEC_EXAMPLE, effective_from="2020-01-01T00:00:00+08:00")), "t")
    app.access.configure_store(
        "S1", RegisterStore(name="One", kind="franchise", franchisee="F1"), "t"
    )
    app.members.enrol(EnrolMember(member_id="M1", store_id="S1"), "t", NOW)
    return app


def test_a_sale_and_its_member_events_are_saved_together(ledger: Ledger) -> None:
    receipt, created = ledger.sales.post(_sale("R1", 250_000), "op", NOW)
    assert isinstance(receipt, SaleReceipt)
    assert created and receipt.tier_changed and receipt.tier == "silver"
    stored = list(ledger.core.events.get(ids.member_id("M1")))
    assert [type(e).__name__ for e in stored] == ["MemberEnrolled", "PointsAccrued", "TierChanged"]
    sale = ledger.sales.record("S1", "R1")
    assert sale is not None and sale.receipt == receipt


def test_when_the_member_moved_on_nothing_of_the_sale_is_written(ledger: Ledger) -> None:
    stale = ledger.core.repository.get(ids.member_id("M1"), projector_func=project_member)
    version = ledger.rules.at(NOW)
    assert version is not None
    ledger.sales.post(_sale("R1"), "op", NOW)  # the member moves on
    events, _ = record_sale(
        _sale("R2"), stale, version, fingerprint="fp", operator="op", now=NOW, birthday=None
    )
    with pytest.raises(IntegrityError):
        ledger.core.save(*events)
    with pytest.raises(SaleNotFound):
        ledger.sales.record("S1", "R2")
    assert len(list(ledger.core.events.get(ids.member_id("M1")))) == 2


def test_a_retried_sale_returns_the_original_receipt_and_writes_nothing(ledger: Ledger) -> None:
    first, _ = ledger.sales.post(_sale("R1"), "op", NOW)
    before = ledger.core.recorder.max_notification_id()
    again, created = ledger.sales.post(_sale("R1"), "op", NOW + timedelta(seconds=30))
    assert not created
    assert again == first
    assert ledger.core.recorder.max_notification_id() == before


def test_the_same_receipt_number_with_another_body_is_a_conflict(ledger: Ledger) -> None:
    ledger.sales.post(_sale("R1"), "op", NOW)
    with pytest.raises(IdempotencyConflict):
        ledger.sales.post(_sale("R1", 999), "op", NOW)


def test_an_unknown_member_or_a_sale_before_any_rules_is_refused(ledger: Ledger) -> None:
    with pytest.raises(MemberNotFound):
        ledger.sales.post(_sale("R1", member="nobody"), "op", NOW)
    early = PostSale(
        store_id="S1",
        receipt_no="R2",
        member_id="M1",
        occurred_at=datetime(2019, 1, 1, tzinfo=UTC),
        lines=[SaleLine(sku="A", amount_fen=1)],
    )
    with pytest.raises(NoRuleSetInForce):
        ledger.sales.post(early, "op", NOW)


def test_concurrent_sales_for_one_member_are_all_counted(ledger: Ledger) -> None:
    receipts = [f"R{i}" for i in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda r: ledger.sales.post(_sale(r, 1000), "op", NOW), receipts))
    assert all(created for _, created in results)
    view = ledger.members.view("M1", NOW)
    assert view.points == 40 * 10
    versions = [e.originator_version for e in ledger.core.events.get(ids.member_id("M1"))]
    assert versions == list(range(1, len(versions) + 1))


def test_a_restart_keeps_everything(ledger: Ledger, settings: Settings) -> None:
    ledger.sales.post(_sale("R1", 12345), "op", NOW)
    before = ledger.members.view("M1", NOW)
    ledger.close()
    reopened = Ledger(settings)
    assert reopened.members.view("M1", NOW) == before
    again, created = reopened.sales.post(_sale("R1", 12345), "op", NOW)
    assert not created and again.points_earned == 123


def test_long_histories_are_snapshotted_and_rebuild_to_the_same_state(
    ledger: Ledger, settings: Settings
) -> None:
    for i in range(105):
        ledger.sales.post(_sale(f"R{i}", 100), "op", NOW)
    assert ledger.core.snapshots is not None
    snapshots = list(ledger.core.snapshots.get(ids.member_id("M1")))
    assert [s.originator_version for s in snapshots] == [100]
    fresh = Ledger(settings)
    from_snapshot = fresh.core.repository.get(ids.member_id("M1"), projector_func=project_member)
    from_events = project_member(None, fresh.core.events.get(ids.member_id("M1")))  # type: ignore[arg-type]
    assert isinstance(from_snapshot, Member)
    assert from_snapshot == from_events
    assert fresh.members.view("M1", NOW).points == 105


def test_the_log_can_be_followed_on_both_stores(ledger: Ledger) -> None:
    """`recorder.subscribe()` (LISTEN/NOTIFY on PostgreSQL, polling on SQLite) sees what is
    already there and what is saved while it is open: what projection runners build on."""
    first = ledger.core.recorder.max_notification_id() or 0
    with ledger.core.recorder.subscribe(gt=first - 1) as subscription:
        ledger.sales.post(_sale("R-FOLLOW"), "t", NOW)
        seen = [next(subscription) for _ in range(3)]  # the enrolment's last, the sale's two
    assert [n.id for n in seen] == [first, first + 1, first + 2]
    assert seen[-1].topic.endswith("SaleRecorded")
