"""The requests of the member state machine (`test_member_state_machine.py`), each carried out
through the ledger's service and checked at the moment it runs.

Each method posts one request at the machine's `now` with `LedgerMachine.write` (or expects it
refused with `LedgerError` and nothing stored), then checks the events it stored, as read back
from the log, against what the SPEC says it must do: which events, how many points from which
lots (FIFO by expiry, a refund's own pending points first), what became debt. It keeps the
test's own bookkeeping (`points_model`, holds, ...) from what it asked and was told. The rules
in the test module compose these (a sale then its refund, a redemption then its capture, ...).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from hypothesis import event as observe

from ledger.domain import ids
from ledger.domain.commands import (
    AdjustPoints,
    ConvertPoints,
    PayWithStoredValue,
    PostSale,
    Redeem,
    RefundLine,
    RefundSale,
    RefundStoredValue,
    SaleLine,
)
from ledger.domain.errors import (
    HoldLapsed,
    InsufficientPoints,
    InsufficientStoredValue,
    InvalidInput,
    LedgerError,
    RedemptionVoidedAlready,
    RefundExceedsSale,
)
from ledger.domain.member import (
    PointsAccrued,
    PointsAdjusted,
    PointsConverted,
    PointsHeld,
    PointsRedeemed,
    PointsReversed,
    RedemptionVoided,
    StoredValueCredited,
    StoredValueDebited,
    TierChanged,
)
from ledger.domain.operation import FollowUpRecorded, OperationRecorded
from ledger.domain.redemption import RedemptionCaptured, RedemptionRecorded, RedemptionVoidRecorded
from ledger.domain.sale import SaleReceipt, SaleRecorded, SaleRefunded
from ledger.policies.tiers import level_for_spend, rank, window_spend
from tests.unit.member_model import (
    CARD,
    HOLD_MINUTES,
    LOCK_DAYS,
    RULES,
    SV_POINTS_PER_YUAN,
    LedgerMachine,
    Made,
    Paid,
    assert_fifo,
    builtins,
    by,
    is_due,
    types,
)


class RequestsMachine(LedgerMachine):
    """The machine's requests, each through its service, each checked as it runs."""

    # -- sales and refunds ----------------------------------------------------------------------

    def post_sale(self, store: str, lines: list[SaleLine], occurred_at: datetime) -> UUID:
        """Post a member's sale now (business time `occurred_at`); returns the sale's id."""
        receipt_no = self.number("R")
        cmd = PostSale(
            store_id=store,
            receipt_no=receipt_no,
            member_id=CARD,
            occurred_at=occurred_at,
            lines=lines,
        )
        debt = self.member.debt_points
        receipt, written = self.write(by(self.ledger.sales.post), cmd)
        accrued, *upgrade, record = written
        assert isinstance(accrued, PointsAccrued) and isinstance(record, SaleRecorded)
        assert isinstance(receipt, SaleReceipt)
        assert types(upgrade) in ([], [TierChanged]) and receipt.tier_changed == bool(upgrade)
        assert record.receipt == receipt and record.lines == lines
        points = accrued.valuation.points
        assert receipt.points_earned == accrued.points == points >= 0
        assert accrued.debt_paid == min(debt, points), "a sale pays the debt first"
        kept = points - accrued.debt_paid
        if kept:
            assert accrued.lot is not None
            assert accrued.lot.points == accrued.lot.remaining == kept
            assert accrued.lot.available_at == occurred_at + timedelta(days=LOCK_DAYS)
            assert accrued.lot.expires_at is not None and accrued.lot.expires_at > occurred_at
        else:
            assert accrued.lot is None
        observe(f"sale: pays debt {accrued.debt_paid > 0}, tier change {bool(upgrade)}")
        self.points_model += points
        sale_id = ids.sale_id(store, receipt_no)
        assert receipt.sale_id == accrued.sale_id == record.originator_id == sale_id
        self.sales[sale_id] = (store, receipt_no)
        reached = level_for_spend(RULES, window_spend(self.member.spend, occurred_at, RULES))
        assert reached is not None
        assert rank(RULES, self.member.tier) >= rank(RULES, reached.code), "upgrade is immediate"
        return sale_id

    def refund(self, sale_id: UUID, lines: list[RefundLine]) -> int:
        """Refund `lines` of a sale now (they must be valid); returns the points reversed."""
        cmd = RefundSale(refund_no=self.number("F"), occurred_at=self.now, lines=lines)
        before, at = self.member, self.now

        def reversible(lot: Any) -> bool:  # pending or not, earned by now, not due (gone)
            return lot.remaining > 0 and lot.earned_at <= at and not is_due(lot.expires_at, at)

        lots = [lot for lot in before.lots if reversible(lot)]
        own_left = sum(lot.remaining for lot in lots if lot.sale_id == sale_id)
        others = sum(lot.remaining for lot in lots if lot.sale_id != sale_id)
        receipt, written = self.write(by(self.ledger.sales.refund, *self.sales[sale_id]), cmd)
        reversal, record = written
        assert isinstance(reversal, PointsReversed) and isinstance(record, SaleRefunded)
        assert record.originator_id == sale_id and record.receipt == receipt
        points = reversal.points
        assert points == receipt.points_reversed == record.points_reversed >= 0
        took = sum(t.points for t in reversal.takes)
        assert took + reversal.debt_added == points and receipt.debt_added == reversal.debt_added
        # the sale's own lot first (pending or not), then the other lots FIFO (pending or not),
        # never a lot due now; only what is left is debt
        assert reversal.debt_added == max(0, points - own_left - others)
        own = [before.lot(t.lot_id).sale_id == sale_id for t in reversal.takes]
        assert own == sorted(own, reverse=True), "the sale's own lot goes first"
        own_taken = sum(t.points for t, mine in zip(reversal.takes, own, strict=True) if mine)
        assert own_taken == min(points, own_left), "no other lot while the own lot has points"
        assert all(reversible(before.lot(t.lot_id)) for t in reversal.takes), "none due"
        others_taken = [t for t, mine in zip(reversal.takes, own, strict=True) if not mine]
        assert_fifo(before, others_taken, at, pending=True, apart=sale_id)
        observe(f"refund: own lot {own_left > 0}, debt {reversal.debt_added > 0}")
        self.points_model -= points
        return points

    # -- redemptions ----------------------------------------------------------------------------

    def spend_by_redemption(
        self, cmd: Redeem, points: int, *, refusal: type[LedgerError] | None = None
    ) -> UUID | None:
        """Post a redemption of `points` (a catalogue item's, or those stated); check its
        refusal (`refusal`: the error it must raise) or its effect. Returns its id when made."""
        hold, at = cmd.hold, cmd.occurred_at
        send = by(self.ledger.redemptions.redeem)
        if refusal is not None:
            self.refused(refusal, send, cmd)
            return None
        if points > self.spendable(at):
            self.refused(InsufficientPoints, send, cmd)
            return None
        before_member, before = self.member, self.balance()
        answer, written = self.write(send, cmd)
        event, record = written
        assert isinstance(record, RedemptionRecorded) and record.receipt == answer
        if hold:
            assert isinstance(event, PointsHeld)
            assert event.expires_at == self.now + timedelta(minutes=HOLD_MINUTES)
            assert answer.hold_expires_at == record.hold_expires_at == event.expires_at
        else:
            assert isinstance(event, PointsRedeemed) and answer.takes == event.takes
            assert sum(t.points for t in event.takes) == points and event.debt_added == 0
            assert_fifo(before_member, event.takes, at)
            self.points_model -= points
        observe(f"redeem {answer.kind}: {'held' if hold else 'redeemed'}")
        after = self.balance()
        assert after.points == before.points - points == answer.balance.points
        assert after.held_points == before.held_points + (points if hold else 0)
        assert after.pending_points == before.pending_points
        if hold:
            assert builtins(self.member.lots) == builtins(before_member.lots), "a hold takes none"
        redemption_id = ids.redemption_id(cmd.store_id, cmd.redemption_no)
        assert answer.redemption_id == record.originator_id == redemption_id
        self.redemptions[redemption_id] = Made(
            store=cmd.store_id,
            number=cmd.redemption_no,
            points=points,
            status="held" if hold else "redeemed",
            hold_expires_at=answer.hold_expires_at,
            receipt=answer,
        )
        return redemption_id

    def capture_hold(self, redemption_id: UUID) -> None:
        made = self.redemptions[redemption_id]
        send = by(self.ledger.redemptions.capture, made.store)
        if made.status == "redeemed":  # capturing again answers what was answered
            self.replayed(send, made.number, made.receipt)
            return
        if made.status == "voided":
            self.refused(RedemptionVoidedAlready, send, made.number)
            return
        assert made.hold_expires_at is not None
        if made.hold_expires_at <= self.now:
            self.refused(HoldLapsed, send, made.number)
            return
        before_member, before = self.member, self.balance()
        lots = self.lots_available(self.now)
        answer, written = self.write(send, made.number, replay=False)
        event, record = written
        assert isinstance(event, PointsRedeemed) and event.captured_hold
        assert isinstance(record, RedemptionCaptured) and record.receipt == answer
        assert answer.status == "redeemed" and answer.points_redeemed == made.points
        assert sum(t.points for t in event.takes) + event.debt_added == made.points
        # debt only when the lots no longer hold the reserved points (a refund or expiry took them)
        assert event.debt_added == record.debt_added == max(0, made.points - lots)
        assert_fifo(before_member, event.takes, self.now)
        observe(f"capture: debt {event.debt_added > 0}")
        after = self.balance()
        # capturing spends exactly what the hold reserved: no more than was available
        assert after.points == before.points
        assert after.pending_points == before.pending_points
        assert after.held_points == before.held_points - made.points
        made.status, made.receipt, made.debt_added = "redeemed", answer, event.debt_added
        self.points_model -= made.points

    def void_redemption(self, redemption_id: UUID) -> None:
        made = self.redemptions[redemption_id]
        send = by(self.ledger.redemptions.void, made.store)
        if made.void_receipt is not None:  # voiding again replays the stored receipt
            self.replayed(send, made.number, made.void_receipt)
            return
        status, live, takes = made.status, self.live(made), made.receipt.takes
        before, debt = self.balance(), self.member.debt_points
        receipt, written = self.write(send, made.number, replay=False)
        *voided, record = written
        assert isinstance(record, RedemptionVoidRecorded) and record.receipt == receipt
        assert all(isinstance(e, RedemptionVoided) for e in voided)
        if status == "redeemed":
            # the accepted edge: a capture's debt repaid since is taken back only as far as it
            # remains (nothing at all once it is fully repaid)
            debt_back = min(made.debt_added, debt)
            restored = sum(t.points for t in takes) + debt_back
            assert receipt.points_restored == restored and receipt.released_hold == 0
            if debt_back < made.debt_added:
                observe("void redeemed: capture's debt partly or fully repaid (accepted edge)")
            if restored:
                (event,) = voided
                assert isinstance(event, RedemptionVoided)
                assert event.restores == takes, "points go back to the very lots"
                assert event.debt_removed == debt_back
            else:
                assert not voided, "nothing to give back"
        elif live:
            (event,) = voided
            assert isinstance(event, RedemptionVoided)
            assert event.released_hold == event.points_restored == made.points
        else:
            assert not voided, "a lapsed hold has nothing to give back"
        observe(f"void {status}: live {live}, gives back {bool(voided)}")
        after = self.balance()
        assert after.points == before.points + receipt.points_restored
        assert after.pending_points == before.pending_points
        assert after.held_points == before.held_points - receipt.released_hold
        made.status, made.void_receipt = "voided", receipt
        self.points_model += receipt.points_restored - receipt.released_hold

    # -- stored value and adjustments -----------------------------------------------------------

    def spend_by_conversion(self, points: int, store: str) -> None:
        cmd = ConvertPoints(
            store_id=store, conversion_no=self.number("C"), occurred_at=self.now, points=points
        )
        send = by(self.ledger.stored_value.convert, CARD)
        credited = points * 100 // SV_POINTS_PER_YUAN
        if credited == 0:
            self.refused(InvalidInput, send, cmd)
            return
        if points > self.spendable(self.now):
            self.refused(InsufficientPoints, send, cmd)
            return
        before_member, before = self.member, self.balance()
        receipt, written = self.write(send, cmd)
        converted, credit, record = written
        assert isinstance(converted, PointsConverted) and isinstance(credit, StoredValueCredited)
        assert isinstance(record, OperationRecorded) and record.kind == "conversion"
        assert record.originator_id == ids.conversion_id(store, cmd.conversion_no)
        assert sum(t.points for t in converted.takes) == points
        assert_fifo(before_member, converted.takes, self.now)
        assert receipt.credited_fen == credit.amount_fen == credited
        self.points_model -= points
        self.stored_value_model += credited
        assert self.balance().points == before.points - points

    def payment(self, amount: int, store: str) -> UUID | None:
        """Pay `amount` fen with stored value; returns the payment's id when it was made."""
        cmd = PayWithStoredValue(
            store_id=store, payment_no=self.number("P"), occurred_at=self.now, amount_fen=amount
        )
        send = by(self.ledger.stored_value.pay, CARD)
        if amount > self.stored_value_model:
            self.refused(InsufficientStoredValue, send, cmd)
            return None
        receipt, written = self.write(send, cmd)
        debited, record = written
        assert isinstance(debited, StoredValueDebited) and debited.amount_fen == amount
        assert isinstance(record, OperationRecorded) and record.kind == "payment"
        assert record.amount_fen == receipt.amount_fen == amount, "the payment records its amount"
        payment_id = ids.payment_id(store, cmd.payment_no)
        assert record.originator_id == payment_id
        self.payments[payment_id] = Paid(store=store, number=cmd.payment_no, amount_fen=amount)
        self.stored_value_model -= amount
        return payment_id

    def payment_refund(self, payment_id: UUID, amount: int) -> None:
        """Give `amount` fen of a payment back (refused beyond what it took, less refunds)."""
        paid = self.payments[payment_id]
        cmd = RefundStoredValue(
            store_id=paid.store,
            refund_no=self.number("V"),
            payment_no=paid.number,
            occurred_at=self.now,
            amount_fen=amount,
        )
        send = by(self.ledger.stored_value.refund_payment, CARD)
        if amount > paid.amount_fen - paid.refunded_fen:
            self.refused(RefundExceedsSale, send, cmd)
            return
        receipt, written = self.write(send, cmd)
        credited, follow_up = written
        assert isinstance(credited, StoredValueCredited) and credited.reason == "refund"
        assert credited.amount_fen == receipt.amount_fen == amount
        assert isinstance(follow_up, FollowUpRecorded) and follow_up.originator_id == payment_id
        assert follow_up.amount_fen == amount
        paid.refunded_fen += amount
        self.stored_value_model += amount

    def adjustment(self, points: int, back: timedelta = timedelta(0)) -> None:
        """Customer service's credit or debit dated `back` before now: refused (422) before
        the enrolment or more than 31 days back (SPEC 2.6)."""
        at = self.now - back
        cmd = AdjustPoints(
            adjustment_no=self.number("A"),
            points=points,
            reason="customer service",
            ticket="T-1",
            occurred_at=at,
        )
        send = by(self.ledger.stored_value.adjust, CARD)
        if points == 0 or at < self.member.enrolled_at or back > timedelta(days=31):
            self.refused(InvalidInput, send, cmd)
            return
        if points < 0 and -points > self.spendable(at):
            self.refused(InsufficientPoints, send, cmd)
            return
        before_member, before = self.member, self.balance()
        receipt, written = self.write(send, cmd)
        event, record = written
        assert isinstance(event, PointsAdjusted) and event.points == receipt.points == points
        assert isinstance(record, OperationRecorded) and record.kind == "adjustment"
        if points > 0:
            assert event.debt_paid == min(before_member.debt_points, points) and not event.takes
            kept = points - event.debt_paid
            assert (event.lot.points if event.lot else 0) == kept
            if event.lot is not None:
                assert event.lot.available_at == at, "a credit is spendable at once"
                assert event.lot.expires_at is not None, "every lot expires by the rules"
        else:
            assert sum(t.points for t in event.takes) == -points and event.lot is None
            assert_fifo(before_member, event.takes, at)
        observe(f"adjust {'credit' if points > 0 else 'debit'}: debt paid {event.debt_paid > 0}")
        self.points_model += points
        assert self.balance().points == before.points + points
