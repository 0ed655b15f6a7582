"""The member aggregate: its events, its state, and `evolve`, the only code that changes state.

State is what the POS needs at the till: lots (with expiry and return-window lock), debt from
refunds of spent points, stored value, tier and the spend that counts towards it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from ledger.errors import InvariantViolation, invariant
from ledger.lots import Lot
from ledger.model import Aggregate, DomainEvent
from ledger.tiers import SpendEntry
from ledger.valuation import Valuation


class PersonalData(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a member told us about themselves. Never logged; the ID number is never kept."""

    name: str | None = None
    phone: str | None = None
    birthday: str | None = None  # ISO date


class MemberEvent(DomainEvent, frozen=True, kw_only=True):
    """Base of every event of the member aggregate."""


class MemberEnrolled(MemberEvent, frozen=True, kw_only=True):
    member_id: str
    store_id: str
    occurred_at: datetime
    tier: str | None
    birthday: str | None  # 'MM-DD', what birthday multipliers need
    personal: PersonalData
    id_hash: str | None
    fingerprint: str
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


class Member(Aggregate, kw_only=True):
    member_id: str
    store_id: str
    enrolled_at: datetime
    tier: str | None
    birthday: str | None
    lots: list[Lot] = msgspec.field(default_factory=list)
    debt_points: int = 0
    stored_value_fen: int = 0
    spend: list[SpendEntry] = msgspec.field(default_factory=list)


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    points: int
    pending_points: int
    stored_value_fen: int


def evolve(state: Member | None, event: DomainEvent) -> Member:
    if isinstance(event, MemberEnrolled):
        invariant(state is None, "a member is enrolled once")
        return Member(
            id=event.originator_id,
            version=event.originator_version,
            created_on=event.timestamp,
            modified_on=event.timestamp,
            member_id=event.member_id,
            store_id=event.store_id,
            enrolled_at=event.occurred_at,
            tier=event.tier,
            birthday=event.birthday,
        )
    if state is None:
        raise InvariantViolation(f"{type(event).__name__} before MemberEnrolled")
    if isinstance(event, PointsAccrued):
        state.debt_points -= event.debt_paid
        if event.lot is not None:
            state.lots.append(msgspec.structs.replace(event.lot))
        if event.valuation.spend_fen:
            state.spend.append(SpendEntry(event.occurred_at, event.valuation.spend_fen))
    elif isinstance(event, TierChanged):
        state.tier = event.to_tier
    else:
        raise TypeError(f"Member cannot apply {type(event).__name__}")
    invariant(state.debt_points >= 0, "debt is never negative")
    return state


def balance(member: Member, now: datetime) -> Balance:
    """Spendable points (lots past their return window, minus debt), pending points, stored value.

    Expired-but-not-yet-run lots still count: points leave only through PointsExpired events.
    """
    available = sum(lot.remaining for lot in member.lots if lot.available_at <= now)
    pending = sum(lot.remaining for lot in member.lots if lot.available_at > now)
    return Balance(
        points=available - member.debt_points,
        pending_points=pending,
        stored_value_fen=member.stored_value_fen,
    )
