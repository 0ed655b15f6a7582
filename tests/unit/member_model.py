"""The model side of the member state machine (`test_member_state_machine.py`).

`LedgerMachine` opens a real `ledger.application.Ledger` over a private in-memory SQLite store
for each example, publishes the rule set and registers the stores; its rules (in the test
module) post every request through the ledger's services with the machine's own clock as `now`.
Here are the plumbing the rules share (carry out a request and read back, from the log, exactly
the events it stored; check that a refused request raises and stores nothing; replay a request),
the test's own bookkeeping of what it asked and was told (points, stored value, holds, payments)
and the invariants checked after every step against the state the services read back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar, cast
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import event as observe
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant

from ledger.application import Ledger
from ledger.domain import operation, receipts, redemption
from ledger.domain.commands import RegisterStore, SaleLine
from ledger.domain.errors import LedgerError
from ledger.domain.member import (
    Balance,
    Member,
    MemberEvent,
    PointsAccrued,
    PointsAdjusted,
    PointsConverted,
    PointsExpired,
    PointsRedeemed,
    PointsReversed,
    RedemptionVoided,
    balance,
    held,
)
from ledger.domain.member import evolve as evolve_member
from ledger.domain.model import Aggregate, DomainEvent, Evolve, Snapshot, projector
from ledger.domain.redemption import RedemptionReceipt, VoidReceipt
from ledger.domain.sale import Sale
from ledger.policies.lots import LotTake
from ledger.policies.tiers import rank
from ledger.settings import Settings
from tests.rulesets import SPEC_EXAMPLE, doc, ruleset

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
MASTER_KEY = bytes.fromhex("11" * 32)

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
LADDER = [step.points for step in RULES.redemption.voucher_ladder] if RULES.redemption else []
assert RULES.expiry is not None and RULES.accrual.lock_days > 0 and LADDER

R = TypeVar("R")
Send = Callable[..., tuple[R, bool]]  # a service method, called as send(request, now=...)

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


class Made(msgspec.Struct, kw_only=True):
    """A redemption as the test knows it: what it asked and what it was told."""

    store: str
    number: str
    points: int
    status: str  # held, redeemed or voided
    hold_expires_at: datetime | None
    receipt: RedemptionReceipt  # the latest answer: the capture's once captured
    debt_added: int = 0  # by its capture, when a refund had taken the held points
    void_receipt: VoidReceipt | None = None


class Paid(msgspec.Struct, kw_only=True):
    """A stored-value payment as the test knows it."""

    store: str
    number: str
    amount_fen: int
    refunded_fen: int = 0


def builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


def types(events: Sequence[DomainEvent]) -> list[type]:
    return [type(e) for e in events]


def by(method: Send[R], *args: object) -> Send[R]:
    """A service method with its leading arguments and the operator bound: send(request, now=)."""
    return partial(method, *args, operator=OPERATOR)


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


def points_told(events: Sequence[DomainEvent]) -> int:
    """Lots less debt, as the member's events tell it: earned, reversed, spent (redeemed or
    converted), restored by voids (a released hold restores nothing), expired and adjusted."""
    total = 0
    for e in events:
        if isinstance(e, PointsAccrued | PointsAdjusted):
            total += e.points
        elif isinstance(e, PointsReversed | PointsRedeemed | PointsConverted | PointsExpired):
            total -= e.points
        elif isinstance(e, RedemptionVoided):
            total += e.points_restored - e.released_hold
    return total


def replay(evolve: Evolve[Any], events: list[DomainEvent]) -> Any:
    state = projector(evolve)(None, events)
    assert state is not None
    return state


class LedgerMachine(RuleBasedStateMachine):
    """One member of a real ledger (private in-memory SQLite), driven through its services."""

    def __init__(self) -> None:
        super().__init__()
        url = f"sqlite:///file:sm{uuid4().hex}?mode=memory&cache=shared"
        self.ledger = Ledger(Settings(database_url=url, master_key=MASTER_KEY))
        self.ledger.rules.publish(RULES, OPERATOR)
        for store in STORES:
            self.ledger.access.configure_store(
                store, RegisterStore(name=store, kind="direct"), OPERATOR
            )
        self.now = START
        self.numbers = 0
        self.sent: list[tuple[Send[Any], Any, Any]] = []  # accepted requests, for replays
        self.sales: dict[UUID, tuple[str, str]] = {}  # store and receipt of the member's sales
        self.others: dict[UUID, tuple[str, str]] = {}  # sales without a member
        self.redemptions: dict[UUID, Made] = {}
        self.payments: dict[UUID, Paid] = {}
        # The test's own bookkeeping, kept from what the rules asked and were told.
        self.points_model = 0  # Σ lot remaining − debt, by conservation
        self.stored_value_model = 0
        self.tier_rank = -1

    def teardown(self) -> None:
        self.ledger.close()

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def member(self) -> Member:
        """The member as the core reads it (its cached state, fast-forwarded step by step)."""
        return self.ledger.core.member(CARD)

    def sale(self, sale_id: UUID) -> Sale:
        found = self.ledger.sales.record(*self.sales[sale_id])
        assert isinstance(found, Sale)
        return found

    def number(self, prefix: str) -> str:
        self.numbers += 1
        return f"{prefix}{self.numbers}"

    def since(self, start: int) -> list[DomainEvent]:
        """Every event stored after log position `start`, decoded from the store."""
        core = self.ledger.core
        found = core.recorder.select_notifications(start, 10_000, inclusive_of_start=False)
        return [cast(DomainEvent, core.mapper.to_domain_event(n)) for n in found]

    def stored(self, key: UUID) -> list[DomainEvent]:
        """An aggregate's events, as the store gives them back."""
        return cast(list[DomainEvent], list(self.ledger.core.events.get(key)))

    def write(
        self, send: Send[R], request: object, *, replay: bool = True
    ) -> tuple[R, list[DomainEvent]]:
        """Carry out a new request through its service at the machine's `now`; returns the
        answer and the events it stored, read back from the log, in the order stored."""
        start = self.ledger.core.log_position()
        answer, created = send(request, now=self.now)
        assert created, "a new request is carried out, not replayed"
        if replay:
            self.sent.append((send, request, answer))
        return answer, self.since(start)

    def replayed(self, send: Send[R], request: object, answer: R) -> None:
        """The request again: the very answer first given, and nothing stored."""
        observe(f"replayed: {type(answer).__name__}")
        start = self.ledger.core.log_position()
        again, created = send(request, now=self.now)
        assert not created and again == answer, "a replay answers what was first answered"
        assert self.ledger.core.log_position() == start, "a replay stores nothing"

    def refused(self, error: type[LedgerError], send: Send[Any], request: object) -> None:
        """The request raises `error` and nothing changes: no event stored, the member as was."""
        observe(f"refused: {error.__name__}")
        start, before = self.ledger.core.log_position(), builtins(self.member)
        with pytest.raises(error):
            send(request, now=self.now)
        assert self.ledger.core.log_position() == start, "a refused request stores nothing"
        assert builtins(self.member) == before

    def live_holds(self) -> int:
        """Points reserved by the test's own record of holds not captured, voided or lapsed."""
        return sum(r.points for r in self.redemptions.values() if self.live(r))

    def live(self, made: Made) -> bool:
        expires = made.hold_expires_at
        return made.status == "held" and expires is not None and expires > self.now

    def spendable(self, at: datetime) -> int:
        """What the SPEC lets a redemption, conversion or debit at `at` spend right now."""
        return self.lots_available(at) - self.member.debt_points - self.live_holds()

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

    # -- invariants ------------------------------------------------------------------------------

    @invariant()
    def balance_is_lots_less_debt_less_live_holds(self) -> None:
        member, now = self.member, self.now
        shown = balance(member, now)
        view = self.ledger.members.view(CARD, now)
        live = self.live_holds()
        assert held(member, now) == shown.held_points == live
        spendable_lots = sum(lot.remaining for lot in member.lots if lot.available_at <= now)
        pending_lots = sum(lot.remaining for lot in member.lots if lot.available_at > now)
        assert shown.points == view.points == spendable_lots - member.debt_points - live
        assert shown.pending_points == view.pending_points == pending_lots
        assert shown.stored_value_fen == view.stored_value_fen == self.stored_value_model
        live_ids = {k for k, h in member.holds.items() if h.expires_at > now}
        assert live_ids == {str(k) for k, r in self.redemptions.items() if self.live(r)}

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
    def points_are_conserved(self) -> None:
        member = self.member
        total = sum(lot.remaining for lot in member.lots) - member.debt_points
        assert total == self.points_model
        assert total == points_told(self.ledger.members.events(CARD)), "as the events say"

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
        """Every stored event replayed from scratch gives the state the services read (the
        cache's, built step by step); the member's history service tells the same events."""
        core, member = self.ledger.core, self.member
        events = self.stored(member.id)
        assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
        assert all(isinstance(e, MemberEvent) for e in events)
        assert self.ledger.members.events(CARD) == events
        expected = builtins(member)
        assert builtins(replay(evolve_member, events)) == expected
        assert builtins(Snapshot.take(member).restore()) == expected
        records: list[tuple[UUID, Evolve[Any], Aggregate]] = []
        for key, (store, number) in (self.sales | self.others).items():
            records.append((key, receipts.evolve, self.ledger.sales.record(store, number)))
        for key, made in self.redemptions.items():
            found = self.ledger.redemptions.find(made.store, made.number)
            assert (found.status, found.receipt) == (made.status, made.receipt)
            assert (found.void_receipt, found.debt_added) == (made.void_receipt, made.debt_added)
            records.append((key, redemption.evolve, found))
        for key in self.payments:
            paid = core.get(key, operation.evolve)
            assert paid is not None
            records.append((key, operation.evolve, paid))
        for key, evolve, state in records:
            stored = self.stored(key)
            assert [e.originator_version for e in stored] == list(range(1, len(stored) + 1))
            assert state.id == key and builtins(replay(evolve, stored)) == builtins(state)
