"""A stateful property test of the member's pure domain functions (SPEC 2.2-2.6).

A hypothesis `RuleBasedStateMachine` drives one member through enrolment, sales, refunds (full,
partial and refused), redemptions of every kind with and without a hold, captures, voids (and
their replays), conversions to stored value, stored-value payments and their refunds, credit and
debit adjustments, expiry runs and the passing of time (minutes to months, so holds lapse, the
return window closes and lots expire). It calls the very pure decision functions that
`ledger.application.Ledger` calls, with the same arguments, and folds their events into the
member, sale, redemption and payment aggregates in memory: no database, no HTTP, no application.

After every step it checks the ledger's invariants: spendable points are the lots out of their
return window less debt less live holds; every lot stays within 0..points; debt and stored value
are never negative; points are conserved (lots less debt is what the events say was earned,
reversed, spent, restored, expired and adjusted); replaying every event from scratch, as stored
(JSON) or in memory, gives the state that was built step by step. Each rule also checks, at the
moment it runs, that nothing spent more than was available, that spending is FIFO by expiry, that
refused requests raise the documented error and change nothing, and that decisions are pure.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import event as observe
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from ledger import enrolment, ids
from ledger.adjustments import adjust
from ledger.chaintime import add_months
from ledger.commands import (
    AdjustPoints,
    CashOffset,
    ConvertPoints,
    EnrolMember,
    Exchange,
    Gift,
    PayWithStoredValue,
    PostSale,
    Redeem,
    RefundLine,
    RefundSale,
    RefundStoredValue,
    SaleLine,
    Voucher,
)
from ledger.errors import (
    HoldLapsed,
    InsufficientPoints,
    InsufficientStoredValue,
    InvalidInput,
    LedgerError,
    RedemptionVoidedAlready,
    RefundExceedsSale,
)
from ledger.expiry import expire
from ledger.lots import LotTake
from ledger.member import (
    Balance,
    Member,
    MemberEvent,
    PointsAccrued,
    PointsAdjusted,
    PointsConverted,
    PointsExpired,
    PointsHeld,
    PointsRedeemed,
    PointsReversed,
    RedemptionVoided,
    StoredValueCredited,
    balance,
    held,
)
from ledger.member import evolve as evolve_member
from ledger.model import Aggregate, DomainEvent, Snapshot, projector
from ledger.records import (
    FollowUpRecorded,
    Operation,
    OperationRecorded,
    encode,
    evolve_operation,
)
from ledger.redemptions import (
    Redemption,
    RedemptionCaptured,
    RedemptionRecorded,
    RedemptionVoidRecorded,
    capture,
    evolve_redemption,
    redeem,
    void,
)
from ledger.refunds import refund_sale
from ledger.rules import RuleVersion
from ledger.sale import Sale, SaleRecorded, SaleRefunded, check_business_time, evolve_sale
from ledger.sale import record_sale as decide_sale
from ledger.storedvalue import convert, pay, refund_payment
from ledger.tiers import level_for_spend, rank, window_spend
from tests.rulesets import SPEC_EXAMPLE, doc, ruleset

pytestmark = pytest.mark.unit

SH = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 2, 10, 9, 30, tzinfo=SH)
ENROLLED = START - timedelta(days=20)  # after the rule set took effect (2026-01-01)
NEVER = datetime.max.replace(tzinfo=UTC)  # sorts after every expiry instant
CARD = "CARD-0001"
OPERATOR = "machine"
STORES = ("S1", "S2")
LOCK_DAYS = 7
HOLD_MINUTES = 120
ROLLING_MONTHS = 6  # lots of Oct-Dec expire at the clearance (1 April), earlier ones after 6 months
SV_POINTS_PER_YUAN = 150  # not 100, so that a conversion floors (1 point is worth 0 fen)

# The SPEC's example rule set (tiers, member days, categories, the voucher ladder, rolling and
# clearance expiry), plus a return window, a conversion rate and a hold time of its own.
RULES = ruleset(
    doc(
        SPEC_EXAMPLE,
        expiry={"rolling_months": ROLLING_MONTHS, "clearance_month": 3, "clearance_day": 31},
        accrual=SPEC_EXAMPLE["accrual"] | {"lock_days": LOCK_DAYS},
        redemption=SPEC_EXAMPLE["redemption"]
        | {"stored_value_points_per_yuan": SV_POINTS_PER_YUAN, "hold_minutes": HOLD_MINUTES},
    )
)
VERSION = RuleVersion(version=1, published_at=ENROLLED, rules=RULES)
LADDER = [step.points for step in RULES.redemption.voucher_ladder] if RULES.redemption else []
assert RULES.expiry is not None and RULES.accrual.lock_days > 0 and LADDER

AggT = TypeVar("AggT", bound=Aggregate)
T = TypeVar("T")

sale_lines = st.lists(
    st.builds(
        SaleLine,
        sku=st.sampled_from(["A", "B", "BRAND-X"]),
        amount_fen=st.integers(min_value=0, max_value=200_000),
        category=st.sampled_from(["", "otc", "tcm", "supplement"]),
        no_points=st.sampled_from([False, False, False, True]),
        no_cumulative_spend=st.sampled_from([False, False, True]),
    ),
    min_size=1,
    max_size=4,
)
stores = st.sampled_from(STORES)
# percent of what may be spent: > 100 is refused; JUST_OVER is one more than may be spent
JUST_OVER = 101
shares = st.sampled_from([5, 20, 50, 100, JUST_OVER]) | st.integers(min_value=1, max_value=130)
# offline stores upload late: a week late, the points are spendable at once
lateness = st.sampled_from([timedelta(0), timedelta(minutes=20), timedelta(hours=30)]) | st.just(
    timedelta(days=LOCK_DAYS + 2)
)


def builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


def expiry_key(expires_at: datetime | None) -> datetime:
    return NEVER if expires_at is None else expires_at


def assert_fifo(before: Member, takes: Sequence[LotTake], at: datetime) -> None:
    """Takes come from lots spendable at `at`, each lot once, earliest expiry first: no lot that
    expires strictly earlier than a lot taken from keeps points after the takes."""
    taken: dict[int, int] = {}
    for take in takes:
        assert take.lot_id not in taken, f"lot {take.lot_id} taken twice in one event"
        assert take.points > 0
        taken[take.lot_id] = take.points
    lots = {lot.lot_id: lot for lot in before.lots}
    for lot_id, points in taken.items():
        lot = lots[lot_id]
        assert lot.available_at <= at, f"lot {lot_id} was still pending at {at}"
        assert points <= lot.remaining
    for lot_id in taken:
        cutoff = expiry_key(lots[lot_id].expires_at)
        for other in before.lots:
            left = other.remaining - taken.get(other.lot_id, 0)
            if other.available_at <= at and left > 0:
                assert expiry_key(other.expires_at) >= cutoff, (
                    f"took lot {lot_id} (expires {cutoff}) before lot {other.lot_id} "
                    f"(expires {other.expires_at})"
                )


def fold(
    evolve: Callable[[AggT | None, DomainEvent], AggT], state: AggT | None, event: Any
) -> AggT:
    """Apply one event as the repository would, after the store's version check."""
    expected = 1 if state is None else state.version + 1
    assert event.originator_version == expected, (
        f"{type(event).__name__} has version {event.originator_version}, the store expects "
        f"{expected}"
    )
    new = projector(evolve)(state, [event])
    assert new is not None
    return new


