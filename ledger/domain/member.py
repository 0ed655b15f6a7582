"""The member aggregate: its events, its state, and `evolve`, the only code that changes state.

State is what the POS needs at the till: lots (with expiry and return-window lock), debt, stored
value, tier (and its changes, by business time), the spend that counts towards it, and the
cards that read it (a replacement card's id holds only a `CardAliased` pointing at it).
"""

from __future__ import annotations

import copy
from datetime import datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

import msgspec

from ledger.domain.errors import InvariantViolation, invariant
from ledger.domain.model import Aggregate, DomainEvent, born
from ledger.domain.personal import Ciphertext
from ledger.policies.lots import Hold, Lot, LotTake, is_due
from ledger.policies.tiers import SpendEntry, TierMark
from ledger.policies.valuation import RefundedLine, Valuation


class MemberEvent(DomainEvent, frozen=True, kw_only=True):
    """Base of every event of the member aggregate."""


class MemberEnrolled(MemberEvent, frozen=True, kw_only=True):
    member_id: str
    store_id: str
    occurred_at: datetime
    tier: str | None
    # Before the identity index (issue 14) the birthday's 'MM-DD' and the ID number's keyed hash
    # were written here; they still decode; new enrolments write None (the index keeps them).
    birthday: str | None
    sealed: Ciphertext | None  # name, phone, ID number, birthday under the member's key
    id_hash: str | None  # ignored by new code
    fingerprint: str
    operator: str


class MemberErased(MemberEvent, frozen=True, kw_only=True):
    """The member's key was destroyed (personal data unreadable); points and card go on."""

    occurred_at: datetime
    reason: str
    operator: str


class PointsAccrued(MemberEvent, frozen=True, kw_only=True):
    store_id: str
    reference: str  # the receipt number
    sale_id: UUID
    occurred_at: datetime
    points: int  # earned by the sale
    debt_paid: int  # of which paid towards a debt left by refunds
    lot: Lot | None  # what remains after the debt, as a new lot
    valuation: Valuation
    operator: str
    cashier: str | None = None  # contract version 2: who rang it up


class PointsReversed(MemberEvent, frozen=True, kw_only=True):
    """A refund's reversal of points a sale earned (SPEC 2.4)."""

    store_id: str
    reference: str  # the refund number
    sale_id: UUID
    receipt_no: str
    sale_occurred_at: datetime
    occurred_at: datetime
    points: int  # reversed by this refund
    takes: list[LotTake]  # the sale's pending points first, then available lots FIFO
    debt_added: int  # what the lots could not cover: the member had spent them
    spend_fen: int  # leaves tier spend as of the sale's occurred_at
    rule_version: int
    operator: str
    cashier: str | None = None  # contract version 2: who rang it up
    # From contract version 2: which lines, at which multipliers, and the cumulative sum.
    lines: list[RefundedLine] = msgspec.field(default_factory=list)
    receipt_multiplier: Decimal | None = None
    worth_points: int | None = None  # what everything refunded so far is worth
    reversed_before: int | None = None  # of which earlier refunds of the sale reversed


class PointsHeld(MemberEvent, frozen=True, kw_only=True):
    """A two-phase redemption reserved points until `expires_at` (they lapse back by themselves)."""

    store_id: str
    reference: str  # the redemption number
    redemption_id: UUID
    occurred_at: datetime
    kind: str
    points: int
    held_at: datetime  # the ledger's time when it granted the hold
    expires_at: datetime  # held_at + hold_minutes
    rule_version: int
    operator: str
    cashier: str | None = None  # contract version 2: who rang it up


class PointsRedeemed(MemberEvent, frozen=True, kw_only=True):
    store_id: str
    reference: str
    redemption_id: UUID
    occurred_at: datetime
    kind: str
    points: int
    value_fen: int
    cost_fen: int  # the chain's cost: what settlement pays back
    takes: list[LotTake]  # FIFO by expiry
    debt_added: int  # only when capturing a hold whose points a refund took meanwhile
    captured_hold: bool
    rule_version: int
    operator: str
    cashier: str | None = None  # contract version 2: who rang it up


class RedemptionVoided(MemberEvent, frozen=True, kw_only=True):
    store_id: str
    reference: str
    redemption_id: UUID
    occurred_at: datetime
    kind: str
    points_restored: int
    restores: list[LotTake]  # back to the very lots, with their own expiry
    debt_removed: int
    released_hold: int  # points of a hold that was never captured
    value_fen: int
    cost_fen: int
    operator: str


class PointsConverted(MemberEvent, frozen=True, kw_only=True):
    """Points turned into stored value (积分转储值); `StoredValueCredited` follows."""

    store_id: str
    reference: str  # the conversion number
    occurred_at: datetime
    points: int
    takes: list[LotTake]
    credited_fen: int
    rule_version: int
    operator: str
    cashier: str | None = None  # contract version 2: who rang it up


