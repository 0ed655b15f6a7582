"""A stateful property test of one member of the real ledger (SPEC 2.2-2.6), through its services.

A hypothesis `RuleBasedStateMachine` drives one member of a `ledger.application.Ledger` over a
private in-memory SQLite store (plumbing and invariants: `member_model.py`; each request, checked:
`member_requests.py`) through enrolment, member and non-member sales, refunds (full, partial and
refused), redemptions of every kind with and without a hold, captures, voids (and their
replays), conversions to stored value, stored-value payments and their refunds, credit and debit
adjustments, expiry runs, replays of any request (and its number with another body) and the
passing of time (minutes to months: holds lapse, the return window closes, lots expire). Every
request goes through the service the API calls (`ledger.sales.post`, ...) with the machine's
clock as `now`; what each one stored is read back from the log, the member from the core.

After every step it checks the ledger's invariants: spendable points are the lots out of their
return window less debt less live holds; every lot stays within 0..points; debt and stored value
are never negative; points are conserved (lots less debt is what the test's own bookkeeping and
the stored events say was earned, reversed, spent, restored, expired and adjusted); replaying
every stored event from scratch gives the state the services built step by step. Each rule also
checks, at the moment it runs, exactly which events the request stored, that nothing spent more
than was available, that spending is FIFO by expiry, that refused requests raise the documented
error and store nothing, and that replays answer the first answer and store nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from uuid import UUID

import msgspec
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, MultipleResults, initialize, multiple, precondition, rule

from ledger.domain import ids
from ledger.domain.commands import (
    CashOffset,
    EnrolMember,
    PostSale,
    RefundLine,
    RefundSale,
    SaleLine,
)
from ledger.domain.errors import (
    IdempotencyConflict,
    InvalidInput,
    RefundExceedsSale,
)
from ledger.domain.member import (
    MemberEnrolled,
)
from ledger.domain.nonmember import NonMemberSaleRecorded
from ledger.policies.chaintime import add_months
from ledger.policies.tiers import rank
from tests.unit.member_model import (
    CARD,
    ENROLLED,
    LADDER,
    LOCK_DAYS,
    RULES,
    SH,
    builtins,
    by,
    lateness,
    sale_lines,
    shares,
    stores,
    types,
)
from tests.unit.member_views import ViewsMachine

pytestmark = pytest.mark.unit
Produced = UUID | MultipleResults[UUID]  # what a rule with a target gives its bundle


class MemberLedgerMachine(ViewsMachine):
    """One member, its sales, redemptions and stored-value payments, in a real ledger."""

    sale_ids: Bundle[UUID] = Bundle("sale_ids")
    redemption_ids: Bundle[UUID] = Bundle("redemption_ids")
    payment_ids: Bundle[UUID] = Bundle("payment_ids")

    # -- enrolment and sales --------------------------------------------------------------------

    @initialize(
        target=sale_ids,
        store=stores,
        birthday=st.none() | st.integers(0, 40).map(lambda n: date(1990, 2, 5) + timedelta(n)),
        opening=st.none() | sale_lines,
    )
    def enrol(self, store: str, birthday: date | None, opening: list[SaleLine] | None) -> Produced:
        """Enrolment, 20 days ago (again: the member as now, nothing stored); maybe a first
        sale the next day, spendable by now."""
        cmd = EnrolMember(member_id=CARD, store_id=store, birthday=birthday, occurred_at=ENROLLED)
        view, written = self.write(by(self.ledger.members.enrol), cmd, replay=False)
        assert types(written) == [MemberEnrolled] and view.enrolled_at == ENROLLED
        self.replayed(by(self.ledger.members.enrol), cmd, view)
        assert RULES.tiers and self.member.tier == RULES.tiers.levels[0].code
        self.tier_rank = rank(RULES, self.member.tier)
        if opening is None:
            return multiple()
        return self.post_sale(store, opening, ENROLLED + timedelta(days=1))

    @rule(target=sale_ids, store=stores, lines=sale_lines, late=lateness)
    def record_sale(self, store: str, lines: list[SaleLine], late: timedelta) -> UUID:
        occurred_at = max(self.now - late, self.member.enrolled_at)  # offline stores upload late
        return self.post_sale(store, lines, occurred_at)

    @rule(store=stores, lines=sale_lines)
    def record_non_member_sale(self, store: str, lines: list[SaleLine]) -> None:
        """A sale without a card earns nothing and touches no member."""
        cmd = PostSale(
            store_id=store,
            receipt_no=self.number("N"),
            member_id=None,
            occurred_at=self.now,
            lines=lines,
        )
        before = builtins(self.member)
        receipt, written = self.write(by(self.ledger.sales.post), cmd)
        assert types(written) == [NonMemberSaleRecorded] and receipt.points_earned == 0
        assert isinstance(written[0], NonMemberSaleRecorded) and written[0].receipt == receipt
        assert builtins(self.member) == before
        self.others[ids.sale_id(store, cmd.receipt_no)] = (store, cmd.receipt_no)

    @rule(
        sale_id=sale_ids,
        mode=st.sampled_from(["valid", "valid", "valid", "over", "bad_line"]),
        parts=st.lists(st.sampled_from([0, 1, 33, 50, 100, 100]), min_size=4, max_size=4),
        extra=st.integers(min_value=1, max_value=10_000),
    )
    def refund_sale(self, sale_id: UUID, mode: str, parts: list[int], extra: int) -> None:
        sale = self.sale(sale_id)
        left = {
            n: line.amount_fen - sale.refunded_fen.get(n, 0)
            for n, line in enumerate(sale.lines, start=1)
        }
        lines = [
            RefundLine(line_no=n, amount_fen=max(1, fen * part // 100))
            for (n, fen), part in zip(left.items(), parts, strict=False)
            if fen > 0 and part > 0
        ]
        if mode == "valid" and not lines and any(left.values()):
            n = next(n for n, fen in left.items() if fen > 0)
            lines = [RefundLine(line_no=n, amount_fen=left[n])]
        send = by(self.ledger.sales.refund, *self.sales[sale_id])
        if mode == "bad_line":
            bad = [RefundLine(line_no=len(sale.lines) + 1, amount_fen=extra)]
            cmd = RefundSale(refund_no=self.number("F"), occurred_at=self.now, lines=bad)
            self.refused(InvalidInput, send, cmd)
        elif mode == "over" or not lines:
            # more than was sold and not yet refunded, possibly split over two lines of a refund
            n = parts[0] % len(sale.lines) + 1
            over = [RefundLine(line_no=n, amount_fen=extra)]
            if left[n]:
                over.insert(0, RefundLine(line_no=n, amount_fen=left[n]))
            cmd = RefundSale(refund_no=self.number("F"), occurred_at=self.now, lines=over)
            self.refused(RefundExceedsSale, send, cmd)
        else:
            self.refund(sale_id, lines)

    @rule(target=sale_ids, store=stores, lines=sale_lines, in_pieces=st.booleans())
    def sale_then_full_refund(self, store: str, lines: list[SaleLine], in_pieces: bool) -> UUID:
        """A full refund of an untouched sale (in one go or in pieces) restores the balance (when
        the sale paid a debt, its refund may take pending points of other lots instead)."""
        before = self.balance()
        lots_before = {lot.lot_id: lot.remaining for lot in self.member.lots}
        debt_before = self.member.debt_points
        sale_id = self.post_sale(store, lines, self.now)
        sold = [(n, line.amount_fen) for n, line in enumerate(lines, start=1)]
        if in_pieces:
            first = [RefundLine(line_no=n, amount_fen=fen // 2) for n, fen in sold if fen // 2]
            if first:
                self.refund(sale_id, first)
        refunded = self.sale(sale_id).refunded_fen
        rest = [
            RefundLine(line_no=n, amount_fen=fen - refunded.get(n, 0))
            for n, fen in sold
            if fen - refunded.get(n, 0) > 0
        ]
        if rest:
            self.refund(sale_id, rest)
        sale = self.sale(sale_id)
        assert sale.points_reversed == sale.valuation.points, "a full refund reverses all"
        after = self.balance()
        assert after.points + after.pending_points == before.points + before.pending_points
        if debt_before == 0:  # untouched: only the sale's own lot moved, and it is empty again
            assert after == before, "a full refund of an untouched sale restores the balance"
            assert self.member.debt_points == 0
            lots_after = {lot.lot_id: lot.remaining for lot in self.member.lots}
            assert {k: v for k, v in lots_after.items() if k in lots_before} == lots_before
            assert all(v == 0 for k, v in lots_after.items() if k not in lots_before)
        return sale_id

    @rule(
        target=redemption_ids,
        lines=sale_lines,
        how=st.sampled_from(["hold", "hold", "redeem", "convert", "debit"]),
        settle=st.sampled_from(
            [(), ("capture",), ("void",), ("capture", "void"), ("capture", "repay", "void")]
        ),
        store=stores,
    )
    def spend_a_sale_then_refund_it(
        self, lines: list[SaleLine], how: str, settle: tuple[str, ...], store: str
    ) -> Produced:
        """A sale uploaded a week late (spendable at once), every spendable point spent (or
        held), then the sale refunded in full: the refund finds its points spent and leaves a
        debt (or takes the held ones, so that capturing the hold leaves the debt), which later
        sales and credits pay first and a void may take back. `settle` then captures and/or
        voids the redemption at once, before its hold lapses, maybe with a credit between the
        two that repays part of the capture's debt (the void then takes back only what is left
        of that debt: the accepted edge)."""
        late = self.now - timedelta(days=LOCK_DAYS + 2)
        sale_id = self.post_sale(store, lines, max(late, self.member.enrolled_at))
        may_spend = self.spendable(self.now)
        made = None
        if may_spend > 0 and how in ("redeem", "hold"):
            offset = CashOffset(
                store_id=store,
                redemption_no=self.number("X"),
                member_id=CARD,
                occurred_at=self.now,
                points=may_spend,
                hold=how == "hold",
                receipt_amount_fen=2 * may_spend,
            )
            made = self.spend_by_redemption(offset, may_spend)
        elif may_spend > 0 and how == "convert":
            self.spend_by_conversion(may_spend, store)
        elif may_spend > 0:
            self.adjustment(-may_spend)
        rest = [RefundLine(line_no=n, amount_fen=x.amount_fen) for n, x in enumerate(lines, 1)]
        rest = [line for line in rest if line.amount_fen > 0]
        if rest:
            self.refund(sale_id, rest)
        if made is None:
            return multiple()
        for action in settle:
            if action == "capture":
                self.capture_hold(made)
            elif action == "repay":  # a credit pays part of the capture's debt
                self.adjustment(max(1, self.member.debt_points // 2))
            else:
                self.void_redemption(made)
        return made

    # -- redemptions ----------------------------------------------------------------------------

    @rule(
        target=redemption_ids,
        kind=st.sampled_from(["cash_offset", "voucher", "gift", "exchange"]),
        sku=st.sampled_from(["G-1", "G-1", "E-1", "E-1", "G-S1", "NOPE"]),
        hold=st.booleans(),
        share=shares,
        step=st.sampled_from([*LADDER, 150]),
        receipt=st.sampled_from(["none", "enough", "enough", "enough", "too_small"]),
        store=stores,
        late=st.sampled_from([timedelta(0), timedelta(0), timedelta(minutes=3)]),
        then=st.sampled_from(["", "", "capture", "void"]),
    )
    def redeem(
        self,
        kind: str,
        sku: str,
        hold: bool,
        share: int,
        step: int,
        receipt: str,
        store: str,
        late: timedelta,
        then: str,
    ) -> Produced:
        """A redemption of any kind, spent or held; `then` the POS may capture or void it at
        once (later captures and voids come from the capture and void rules). A catalogue item
        is named by its SKU (`receipt` "too_small": with points stated, maybe wrongly)."""
        occurred_at = self.now - late
        points = step if kind == "voucher" else self.amount(self.spendable(occurred_at), share)
        common: dict[str, Any] = {
            "store_id": store,
            "redemption_no": self.number("X"),
            "member_id": CARD,
            "occurred_at": occurred_at,
            "hold": hold,
        }
        cmd, spent, refusal = self.redemption(kind, sku, common, points=points, receipt=receipt)
        made = self.spend_by_redemption(cmd, spent, refusal=refusal)
        if made is None:
            return multiple()
        if then == "capture":
            self.capture_hold(made)
        elif then == "void":
            self.void_redemption(made)
        return made

    @rule(redemption_id=redemption_ids)
    def capture(self, redemption_id: UUID) -> None:
        self.capture_hold(redemption_id)

    @rule(redemption_id=redemption_ids)
    def void(self, redemption_id: UUID) -> None:
        self.void_redemption(redemption_id)

    # -- stored value -------------------------------------------------------------------------

    @rule(share=shares, store=stores)
    def convert_points(self, share: int, store: str) -> None:
        self.spend_by_conversion(self.amount(self.spendable(self.now), share), store)

    @rule(target=payment_ids, share=shares, store=stores)
    def pay_with_stored_value(self, share: int, store: str) -> Produced:
        made = self.payment(self.amount(self.stored_value_model, share), store)
        return multiple() if made is None else made

    @rule(payment_id=payment_ids, share=shares, over=st.booleans())
    def refund_stored_value(self, payment_id: UUID, share: int, over: bool) -> None:
        paid = self.payments[payment_id]
        left = paid.amount_fen - paid.refunded_fen
        amount = left + share if over or left == 0 else self.amount(left, min(share, 100))
        self.payment_refund(payment_id, amount)

    # -- adjustments, expiry, time, replays -----------------------------------------------------

    @rule(
        kind=st.sampled_from(["credit", "credit", "debit", "debit", "zero"]),
        credit=st.integers(min_value=1, max_value=3_000),
        share=shares,
        back=st.sampled_from([0, 0, 0, 3, 31, 32]).map(lambda days: timedelta(days=days)),
    )
    def adjust_points(self, kind: str, credit: int, share: int, back: timedelta) -> None:
        """A credit or debit, maybe backdated (refused before the enrolment or > 31 days)."""
        debit = -self.amount(self.spendable(self.now - back), share)
        self.adjustment({"credit": credit, "debit": debit, "zero": 0}[kind], back)

    @rule(
        code=st.sampled_from(["registration", "registration", "online", "nope"]),
        store=stores,
        late=st.sampled_from([timedelta(0), timedelta(days=40)]),
    )
    def grant(self, code: str, store: str, late: timedelta) -> None:
        """A bonus (its time bounded like a sale's: even before the enrolment)."""
        self.grant_bonus(code, store, self.now - late)

    @rule(path=st.sampled_from(["log", "view", "view", "lagging"]))
    def run_expiry(self, path: str) -> None:
        """An expiry run, decided from each member's events or from the members view (D66),
        caught up or lagging behind a write."""
        self.expiry_run(path)

    @rule(
        unit=st.sampled_from(["minutes", "hours", "days", "months", "next_expiry"]),
        count=st.integers(min_value=1, max_value=13),
        then_expire=st.sampled_from(["", "", "view", "lagging"]),
    )
    def advance_clock(self, unit: str, count: int, then_expire: str) -> None:
        """Time passes (holds lapse, the return window closes, lots fall due); with
        `then_expire` the scheduled expiry run follows, as `ledger serve --expire-daily` does,
        decided from the members view (D66), caught up or lagging behind a write."""
        before = self.balance()
        due = [
            lot.expires_at
            for lot in self.member.lots
            if lot.remaining and lot.expires_at is not None and lot.expires_at > self.now
        ]
        if unit == "next_expiry" and due:
            self.now = min(due)  # exactly: a lot is due when expires_at <= as_of
        elif unit == "months":
            self.now = add_months(self.now, count, SH)
        else:
            self.now += {
                "minutes": timedelta(minutes=7 * count),
                "hours": timedelta(hours=count),
            }.get(unit, timedelta(days=count))
        after = self.balance()
        # time alone moves points between pending, held and spendable; it never adds or removes
        assert (
            after.points + after.pending_points + after.held_points
            == before.points + before.pending_points + before.held_points
        )
        assert after.stored_value_fen == before.stored_value_fen
        if then_expire:
            self.expiry_run(then_expire)

    @precondition(lambda self: self.sent)
    @rule(pick=st.integers(min_value=0, max_value=1_000), altered=st.booleans())
    def replay_request(self, pick: int, altered: bool) -> None:
        """Any accepted request again (a POS retry, maybe months later): its first answer, and
        nothing stored. Its number with another body (a second earlier) is refused, 409."""
        send, request, answer = self.sent[pick % len(self.sent)]
        if altered:
            earlier = request.occurred_at - timedelta(seconds=1)
            other = msgspec.structs.replace(request, occurred_at=earlier)
            self.refused(IdempotencyConflict, send, other)
        else:
            self.replayed(send, request, answer)


MemberLedgerMachine.TestCase.settings = settings(stateful_step_count=30, deadline=None)
TestMemberLedgerMachine = MemberLedgerMachine.TestCase