def replay(evolve: Callable[[AggT | None, DomainEvent], AggT], events: list[Any]) -> AggT:
    state = projector(evolve)(None, events)
    assert state is not None
    return state


def stored(event: DomainEvent) -> DomainEvent:
    """The event as the store gives it back (the mapper's JSON, decoded strictly)."""
    return msgspec.json.decode(msgspec.json.encode(event), type=type(event))


class MemberLedgerMachine(RuleBasedStateMachine):
    """One member, its sales, redemptions and stored-value payments, kept in memory."""

    sale_ids: Bundle[UUID] = Bundle("sale_ids")
    redemption_ids: Bundle[UUID] = Bundle("redemption_ids")
    payment_ids: Bundle[UUID] = Bundle("payment_ids")

    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.member_state: Member | None = None
        self.member_events: list[MemberEvent] = []
        self.sales: dict[UUID, Sale] = {}
        self.redemptions: dict[UUID, Redemption] = {}
        self.payments: dict[UUID, Operation] = {}
        self.payment_store: dict[UUID, str] = {}
        self.events_of: dict[UUID, list[DomainEvent]] = {}
        self.numbers = 0
        # Independent models, kept from what the rules asked and were told.
        self.points_model = 0  # Σ lot remaining − debt, by conservation
        self.stored_value_model = 0
        self.tier_rank = -1

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def member(self) -> Member:
        assert self.member_state is not None, "enrolled by initialize"
        return self.member_state

    def number(self, prefix: str) -> str:
        self.numbers += 1
        return f"{prefix}{self.numbers}"

    def save(self, events: Sequence[DomainEvent]) -> None:
        """Fold each event into its aggregate, as `Ledger._save` and the repository would."""
        for event in events:
            if isinstance(event, MemberEvent):
                self.member_state = fold(evolve_member, self.member_state, event)
                self.member_events.append(event)
                continue
            key = event.originator_id
            if isinstance(event, SaleRecorded | SaleRefunded):
                self.sales[key] = fold(evolve_sale, self.sales.get(key), event)
            elif isinstance(
                event, RedemptionRecorded | RedemptionCaptured | RedemptionVoidRecorded
            ):
                self.redemptions[key] = fold(evolve_redemption, self.redemptions.get(key), event)
            elif isinstance(event, OperationRecorded | FollowUpRecorded):
                self.payments[key] = fold(evolve_operation, self.payments.get(key), event)
            else:
                raise TypeError(f"unexpected event {type(event).__name__}")
            self.events_of.setdefault(key, []).append(event)

    def decide(self, call: Callable[[], T], *inputs: msgspec.Struct) -> T:
        """Run a decision; it must leave its inputs (the cached aggregates) untouched."""
        before = [builtins(x) for x in inputs]
        try:
            return call()
        finally:
            assert [builtins(x) for x in inputs] == before, "a decision mutated its input"

    def refused(
        self, error: type[LedgerError], call: Callable[[], object], *inputs: msgspec.Struct
    ) -> None:
        """The decision raises `error` and nothing changes (no event, no mutated state)."""
        observe(f"refused: {error.__name__}")
        count = len(self.member_events)
        with pytest.raises(error):
            self.decide(call, *inputs)
        assert len(self.member_events) == count

    def live_holds(self) -> int:
        """Points reserved by this model's own record of holds not captured, voided or lapsed."""
        return sum(
            r.points
            for r in self.redemptions.values()
            if r.status == "held" and r.hold_expires_at is not None and r.hold_expires_at > self.now
        )

    def spendable(self, at: datetime) -> int:
        """What the SPEC lets a redemption, conversion or debit at `at` spend right now."""
        member = self.member
        lots = sum(lot.remaining for lot in member.lots if lot.available_at <= at)
        return lots - member.debt_points - self.live_holds()

    def lots_available(self, at: datetime) -> int:
        return sum(lot.remaining for lot in self.member.lots if lot.available_at <= at)

    def balance(self) -> Balance:
        return balance(self.member, self.now)

    def amount(self, limit: int, share: int) -> int:
        """A positive amount: `share` percent of `limit` (beyond it when share > 100), where 100
        is exactly the limit and 101 exactly one more, the boundary of every refusal."""
        if limit <= 0:
            return share
        if share == JUST_OVER:
            return limit + 1
        return max(1, limit * share // 100)

    # -- enrolment and sales --------------------------------------------------------------------

    @initialize(
        target=sale_ids,
        store=stores,
        birthday=st.none() | st.integers(0, 40).map(lambda n: date(1990, 2, 5) + timedelta(n)),
        opening=st.none() | sale_lines,
    )
    def enrol(
        self, store: str, birthday: date | None, opening: list[SaleLine] | None
    ) -> UUID | MultipleResults[UUID]:
        """Enrolment, 20 days ago; maybe a first sale the next day, spendable by now."""
        cmd = EnrolMember(member_id=CARD, store_id=store, birthday=birthday, occurred_at=ENROLLED)
        check_business_time(ENROLLED, self.now)
        tiers = RULES.tiers
        events = enrolment.enrol(
            cmd,
            occurred_at=ENROLLED,
            tier=tiers.levels[0].code if tiers else None,
            id_hash=None,
            fingerprint="enrol",
            operator=OPERATOR,
        )
        self.save(events)
        self.tier_rank = rank(RULES, self.member.tier)
        if opening is None:
            return multiple()
        return self.post_sale(store, opening, ENROLLED + timedelta(days=1)).id

    def post_sale(self, store: str, lines: list[SaleLine], occurred_at: datetime) -> Sale:
        check_business_time(occurred_at, self.now)
        cmd = PostSale(
            store_id=store,
            receipt_no=self.number("R"),
            member_id=CARD,
            occurred_at=occurred_at,
            lines=lines,
        )
        debt = self.member.debt_points
        events, receipt = self.decide(
            lambda: decide_sale(
                cmd, self.member, VERSION, fingerprint="sale", operator=OPERATOR, now=self.now
            ),
            self.member,
        )
        accrued = events[0]
        assert isinstance(accrued, PointsAccrued)
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
        self.save(events)
        observe(
            f"sale: {'pays debt' if accrued.debt_paid else 'no debt'}, tier change: {len(events) > 2}"
        )
        self.points_model += points
        sale_id = ids.sale_id(store, cmd.receipt_no)
        assert receipt.sale_id == sale_id
        spend = window_spend(self.member.spend, occurred_at, RULES)
        reached = level_for_spend(RULES, spend)
        assert reached is not None
        assert rank(RULES, self.member.tier) >= rank(RULES, reached.code), "upgrade is immediate"
        return self.sales[sale_id]

    @rule(target=sale_ids, store=stores, lines=sale_lines, late=lateness)
    def record_sale(self, store: str, lines: list[SaleLine], late: timedelta) -> UUID:
        occurred_at = max(self.now - late, self.member.enrolled_at)  # offline stores upload late
        return self.post_sale(store, lines, occurred_at).id

    def refund(self, sale: Sale, lines: list[RefundLine]) -> int:
        """Refund `lines` of `sale` now (they must be valid); returns the points reversed."""
        cmd = RefundSale(refund_no=self.number("F"), occurred_at=self.now, lines=lines)
        before = copy.deepcopy(self.member)
        own_pending = sum(
            lot.remaining
            for lot in before.lots
            if lot.sale_id == sale.id and lot.available_at > self.now
        )
        events, receipt = self.decide(
            lambda: refund_sale(
                sale, self.member, cmd, fingerprint="refund", operator=OPERATOR, now=self.now
            ),
            self.member,
            sale,
        )
        reversal = events[0]
        assert isinstance(reversal, PointsReversed)
        points = reversal.points
        assert points == receipt.points_reversed >= 0
        took = sum(t.points for t in reversal.takes)
        assert took + reversal.debt_added == points
        # pending points of the sale first, then spendable lots; only what is left is debt
        assert reversal.debt_added == max(0, points - own_pending - self.lots_available(self.now))
        first = reversal.takes[0] if reversal.takes else None
        if own_pending and first is not None:
            assert before.lot(first.lot_id).sale_id == sale.id, "own pending points go first"
        self.save(events)
        observe(
            f"refund: {'own pending' if own_pending else 'no own pending'}, debt: {reversal.debt_added > 0}"
        )
        self.points_model -= points
        return points

    @rule(
        sale_id=sale_ids,
        mode=st.sampled_from(["valid", "valid", "valid", "over", "bad_line"]),
        parts=st.lists(st.sampled_from([0, 1, 33, 50, 100, 100]), min_size=4, max_size=4),
        extra=st.integers(min_value=1, max_value=10_000),
    )
    def refund_sale(self, sale_id: UUID, mode: str, parts: list[int], extra: int) -> None:
        sale = self.sales[sale_id]
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
        if mode == "bad_line":
            bad = [RefundLine(line_no=len(sale.lines) + 1, amount_fen=extra)]
            cmd = RefundSale(refund_no=self.number("F"), occurred_at=self.now, lines=bad)
            self.refused(
                InvalidInput,
                lambda: refund_sale(
                    sale, self.member, cmd, fingerprint="f", operator=OPERATOR, now=self.now
                ),
                self.member,
                sale,
            )
        elif mode == "over" or not lines:
            # more than was sold and not yet refunded, possibly split over two lines of a refund
            n = parts[0] % len(sale.lines) + 1
            over = [RefundLine(line_no=n, amount_fen=extra)]
            if left[n]:
                over.insert(0, RefundLine(line_no=n, amount_fen=left[n]))
            cmd = RefundSale(refund_no=self.number("F"), occurred_at=self.now, lines=over)
            self.refused(
                RefundExceedsSale,
                lambda: refund_sale(
                    sale, self.member, cmd, fingerprint="f", operator=OPERATOR, now=self.now
                ),
                self.member,
                sale,
            )
        else:
            self.refund(sale, lines)

    @rule(target=sale_ids, store=stores, lines=sale_lines, in_pieces=st.booleans())
    def sale_then_full_refund(self, store: str, lines: list[SaleLine], in_pieces: bool) -> UUID:
        """A full refund of an untouched sale (in one go or in pieces) restores the balance."""
        before = self.balance()
        lots_before = {lot.lot_id: lot.remaining for lot in self.member.lots}
        debt_before = self.member.debt_points
        sale = self.post_sale(store, lines, self.now)
        sold = [(n, line.amount_fen) for n, line in enumerate(sale.lines, start=1)]
        if in_pieces:
            first = [RefundLine(line_no=n, amount_fen=fen // 2) for n, fen in sold if fen // 2]
            if first:
                self.refund(sale, first)
            sale = self.sales[sale.id]
        rest = [
            RefundLine(line_no=n, amount_fen=fen - sale.refunded_fen.get(n, 0))
            for n, fen in sold
            if fen - sale.refunded_fen.get(n, 0) > 0
        ]
        if rest:
            self.refund(sale, rest)
        sale = self.sales[sale.id]
        assert sale.points_reversed == sale.valuation.points, "a full refund reverses all"
        assert self.balance() == before, "a full refund of an untouched sale restores the balance"
        if debt_before == 0:  # untouched: only the sale's own lot moved, and it is empty again
            assert self.member.debt_points == 0
            lots_after = {lot.lot_id: lot.remaining for lot in self.member.lots}
            assert {k: v for k, v in lots_after.items() if k in lots_before} == lots_before
            assert all(v == 0 for k, v in lots_after.items() if k not in lots_before)
        return sale.id

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
    ) -> UUID | MultipleResults[UUID]:
        """A sale uploaded a week late (spendable at once), every spendable point spent (or
        held), then the sale refunded in full: the refund finds its points spent and leaves a
        debt (or takes the held ones, so that capturing the hold leaves the debt), which later
        sales and credits pay first and a void may take back. `settle` then captures and/or
        voids the redemption at once, before its hold lapses, maybe with a credit between the
        two that repays part of the capture's debt (the void then takes back only what is left
        of that debt: the accepted edge)."""
        late = self.now - timedelta(days=LOCK_DAYS + 2)
        sale = self.post_sale(store, lines, max(late, self.member.enrolled_at))
        may_spend = self.spendable(self.now)
        made = None
        if may_spend > 0:
            if how in ("redeem", "hold"):
                made = self.spend_by_redemption(
                    Gift(
                        store_id=store,
                        redemption_no=self.number("X"),
                        member_id=CARD,
                        occurred_at=self.now,
                        points=may_spend,
                        hold=how == "hold",
                        gift_sku="G-2",
                        cost_fen=may_spend,
                    )
                )
            elif how == "convert":
                self.spend_by_conversion(may_spend, store)
            else:
                self.adjustment(-may_spend)
        sale = self.sales[sale.id]
        rest = [
            RefundLine(line_no=n, amount_fen=line.amount_fen - sale.refunded_fen.get(n, 0))
            for n, line in enumerate(sale.lines, start=1)
            if line.amount_fen > sale.refunded_fen.get(n, 0)
        ]
        if rest:
            self.refund(sale, rest)
        if made is not None:
            for action in settle:
                if action == "capture":
                    self.capture_hold(made)
                elif action == "repay":  # a credit pays part of the capture's debt
                    self.adjustment(max(1, self.member.debt_points // 2))
                else:
                    self.void_redemption(made)
        return multiple() if made is None else made

    # -- redemptions ----------------------------------------------------------------------------

    def spend_by_redemption(
        self,
        cmd: Redeem,
        *,
        invalid: bool = False,
    ) -> UUID | None:
        """Post a redemption; check its refusal or its effect. Returns its id when it was made."""
        points, hold, at = cmd.points, cmd.hold, cmd.occurred_at
        may_spend = self.spendable(at)

        def call() -> Any:
            return redeem(
                cmd, self.member, VERSION, fingerprint="redeem", operator=OPERATOR, now=self.now
            )

        if invalid:
            self.refused(InvalidInput, call, self.member)
            return None
        if points > may_spend:
            self.refused(InsufficientPoints, call, self.member)
            return None
        assert points <= may_spend  # never more than was available when it ran
        before_member = copy.deepcopy(self.member)
        before = self.balance()
        events, answer = self.decide(call, self.member)
        event = events[0]
        if hold:
            assert isinstance(event, PointsHeld)
            assert event.expires_at == self.now + timedelta(minutes=HOLD_MINUTES)
        else:
            assert isinstance(event, PointsRedeemed)
            assert sum(t.points for t in event.takes) == points and event.debt_added == 0
            assert_fifo(before_member, event.takes, at)
        self.save(events)
        observe(f"redeem {answer.kind}: {'held' if hold else 'redeemed'}")
        after = self.balance()
        assert after.points == before.points - points
        assert after.held_points == before.held_points + (points if hold else 0)
        assert after.pending_points == before.pending_points
        if hold:
            assert builtins(self.member.lots) == builtins(before_member.lots), "a hold takes none"
        else:
            self.points_model -= points
        redemption_id = ids.redemption_id(cmd.store_id, cmd.redemption_no)
        assert answer.redemption_id == redemption_id
        assert self.redemptions[redemption_id].status == ("held" if hold else "redeemed")
        return redemption_id

    @rule(
        target=redemption_ids,
        kind=st.sampled_from(["cash_offset", "voucher", "gift", "exchange"]),
        hold=st.booleans(),
        share=shares,
        step=st.sampled_from([*LADDER, 150]),
        receipt=st.sampled_from(["none", "enough", "enough", "too_small"]),
        cost=st.integers(min_value=0, max_value=50_000),
        store=stores,
        late=st.sampled_from([timedelta(0), timedelta(0), timedelta(minutes=3)]),
        then=st.sampled_from(["", "", "capture", "void"]),
    )
    def redeem(
        self,
        kind: str,
        hold: bool,
        share: int,
        step: int,
        receipt: str,
        cost: int,
        store: str,
        late: timedelta,
        then: str,
    ) -> UUID | MultipleResults[UUID]:
        """A redemption of any kind, spent or held; `then` the POS may capture or void it at
        once (later captures and voids come from the capture and void rules)."""
        occurred_at = self.now - late
        points = step if kind == "voucher" else self.amount(self.spendable(occurred_at), share)
        common: dict[str, Any] = {
            "store_id": store,
            "redemption_no": self.number("X"),
            "member_id": CARD,
            "occurred_at": occurred_at,
            "points": points,
            "hold": hold,
        }
        cmd: Redeem
        invalid = False
        if kind == "cash_offset":
            receipt_fen = {"none": None, "enough": 2 * points, "too_small": points}[receipt]
            cmd = CashOffset(receipt_amount_fen=receipt_fen, **common)
            invalid = receipt == "too_small"  # the offset is more than half the receipt
        elif kind == "voucher":
            cmd = Voucher(**common)
            invalid = step not in LADDER
        elif kind == "gift":
            cmd = Gift(gift_sku="G-1", cost_fen=cost, **common)
        else:
            cmd = Exchange(sku="E-1", cash_price_fen=990, cost_fen=cost, **common)
        made = self.spend_by_redemption(cmd, invalid=invalid)
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

    def capture_hold(self, redemption_id: UUID) -> None:
        found = self.redemptions[redemption_id]
        if found.status == "redeemed":
            return  # the application replays the stored receipt: nothing is decided or saved

        def call() -> Any:
            return capture(found, self.member, operator=OPERATOR, now=self.now)

        if found.status == "voided":
            self.refused(RedemptionVoidedAlready, call, self.member, found)
            return
        assert found.hold_expires_at is not None
        if found.hold_expires_at <= self.now:
            self.refused(HoldLapsed, call, self.member, found)
            return
        before_member = copy.deepcopy(self.member)
        before = self.balance()
        lots = self.lots_available(self.now)
        events, _ = self.decide(call, self.member, found)
        event = events[0]
        assert isinstance(event, PointsRedeemed) and event.captured_hold
        assert sum(t.points for t in event.takes) + event.debt_added == found.points
        # debt only when the lots no longer hold the reserved points (a refund or expiry took them)
        assert event.debt_added == max(0, found.points - lots)
        assert_fifo(before_member, event.takes, self.now)
        self.save(events)
        observe(f"capture: debt {event.debt_added > 0}")
        after = self.balance()
        # capturing spends exactly what the hold reserved: no more than was available
        assert after.points == before.points
        assert after.pending_points == before.pending_points
        assert after.held_points == before.held_points - found.points
        assert self.redemptions[redemption_id].status == "redeemed"
        self.points_model -= found.points

    @rule(redemption_id=redemption_ids)
    def void(self, redemption_id: UUID) -> None:
        self.void_redemption(redemption_id)

    def void_redemption(self, redemption_id: UUID) -> None:
        found = self.redemptions[redemption_id]
        if found.void_receipt is not None:
            # voiding again replays the stored receipt (Ledger.void): nothing is decided or saved
            return
        status = found.status
        before = self.balance()
        debt = self.member.debt_points
        live = found.hold_expires_at is not None and found.hold_expires_at > self.now
        events, receipt = self.decide(
            lambda: void(found, self.member, operator=OPERATOR, now=self.now), self.member, found
        )
        voided = [e for e in events if isinstance(e, RedemptionVoided)]
        if status == "redeemed":
            # the accepted edge: a capture's debt repaid since is taken back only as far as it
            # remains (nothing at all once it is fully repaid)
            debt_back = min(found.debt_added, debt)
            restored = sum(t.points for t in found.takes) + debt_back
            assert receipt.points_restored == restored and receipt.released_hold == 0
            if debt_back < found.debt_added:
                observe("void redeemed: capture's debt partly or fully repaid (accepted edge)")
            if restored:
                (event,) = voided
                assert event.restores == found.takes, "points go back to the very lots"
                assert event.debt_removed == debt_back
            else:
                assert not voided, "nothing to give back"
        elif live:
            (event,) = voided
            assert event.released_hold == event.points_restored == found.points
        else:
            assert not voided, "a lapsed hold has nothing to give back"
        self.save(events)
        observe(
            f"void {status}: live {live}, debt removed {bool(voided and voided[0].debt_removed)}"
        )
        after = self.balance()
        assert after.points == before.points + receipt.points_restored
        assert after.pending_points == before.pending_points
        assert after.held_points == before.held_points - receipt.released_hold
        assert self.redemptions[redemption_id].status == "voided"
        self.points_model += receipt.points_restored - receipt.released_hold

    # -- stored value -------------------------------------------------------------------------

    @rule(share=shares, store=stores)
    def convert_points(self, share: int, store: str) -> None:
        self.spend_by_conversion(self.amount(self.spendable(self.now), share), store)

    def spend_by_conversion(self, points: int, store: str) -> None:
        may_spend = self.spendable(self.now)
        cmd = ConvertPoints(
            store_id=store, conversion_no=self.number("C"), occurred_at=self.now, points=points
        )

        def call() -> Any:
            return convert(cmd, self.member, VERSION, operator=OPERATOR, now=self.now)

        credited = points * 100 // SV_POINTS_PER_YUAN
        if credited == 0:
            self.refused(InvalidInput, call, self.member)
            return
        if points > may_spend:
            self.refused(InsufficientPoints, call, self.member)
            return
        before_member = copy.deepcopy(self.member)
        before = self.balance()
        events, receipt = self.decide(call, self.member)
        converted, credit = events
        assert isinstance(converted, PointsConverted) and isinstance(credit, StoredValueCredited)
        assert sum(t.points for t in converted.takes) == points
        assert_fifo(before_member, converted.takes, self.now)
        assert receipt.credited_fen == credit.amount_fen == credited
        self.save(events)
        self.points_model -= points
        self.stored_value_model += credited
        assert self.balance().points == before.points - points

    @rule(target=payment_ids, share=shares, store=stores)
    def pay_with_stored_value(self, share: int, store: str) -> UUID | MultipleResults[UUID]:
        stored_value = self.member.stored_value_fen
        amount = self.amount(stored_value, share)
        cmd = PayWithStoredValue(
            store_id=store, payment_no=self.number("P"), occurred_at=self.now, amount_fen=amount
        )

        def call() -> Any:
            return pay(cmd, self.member, operator=OPERATOR, now=self.now)

        if amount > stored_value:
            self.refused(InsufficientStoredValue, call, self.member)
            return multiple()
        events, receipt = self.decide(call, self.member)
        payment_id = ids.payment_id(store, cmd.payment_no)
        record = OperationRecorded(
            originator_id=payment_id,
            originator_version=1,
            kind="payment",
            number=cmd.payment_no,
            member_id=CARD,
            fingerprint="pay",
            amount_fen=receipt.amount_fen,
            receipt=encode(receipt),
        )
        self.save([*events, record])
        self.payment_store[payment_id] = store
        self.stored_value_model -= amount
        return payment_id

    @rule(payment_id=payment_ids, share=shares, over=st.booleans())
    def refund_stored_value(self, payment_id: UUID, share: int, over: bool) -> None:
        payment = self.payments[payment_id]
        left = payment.amount_fen - payment.followed_fen
        amount = left + share if over or left == 0 else self.amount(left, min(share, 100))
        cmd = RefundStoredValue(
            store_id=self.payment_store[payment_id],
            refund_no=self.number("V"),
            payment_no=payment.number,
            occurred_at=self.now,
            amount_fen=amount,
        )

        def call() -> Any:
            return refund_payment(payment, cmd, self.member, operator=OPERATOR, now=self.now)

        if amount > left:
            self.refused(RefundExceedsSale, call, self.member, payment)
            return
        events, receipt = self.decide(call, self.member, payment)
        follow_up = FollowUpRecorded(
            originator_id=payment.id,
            originator_version=payment.version + 1,
            number=cmd.refund_no,
            fingerprint="refund",
            amount_fen=cmd.amount_fen,
            receipt=encode(receipt),
        )
        self.save([*events, follow_up])
        self.stored_value_model += amount

    # -- adjustments, expiry, time ------------------------------------------------------------

    @rule(
        kind=st.sampled_from(["credit", "credit", "debit", "debit", "zero"]),
        credit=st.integers(min_value=1, max_value=3_000),
        share=shares,
    )
    def adjust_points(self, kind: str, credit: int, share: int) -> None:
        debit = -self.amount(self.spendable(self.now), share)
        self.adjustment({"credit": credit, "debit": debit, "zero": 0}[kind])

    def adjustment(self, points: int) -> None:
        may_spend = self.spendable(self.now)
        cmd = AdjustPoints(
            adjustment_no=self.number("A"),
            points=points,
            reason="customer service",
            ticket="T-1",
            occurred_at=self.now,
        )

        def call() -> Any:
            return adjust(
                cmd, self.member, VERSION, occurred_at=self.now, operator=OPERATOR, now=self.now
            )

        if points == 0:
            self.refused(InvalidInput, call, self.member)
            return
        if points < 0 and -points > may_spend:
            self.refused(InsufficientPoints, call, self.member)
            return
        before_member = copy.deepcopy(self.member)
        before = self.balance()
        events, _ = self.decide(call, self.member)
        (event,) = events
        assert isinstance(event, PointsAdjusted)
        if points > 0:
            assert event.debt_paid == min(before_member.debt_points, points) and not event.takes
            kept = points - event.debt_paid
            assert (event.lot.points if event.lot else 0) == kept
            if event.lot is not None:
                assert event.lot.available_at == self.now, "a credit is spendable at once"
        else:
            assert sum(t.points for t in event.takes) == -points and event.lot is None
            assert_fifo(before_member, event.takes, self.now)
        self.save(events)
        observe(f"adjust {'credit' if points > 0 else 'debit'}: debt paid {event.debt_paid > 0}")
        self.points_model += points
        assert self.balance().points == before.points + points

    @rule()
    def run_expiry(self) -> None:
        due = {
            lot.lot_id: lot.remaining
            for lot in self.member.lots
            if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= self.now
        }
        events = self.decide(lambda: expire(self.member, self.now, OPERATOR), self.member)
        assert all(isinstance(e, PointsExpired) for e in events)
        assert {e.lot_id: e.points for e in events} == due
        self.save(events)
        observe(f"expiry: {'expired lots' if events else 'nothing due'}")
        self.points_model -= sum(due.values())
        assert expire(self.member, self.now, OPERATOR) == [], "running twice expires nothing twice"
        assert all(
            lot.remaining == 0
            for lot in self.member.lots
            if lot.expires_at is not None and lot.expires_at <= self.now
        )

    @rule(
        unit=st.sampled_from(["minutes", "hours", "days", "months", "next_expiry"]),
        count=st.integers(min_value=1, max_value=13),
        then_expire=st.booleans(),
    )
    def advance_clock(self, unit: str, count: int, then_expire: bool) -> None:
        """Time passes (holds lapse, the return window closes, lots fall due); with
        `then_expire` the scheduled expiry run follows, as `ledger serve --expire-daily` does."""
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
            self.run_expiry()

    # -- invariants ------------------------------------------------------------------------------

    @invariant()
    def balance_is_lots_less_debt_less_live_holds(self) -> None:
        member, now = self.member, self.now
        shown = balance(member, now)
        live = self.live_holds()
        assert held(member, now) == shown.held_points == live
        spendable_lots = sum(lot.remaining for lot in member.lots if lot.available_at <= now)
        pending_lots = sum(lot.remaining for lot in member.lots if lot.available_at > now)
        assert shown.points == spendable_lots - member.debt_points - live
        assert shown.pending_points == pending_lots
        assert shown.stored_value_fen == member.stored_value_fen == self.stored_value_model
        live_ids = {k for k, h in member.holds.items() if h.expires_at > now}
        assert live_ids == {
            str(r.id)
            for r in self.redemptions.values()
            if r.status == "held" and r.hold_expires_at is not None and r.hold_expires_at > now
        }

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
        for payment in self.payments.values():
            assert 0 <= payment.followed_fen <= payment.amount_fen

    @invariant()
    def points_are_conserved(self) -> None:
        member = self.member
        total = sum(lot.remaining for lot in member.lots) - member.debt_points
        assert total == self.points_model

    @invariant()
    def sales_never_reverse_more_than_they_earned(self) -> None:
        spend = 0
        for sale in self.sales.values():
            full = True
            for n, line in enumerate(sale.lines, start=1):
                refunded = sale.refunded_fen.get(n, 0)
                assert 0 <= refunded <= line.amount_fen
                full = full and refunded == line.amount_fen
                if sale.valuation.lines[n - 1].counts_for_tier:
                    spend += line.amount_fen - refunded
            assert 0 <= sale.points_reversed <= sale.valuation.points
            if full:
                assert sale.points_reversed == sale.valuation.points
        assert sum(e.amount_fen for e in self.member.spend) == spend

    @invariant()
    def tier_never_falls_without_a_review(self) -> None:
        current = rank(RULES, self.member.tier)
        assert current >= self.tier_rank, "refunds never downgrade"
        self.tier_rank = current

    @invariant()
    def replay_from_scratch_gives_the_same_state(self) -> None:
        expected = builtins(self.member)
        assert [e.originator_version for e in self.member_events] == list(
            range(1, len(self.member_events) + 1)
        )
        assert builtins(replay(evolve_member, self.member_events)) == expected
        assert builtins(replay(evolve_member, [stored(e) for e in self.member_events])) == expected
        assert builtins(Snapshot.take(self.member).restore()) == expected
        evolvers: list[tuple[dict[UUID, Any], Callable[[Any, DomainEvent], Any]]] = [
            (self.sales, evolve_sale),
            (self.redemptions, evolve_redemption),
            (self.payments, evolve_operation),
        ]
        for aggregates, evolve in evolvers:
            for key, state in aggregates.items():
                events = [stored(e) for e in self.events_of[key]]
                assert builtins(replay(evolve, events)) == builtins(state)


MemberLedgerMachine.TestCase.settings = settings(stateful_step_count=30, deadline=None)
TestMemberLedgerMachine = MemberLedgerMachine.TestCase