class StoredValueCredited(MemberEvent, frozen=True, kw_only=True):
    store_id: str
    reference: str
    occurred_at: datetime
    amount_fen: int
    reason: Literal["conversion", "refund"]
    payment_no: str | None = None
    operator: str
    cashier: str | None = None  # contract version 2: who rang it up


class StoredValueDebited(MemberEvent, frozen=True, kw_only=True):
    store_id: str
    reference: str  # the payment number
    occurred_at: datetime
    amount_fen: int
    operator: str
    cashier: str | None = None  # contract version 2: who rang it up


class PointsExpired(MemberEvent, frozen=True, kw_only=True):
    """One lot's remaining points expired by an expiry run (the only way points expire)."""

    occurred_at: datetime  # the lot's expiry instant
    lot_id: int
    lot_reference: str
    points: int
    run_as_of: datetime
    operator: str


class PointsAdjusted(MemberEvent, frozen=True, kw_only=True):
    """Customer service's credit (a new lot, after any debt) or debit (FIFO) of points."""

    reference: str  # the adjustment number
    occurred_at: datetime
    points: int  # signed
    reason: str
    ticket: str
    debt_paid: int
    lot: Lot | None
    takes: list[LotTake]
    operator: str


class BonusGranted(MemberEvent, frozen=True, kw_only=True):
    """A bonus of the rule set (SPEC 2.6): a lot like an accrual's, after any debt; its cost
    falls on the granting store or on headquarters (`cost_to`)."""

    store_id: str
    reference: str  # the bonus number
    occurred_at: datetime
    code: str
    points: int
    cost_to: Literal["store", "hq"]
    referred_member_id: str | None
    debt_paid: int
    lot: Lot | None
    rule_version: int
    operator: str


class CardAliased(DomainEvent, frozen=True, kw_only=True):
    """A replacement card's first event (SPEC 2.8): it reads the account (no history of its own)."""

    member_id: str  # the new card
    account_id: UUID
    store_id: str
    occurred_at: datetime


class AccountEvent(MemberEvent, frozen=True, kw_only=True):
    """Base of the events that move an account between cards (`ledger.domain.identity`)."""

    def applied_to(self, state: Member | None) -> Member:
        raise NotImplementedError


class TierChanged(MemberEvent, frozen=True, kw_only=True):
    occurred_at: datetime
    from_tier: str | None
    to_tier: str
    direction: Literal["upgrade", "downgrade"]
    tier_spend_fen: int
    rule_version: int
    reason: str
    store_id: str | None = None
    reference: str | None = None
    operator: str | None = None
    window_start: datetime | None = None  # a review drops spend from before this


class OpeningEvent(MemberEvent, frozen=True, kw_only=True):
    """Base of the events of a member brought from a legacy system (`ledger.domain.opening`),
    each saying how it changes the member."""

    def applied_to(self, state: Member | None) -> Member:
        raise NotImplementedError


class Member(Aggregate, kw_only=True):
    member_id: str
    store_id: str
    enrolled_at: datetime
    tier: str | None
    birthday: str | None  # from an enrolment recorded before the identity index only
    personal: bool = True  # False: enrolled with no personal data (no index row, no birthday)
    lots: list[Lot] = msgspec.field(default_factory=list)
    debt_points: int = 0
    stored_value_fen: int = 0
    spend: list[SpendEntry] = msgspec.field(default_factory=list)
    holds: dict[str, Hold] = msgspec.field(default_factory=dict)  # by redemption id
    erased: bool = False  # personal data crypto-shredded
    tier_marks: list[TierMark] = msgspec.field(default_factory=list)  # tier changes, as recorded
    replaced_cards: dict[str, str] = msgspec.field(default_factory=dict)  # old card -> new
    alias_of: UUID | None = None  # a replacement card's id: the account it reads
    merged_into: str | None = None  # a duplicate merged into this card (SPEC 2.8)

    def lot(self, lot_id: int) -> Lot:
        for lot in self.lots:
            if lot.lot_id == lot_id:
                return lot
        raise InvariantViolation(f"member {self.member_id} has no lot {lot_id}")


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    points: int  # spendable now: available lots − debt − holds
    pending_points: int  # inside the return window
    stored_value_fen: int
    held_points: int = 0  # reserved by open two-phase redemptions


