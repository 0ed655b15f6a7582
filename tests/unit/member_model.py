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
from decimal import Decimal
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
    BonusGranted,
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
from ledger.policies.ruleset import Settlement
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
# clearance expiry), plus a return window, a conversion rate, a hold time, a catalogue (one gift
# only at S1) and bonuses of its own. A second version, in force a month after the start,
# changes only the cost per point, so that the liability values lots of two versions.
CATALOGUE = [
    {"sku": "G-1", "kind": "gift", "points": 300, "cost_fen": 1200},
    {"sku": "G-S1", "kind": "gift", "points": 500, "cost_fen": 2000, "stores": ["S1"]},
    {"sku": "E-1", "kind": "exchange", "points": 200, "cash_price_fen": 990, "cost_fen": 800},
]
BONUSES = [
    {"code": "registration", "points": 100, "cost_to": "hq"},
    {"code": "online", "points": 50, "cost_to": "store"},
]
RULES = ruleset(
    doc(
        SPEC_EXAMPLE,
        expiry={"rolling_months": ROLLING_MONTHS, "clearance_month": 3, "clearance_day": 31},
        accrual=SPEC_EXAMPLE["accrual"] | {"lock_days": LOCK_DAYS},
        redemption=SPEC_EXAMPLE["redemption"]
        | {
            "stored_value_points_per_yuan": SV_POINTS_PER_YUAN,
            "hold_minutes": HOLD_MINUTES,
            "catalogue": CATALOGUE,
        },
        bonuses=BONUSES,
    )
)
SECOND = msgspec.structs.replace(
    RULES,
    effective_from=START + timedelta(days=30),
    settlement=Settlement(cost_per_point_fen=Decimal("2.5")),
)
LADDER = [step.points for step in RULES.redemption.voucher_ladder] if RULES.redemption else []
assert RULES.expiry is not None and RULES.accrual.lock_days > 0 and LADDER

R = TypeVar("R")
Send = Callable[..., tuple[R, bool]]  # a service method, called as send(request, now=...)


def _line(insured_percent: int, **fields: Any) -> SaleLine:
    """A line, part of it (`insured_percent`) paid by medical insurance."""
    return SaleLine(insured_fen=fields["amount_fen"] * insured_percent // 100, **fields)


sale_lines = st.lists(
    st.builds(
        _line,
        sku=st.sampled_from(["A", "B", "BRAND-X"]),
        amount_fen=st.integers(min_value=0, max_value=200_000),
        category=st.sampled_from(["", "otc", "tcm", "supplement"]),
        no_points=st.sampled_from([False, False, False, True]),
        no_cumulative_spend=st.sampled_from([False, False, True]),
        insured_percent=st.sampled_from([0, 0, 0, 0, 33, 100]),
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


def is_due(expires_at: datetime | None, at: datetime) -> bool:
    return expires_at is not None and expires_at <= at


def assert_fifo(
    before: Member,
    takes: Sequence[LotTake],
    at: datetime,
    *,
    pending: bool = False,
    apart: UUID | None = None,
) -> None:
    """Takes come from lots spendable at `at` (with `pending`, a refund's: any lot earned by
    then), each lot once, none due at `at` (SPEC 2.3), earliest expiry first: no such lot that
    expires strictly earlier than a lot taken from keeps points after the takes. The lots of the
    sale `apart` (a refund's own, taken before) are left out."""

    def candidate(lot: Any) -> bool:
        ready = lot.earned_at <= at if pending else lot.available_at <= at
        return ready and not is_due(lot.expires_at, at) and (apart is None or lot.sale_id != apart)

    taken: dict[int, int] = {}
    for take in takes:
        assert take.lot_id not in taken, f"lot {take.lot_id} taken twice in one event"
        assert take.points > 0
        taken[take.lot_id] = take.points
    lots = {lot.lot_id: lot for lot in before.lots}
    for lot_id, points in taken.items():
        lot = lots[lot_id]
        assert candidate(lot), f"lot {lot_id} was pending or due at {at}"
        assert points <= lot.remaining
    for lot_id in taken:
        cutoff = expiry_key(lots[lot_id].expires_at)
        for other in before.lots:
            left = other.remaining - taken.get(other.lot_id, 0)
            if left > 0 and candidate(other):
                assert expiry_key(other.expires_at) >= cutoff, (
                    f"took lot {lot_id} (expires {cutoff}) before lot {other.lot_id} "
                    f"(expires {other.expires_at})"
                )


def points_told(events: Sequence[DomainEvent]) -> int:
    """Lots less debt, as the member's events tell it: earned (by sales and bonuses), reversed,
    spent (redeemed or converted), restored by voids (a released hold restores nothing),
    expired and adjusted."""
    total = 0
    for e in events:
        if isinstance(e, PointsAccrued | PointsAdjusted | BonusGranted):
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
        self.ledger.rules.publish(SECOND, OPERATOR)
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
        """Points in lots past their return window and not due at `at` (a due lot is gone)."""
        return sum(
            lot.remaining
            for lot in self.member.lots
            if lot.available_at <= at and not is_due(lot.expires_at, at)
        )

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
    def points_are_conserved(self) -> None:
        member = self.member
        total = sum(lot.remaining for lot in member.lots) - member.debt_points
        assert total == self.points_model
        assert total == points_told(self.ledger.members.events(CARD)), "as the events say"

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
