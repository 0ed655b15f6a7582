"""The member state machine's views and contract-version-2 requests (`test_member_state_machine`).

`ViewsMachine` follows the machine's log with the real settlement and history projections
(private in-memory views, applied up to the log's head before each check) and checks, after
every step: every settlement month's totals are the sums of its rows, and each row's difference
is its fee less its redemption cost less its stored-value cost, the stored-value cost of all
months being what the member paid less what came back; the liability (as of now) is the
member's outstanding lots (after their debt, earliest expiry first) each at the cost per point
of its own rule version, rounded half-up once, and the stored value outstanding. It also builds
redemption requests from the catalogue (and the refusals a wrong one meets) and grants bonuses.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import uuid4

import msgspec
from hypothesis import event as observe
from hypothesis.stateful import invariant

from ledger.domain import expiry, operation
from ledger.domain.commands import CashOffset, Exchange, Gift, GrantBonus, Redeem, Voucher
from ledger.domain.errors import (
    BonusAlreadyGranted,
    InvalidInput,
    LedgerError,
    NotRedeemableHere,
    UnknownCatalogueItem,
)
from ledger.domain.member import BonusGranted, PointsExpired
from ledger.domain.model import DomainEvent
from ledger.domain.operation import OperationRecorded
from ledger.domain.settlement import next_period
from ledger.policies.chaintime import month_of
from ledger.policies.tiers import rank
from ledger.services.runs import ExpiryTrace
from ledger.settings import Settings
from projections.queries import Queries
from projections.runtime import Projections
from tests.unit.member_model import (
    CARD,
    CATALOGUE,
    LADDER,
    MASTER_KEY,
    OPERATOR,
    RULES,
    SECOND,
    SH,
    by,
)
from tests.unit.member_requests import RequestsMachine

ITEMS: dict[str, dict[str, Any]] = {str(item["sku"]): item for item in CATALOGUE}
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _bare(event: DomainEvent) -> bytes:
    """An event as stored, but for what saving adds (its hash) and the clock it was made at."""
    return msgspec.json.encode(msgspec.structs.replace(event, chain="", timestamp=EPOCH))


class ViewsMachine(RequestsMachine):
    """The requests machine, with the settlement and history views followed and checked."""

    def __init__(self) -> None:
        super().__init__()
        url = self.ledger.settings.database_url  # the views read the ledger's own log
        self.projections = Projections(
            Settings(database_url=url, master_key=MASTER_KEY),
            names=["history", "settlement", "members"],
            prefix=f"v{uuid4().hex[:8]}",
        )
        self.queries = Queries(self.ledger, self.projections)
        self.registered = False

    def teardown(self) -> None:
        self.projections.stop()
        super().teardown()

    # -- requests -------------------------------------------------------------------------------

    def redemption(
        self, kind: str, sku: str, common: dict[str, Any], *, points: int, receipt: str
    ) -> tuple[Redeem, int, type[LedgerError] | None]:
        """A redemption of `kind`: its request, the points it spends, and the refusal it must
        meet (a cash offset without the receipt's amount or above half of it, a voucher off the
        ladder, a catalogue item unknown, of the other kind, limited to another store, or
        stated with points other than the catalogue's)."""
        if kind == "cash_offset":
            receipt_fen = {"none": None, "enough": 2 * points, "too_small": points}[receipt]
            refused = InvalidInput if receipt != "enough" else None
            return (
                CashOffset(receipt_amount_fen=receipt_fen, points=points, **common),
                points,
                refused,
            )
        if kind == "voucher":
            return (
                Voucher(points=points, **common),
                points,
                None if points in LADDER else InvalidInput,
            )
        item = ITEMS.get(sku)
        stated: dict[str, Any] = {"points": points} if receipt == "too_small" else {}
        cmd: Redeem = (Gift if kind == "gift" else Exchange)(sku=sku, **stated, **common)
        if item is None or item["kind"] != kind:
            return cmd, points, UnknownCatalogueItem
        price: int = item["points"]
        if common["store_id"] not in item.get("stores", [common["store_id"]]):
            return cmd, price, NotRedeemableHere
        wrong = "points" in stated and points != price
        return cmd, price, InvalidInput if wrong else None

    def grant_bonus(self, code: str, store: str, at: datetime) -> None:
        """A bonus of the rule set: a lot after any debt, spendable at once; a second
        registration is refused (409), an unknown code too (422)."""
        cmd = GrantBonus(bonus_no=self.number("B"), code=code, store_id=store, occurred_at=at)
        send = by(self.ledger.bonuses.grant, CARD)
        rule = RULES.bonus(code)
        if rule is None:
            self.refused(InvalidInput, send, cmd)
            return
        if code == "registration" and self.registered:
            self.refused(BonusAlreadyGranted, send, cmd)
            return
        debt, before = self.member.debt_points, self.balance()
        receipt, written = self.write(send, cmd)
        granted, *records = written
        assert isinstance(granted, BonusGranted) and granted.points == receipt.points == rule.points
        assert all(isinstance(r, OperationRecorded) for r in records)
        assert len(records) == (2 if code == "registration" else 1), "a registration is claimed"
        assert granted.debt_paid == min(debt, rule.points), "a bonus pays the debt first"
        if granted.lot is not None:
            assert granted.lot.available_at == at and granted.lot.expires_at is not None
        assert self.balance().points == before.points + rule.points
        observe(f"bonus {code}: pays debt {granted.debt_paid > 0}")
        self.registered = self.registered or code == "registration"
        self.points_model += rule.points

    def expiry_run(self, path: str = "log") -> None:
        """The expiry run as of now: one `PointsExpired` per due lot; a second run expires
        nothing twice. `path` "view": decided from the members view caught up with the log
        (D66): no member read, and exactly the events a full read decides; "lagging": the view
        left behind by a credit written just before, so a decision from it is stale and must
        be refused by the store and redone from a full read (again exactly a full read's
        events, nothing twice); "log": every member that ever held a lot, each read."""
        if path == "lagging":
            self.adjustment(7)  # the member moves on; the view does not see it (not caught up)
        elif path == "view":
            self.caught_up()
        member = self.member
        due = {
            lot.lot_id: lot.remaining
            for lot in member.lots
            if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= self.now
        }
        decided = expiry.expire(member, self.now, OPERATOR)  # what a full read decides
        seen = self.projections.members.due_seen([member.id], self.now)
        trace = ExpiryTrace()
        start = self.ledger.core.log_position()
        if path == "log":
            result = self.ledger.runs.expire(self.now, OPERATOR, self.now)
        else:
            views = self.projections.members
            run = self.ledger.runs.expire
            result = run(self.now, OPERATOR, self.now, [member.id], seen=views, trace=trace)
        written = self.since(start)
        assert all(isinstance(e, PointsExpired) for e in written)
        assert {e.lot_id: e.points for e in written if isinstance(e, PointsExpired)} == due
        assert [_bare(e) for e in written] == [_bare(e) for e in decided]
        if path == "view":  # decided from the view alone, never refused
            assert (trace.members_from_view, trace.members_read) == ((1, 0) if due else (0, 1))
            assert trace.chunks_redone == 0
            assert (member.id in seen) == bool(due)
        elif path == "lagging":  # a stale decision is refused, the member read and expired
            stale = seen.get(member.id)
            assert stale is None or stale.version < member.version
            assert trace.chunks_redone == (1 if stale else 0)
        observe(f"expiry from the {path}: {'stale, redone' if trace.chunks_redone else 'once'}")
        assert (result.lots_expired, result.points_expired) == (len(due), sum(due.values()))
        observe(f"expiry: {'expired lots' if due else 'nothing due'}")
        self.points_model -= sum(due.values())
        start = self.ledger.core.log_position()
        again = self.ledger.runs.expire(self.now, OPERATOR, self.now)
        assert again.lots_expired == 0 and self.ledger.core.log_position() == start
        assert all(
            lot.remaining == 0
            for lot in self.member.lots
            if lot.expires_at is not None and lot.expires_at <= self.now
        )

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def amounts_stay_within_bounds(self) -> None:
        member = self.member
        for lot in member.lots:
            assert 0 <= lot.remaining <= lot.points, f"lot {lot.lot_id}: {lot.remaining}"
            assert lot.earned_at <= lot.available_at
            assert lot.expires_at is None or lot.expires_at > lot.earned_at
        assert len({lot.lot_id for lot in member.lots}) == len(member.lots)
        assert member.debt_points >= 0
        assert member.stored_value_fen >= 0
        for payment_id, paid in self.payments.items():
            stored = self.ledger.core.get(payment_id, operation.evolve)
            assert stored is not None and stored.kind == "payment"
            assert (stored.amount_fen, stored.followed_fen) == (paid.amount_fen, paid.refunded_fen)
            assert 0 <= stored.followed_fen <= stored.amount_fen

    @invariant()
    def sales_never_reverse_more_than_they_earned(self) -> None:
        spend = 0
        for sale_id in self.sales:
            sale = self.sale(sale_id)
            full = True
            for n, line in enumerate(sale.lines, start=1):
                refunded = sale.refunded_fen.get(n, 0)
                assert 0 <= refunded <= line.amount_fen
                full = full and refunded == line.amount_fen
                if sale.valuation.lines[n - 1].counts_for_tier:  # the uninsured share counts
                    uninsured = line.amount_fen - line.insured_fen
                    spend += uninsured - (
                        refunded * uninsured // line.amount_fen if refunded else 0
                    )
            assert 0 <= sale.points_reversed <= sale.valuation.points
            if full:
                assert sale.points_reversed == sale.valuation.points
        assert sum(e.amount_fen for e in self.member.spend) == spend

    @invariant()
    def tier_never_falls_without_a_review(self) -> None:
        current = rank(RULES, self.member.tier)
        assert current >= self.tier_rank, "refunds never downgrade"
        self.tier_rank = current

    # -- the views ------------------------------------------------------------------------------

    def caught_up(self) -> None:
        self.projections.replay(self.ledger.core.log_position())

    @invariant()
    def settlement_rows_add_up(self) -> None:
        """Each month's totals are its rows' sums; each row's difference is fee − redemption
        cost − stored-value cost; all months' stored-value cost is what was paid less refunded."""
        self.caught_up()
        period, last = month_of(datetime(2026, 1, 1, tzinfo=SH), SH), month_of(self.now, SH)
        stored_value_cost = 0
        while period <= last:
            report = self.queries.settlement(period)
            totals = report.totals
            for field in (
                "points_issued",
                "fee_due_fen",
                "redemption_cost_fen",
                "stored_value_cost_fen",
                "difference_fen",
            ):
                assert getattr(totals, field) == sum(getattr(r, field) for r in report.rows)
            for row in report.rows:
                cost = row.redemption_cost_fen + row.stored_value_cost_fen
                assert row.difference_fen == row.fee_due_fen - cost
            stored_value_cost += totals.stored_value_cost_fen
            period = next_period(period)
        paid = sum(p.amount_fen - p.refunded_fen for p in self.payments.values())
        assert stored_value_cost == paid, "stored value is settled where it is spent"

    @invariant()
    def liability_is_each_lot_at_its_versions_cost(self) -> None:
        """The liability now is Σ over the member's outstanding lots (their debt taken earliest
        expiry first) of points × the cost per point of the version each was earned under."""
        self.caught_up()
        member = self.member
        owed, exact, points = member.debt_points, Decimal(0), 0
        never = datetime.max.replace(tzinfo=SH)
        for lot in sorted(
            member.lots,
            key=lambda lot: (lot.expires_at is None, lot.expires_at or never, lot.earned_at),
        ):
            taken = min(owed, lot.remaining)
            owed -= taken
            left = lot.remaining - taken
            version = SECOND if lot.earned_at >= SECOND.effective_from else RULES
            assert version.settlement is not None
            exact += left * version.settlement.cost_per_point_fen
            points += left
        report = self.queries.liability(self.now)
        assert report.points == points and report.members == (1 if points > 0 else 0)
        assert report.value_fen == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        assert report.stored_value_fen == self.stored_value_model
        assert sum(v.points for v in report.by_version) == points