def evolve(state: Member | None, event: DomainEvent) -> Member:
    if isinstance(event, MemberEnrolled | CardAliased):  # a card's first event
        invariant(state is None, "a member is enrolled (or a card aliased) once")
        return Member(
            **born(event),
            member_id=event.member_id,
            store_id=event.store_id,
            enrolled_at=event.occurred_at,
            tier=getattr(event, "tier", None),
            birthday=getattr(event, "birthday", None),
            alias_of=getattr(event, "account_id", None),
            personal=not isinstance(event, MemberEnrolled) or bool(event.sealed or event.birthday),
        )
    if isinstance(event, OpeningEvent | AccountEvent):
        return event.applied_to(state)
    if state is None:
        raise InvariantViolation(f"{type(event).__name__} before MemberEnrolled")
    _apply(state, event)
    invariant(state.debt_points >= 0, "debt is never negative")
    return state


def _take(state: Member, takes: list[LotTake], sign: int) -> None:
    for take in takes:
        lot = state.lot(take.lot_id)
        lot.remaining -= sign * take.points
        invariant(0 <= lot.remaining <= lot.points, f"lot {lot.lot_id} stays within 0..points")


def _apply(state: Member, event: DomainEvent) -> None:  # noqa: PLR0912 - one case per event
    if isinstance(event, PointsAccrued | BonusGranted):
        state.debt_points -= event.debt_paid
        if event.lot is not None:
            state.lots.append(msgspec.structs.replace(event.lot))
        if isinstance(event, PointsAccrued) and event.valuation.spend_fen:
            state.spend.append(SpendEntry(event.occurred_at, event.valuation.spend_fen))
    elif isinstance(event, PointsReversed):
        _take(state, event.takes, +1)
        state.debt_points += event.debt_added
        if event.spend_fen:
            state.spend.append(SpendEntry(event.sale_occurred_at, -event.spend_fen))
    elif isinstance(event, PointsHeld):
        state.holds = {k: h for k, h in state.holds.items() if h.expires_at > event.held_at}
        state.holds[str(event.redemption_id)] = Hold(
            points=event.points, expires_at=event.expires_at
        )
    elif isinstance(event, PointsRedeemed):
        _take(state, event.takes, +1)
        state.debt_points += event.debt_added
        state.holds.pop(str(event.redemption_id), None)
    elif isinstance(event, RedemptionVoided):
        _take(state, event.restores, -1)
        state.debt_points -= event.debt_removed
        state.holds.pop(str(event.redemption_id), None)
    elif isinstance(event, PointsConverted):
        _take(state, event.takes, +1)
    elif isinstance(event, StoredValueCredited):
        state.stored_value_fen += event.amount_fen
    elif isinstance(event, StoredValueDebited):
        state.stored_value_fen -= event.amount_fen
        invariant(state.stored_value_fen >= 0, "stored value never goes below zero")
    elif isinstance(event, PointsExpired):
        _take(state, [LotTake(event.lot_id, event.points)], +1)
    elif isinstance(event, PointsAdjusted):
        _take(state, event.takes, +1)
        state.debt_points -= event.debt_paid
        if event.lot is not None:
            state.lots.append(msgspec.structs.replace(event.lot))
    elif isinstance(event, MemberErased):
        state.erased = True
    elif isinstance(event, TierChanged):
        state.tier = event.to_tier
        state.tier_marks.append(TierMark(event.occurred_at, event.from_tier, event.to_tier))
        if event.window_start is not None:  # a review: spend before its window no longer counts
            start = event.window_start
            state.spend = [e for e in state.spend if e.occurred_at >= start]
    else:
        raise TypeError(f"Member cannot apply {type(event).__name__}")


def held(member: Member, at: datetime) -> int:
    """Points reserved by holds that have not lapsed at `at`."""
    return sum(h.points for h in member.holds.values() if h.expires_at > at)


def available(member: Member, at: datetime, now: datetime) -> int:
    """What a redemption, conversion or debit at business time `at` may spend: lots out of
    their return window and not due at `at` (SPEC 2.3: a due lot is gone for a write), less
    debt, less holds still live at the ledger's `now`."""
    lots = sum(
        lot.remaining for lot in member.lots if lot.available_at <= at and not is_due(lot, at)
    )
    return lots - member.debt_points - held(member, now)


def balance(member: Member, now: datetime) -> Balance:
    """Spendable points (lots past their return window, less debt), pending points, stored
    value. Due lots not yet expired by a run still count: points leave only through
    PointsExpired events, so every balance shown is explained by events (SPEC 2.5)."""
    pending = sum(lot.remaining for lot in member.lots if lot.available_at > now)
    shown = sum(lot.remaining for lot in member.lots if lot.available_at <= now)
    return Balance(
        points=shown - member.debt_points - held(member, now),
        pending_points=pending,
        stored_value_fen=member.stored_value_fen,
        held_points=held(member, now),
    )


def after(member: Member, events: list[DomainEvent]) -> Member:
    """The member as it will be once `events` are saved (a copy: the cached state is untouched)."""
    state = copy.deepcopy(member)
    for event in events:
        if isinstance(event, MemberEvent):
            state = evolve(state, event)
            state.version = event.originator_version
    return state
