"""A member as of a past moment, computed from their events alone (SPEC 3 `.../balance?as_of=`,
`ledger as-of`).

`as_of` is business time: the events whose `occurred_at` is not after it count, whatever order
they were recorded in (an offline store's sales arrive late but belong to their own time).
`recorded_as_of` also drops what the ledger had not yet recorded by then: what the member was
told at that moment. Summing each event's movements (rather than replaying the aggregate) keeps
this exact for any subset of events.

The fold reads `Move`s: each member event reduced to the fields the sums need (D67). The store
decodes a stored event straight into its move (`MOVES`: a sale's accrual without its valuation
and lines, a third of the bytes to build), and `move_of` makes one from a decoded event.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from ledger.domain.identity import CardReplaced, MemberMerged, MovedLot
from ledger.domain.member import (
    BonusGranted,
    MemberEnrolled,
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
    StoredValueDebited,
    TierChanged,
)
from ledger.domain.opening import MemberImported, OpeningLotImported
from ledger.policies.lots import Lot, LotTake


class LotThen(msgspec.Struct, kw_only=True):
    lot_id: int
    reference: str
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None
    points: int
    remaining: int


class MemberAsOf(msgspec.Struct, kw_only=True):
    member_id: str
    as_of: datetime
    recorded_as_of: datetime | None
    points: int  # spendable then: available lots − debt − live holds
    pending_points: int
    held_points: int
    debt_points: int
    stored_value_fen: int
    tier: str | None
    lots: list[LotThen]
    events_counted: int


# -- moves: what the fold reads of each event (same field names as the events) -----------------


class Move(msgspec.Struct, frozen=True, kw_only=True):
    """A member event that moves nothing the fold sums (an erasure, …): it only counts."""

    originator_version: int
    timestamp: datetime
    occurred_at: datetime | None = None


class Enrolled(Move, frozen=True, kw_only=True):
    member_id: str
    tier: str | None


class Imported(Move, frozen=True, kw_only=True):
    member_id: str
    tier: str | None
    stored_value_fen: int


class LotOpened(Move, frozen=True, kw_only=True):
    lot: Lot


class Accrued(Move, frozen=True, kw_only=True):
    debt_paid: int
    lot: Lot | None


class Adjusted(Accrued, frozen=True, kw_only=True):
    takes: list[LotTake]


class Reversed(Move, frozen=True, kw_only=True):
    takes: list[LotTake]
    debt_added: int


class Held(Move, frozen=True, kw_only=True):
    redemption_id: UUID
    points: int
    expires_at: datetime


class Redeemed(Move, frozen=True, kw_only=True):
    redemption_id: UUID
    takes: list[LotTake]
    debt_added: int


class Voided(Move, frozen=True, kw_only=True):
    redemption_id: UUID
    restores: list[LotTake]
    debt_removed: int


class Converted(Move, frozen=True, kw_only=True):
    takes: list[LotTake]


class Expired(Move, frozen=True, kw_only=True):
    lot_id: int
    points: int


class Credited(Move, frozen=True, kw_only=True):
    amount_fen: int


class Debited(Move, frozen=True, kw_only=True):
    amount_fen: int


class TierMoved(Move, frozen=True, kw_only=True):
    to_tier: str


class Replaced(Move, frozen=True, kw_only=True):
    new_member_id: str


class Merged(Move, frozen=True, kw_only=True):
    direction: str
    lots: list[MovedLot]
    debt_points: int
    stored_value_fen: int
    tier: str | None


MOVES: dict[type[MemberEvent], type[Move]] = {
    MemberEnrolled: Enrolled,
    MemberImported: Imported,
    OpeningLotImported: LotOpened,
    PointsAccrued: Accrued,
    BonusGranted: Accrued,
    PointsAdjusted: Adjusted,
    PointsReversed: Reversed,
    PointsHeld: Held,
    PointsRedeemed: Redeemed,
    RedemptionVoided: Voided,
    PointsConverted: Converted,
    PointsExpired: Expired,
    StoredValueCredited: Credited,
    StoredValueDebited: Debited,
    TierChanged: TierMoved,
    CardReplaced: Replaced,
    MemberMerged: Merged,
}


def move_type(event_type: type) -> type[Move] | None:
    """The move a member event of this class decodes as (None: not a member event)."""
    if not issubclass(event_type, MemberEvent):
        return None
    return MOVES.get(event_type, Move)


def move_of(event: MemberEvent | Move) -> Move:
    """The move of a decoded event (the same values: the fields are the event's own)."""
    if isinstance(event, Move):
        return event
    kind = move_type(type(event))
    assert kind is not None  # noqa: S101 - a MemberEvent always has one
    fields: dict[str, Any] = {name: getattr(event, name, None) for name in kind.__struct_fields__}
    return kind(**fields)


# -- the fold -----------------------------------------------------------------------------------


def _counts(move: Move, as_of: datetime, recorded_as_of: datetime | None) -> bool:
    if recorded_as_of is not None and move.timestamp > recorded_as_of:
        return False
    return move.occurred_at is None or move.occurred_at <= as_of


def _then(lot: Lot, remaining: int) -> LotThen:
    return LotThen(
        lot_id=lot.lot_id,
        reference=lot.reference,
        earned_at=lot.earned_at,
        available_at=lot.available_at,
        expires_at=lot.expires_at,
        points=lot.points,
        remaining=remaining,
    )


class Fold:
    """The sums so far (a checkpoint keeps them: `ledger.policies.asofcheckpoint`)."""

    def __init__(self) -> None:
        self.member_id = ""
        self.tier: str | None = None
        self.tier_at: datetime | None = None
        self.lots: dict[int, LotThen] = {}
        self.debt = 0
        self.stored_value = 0
        self.holds: dict[UUID, tuple[int, datetime]] = {}
        self.counted = 0

    def take(self, takes: list[LotTake], sign: int) -> None:
        for take in takes:
            lot = self.lots.get(take.lot_id)
            if lot is not None:
                lot.remaining -= sign * take.points

    def add_lot(self, lot: Lot | None) -> None:
        if lot is not None:
            self.lots[lot.lot_id] = _then(lot, lot.points)

    def apply(self, e: Move) -> None:  # noqa: PLR0912 - one case per move
        self.counted += 1
        if isinstance(e, Enrolled):
            self.member_id = e.member_id
            if self.tier_at is None:
                self.tier = e.tier
        elif isinstance(e, Imported):
            self.member_id, self.stored_value = e.member_id, self.stored_value + e.stored_value_fen
            if self.tier_at is None:
                self.tier = e.tier
        elif isinstance(e, LotOpened):
            self.add_lot(e.lot)
        elif isinstance(e, Accrued):  # an accrual, a bonus, an adjustment
            self.debt -= e.debt_paid
            self.add_lot(e.lot)
            if isinstance(e, Adjusted):
                self.take(e.takes, +1)
        elif isinstance(e, Reversed):
            self.take(e.takes, +1)
            self.debt += e.debt_added
        elif isinstance(e, Held):
            self.holds[e.redemption_id] = (e.points, e.expires_at)
        elif isinstance(e, Redeemed):
            self.take(e.takes, +1)
            self.debt += e.debt_added
            self.holds.pop(e.redemption_id, None)
        elif isinstance(e, Voided):
            self.take(e.restores, -1)
            self.debt -= e.debt_removed
            self.holds.pop(e.redemption_id, None)
        elif isinstance(e, Converted):
            self.take(e.takes, +1)
        elif isinstance(e, Expired):
            self.take([LotTake(e.lot_id, e.points)], +1)
        elif isinstance(e, Credited):
            self.stored_value += e.amount_fen
        elif isinstance(e, Debited):
            self.stored_value -= e.amount_fen
        elif isinstance(e, TierMoved) and e.occurred_at is not None:
            if self.tier_at is None or e.occurred_at >= self.tier_at:
                self.tier, self.tier_at = e.to_tier, e.occurred_at
        elif isinstance(e, Replaced):  # the account reads under the new card
            self.member_id = e.new_member_id
        elif isinstance(e, Merged):
            self.merge(e)

    def merge(self, e: Merged) -> None:
        """A merge's moves: out of the duplicate, or into the account that keeps it."""
        sign = -1 if e.direction == "out" else 1
        self.debt += sign * e.debt_points
        self.stored_value += sign * e.stored_value_fen
        for moved in e.lots:
            if e.direction == "out":
                self.take([LotTake(moved.from_lot_id, moved.lot.remaining)], +1)
            else:
                self.lots[moved.lot.lot_id] = _then(moved.lot, moved.lot.remaining)
        if e.direction == "in" and e.tier is not None and e.tier != self.tier:
            self.tier, self.tier_at = e.tier, e.occurred_at


def fold_moves(
    fold: Fold,
    moves: Iterable[MemberEvent | Move],
    as_of: datetime | None,
    recorded_as_of: datetime | None = None,
) -> Fold:
    """Fold in the moves that count (as_of None: every one), in the order recorded. Every move
    names the card the account reads under then (an enrolment, an import, a replacement),
    counted or not."""
    for event in moves:
        move = move_of(event)
        if isinstance(move, Enrolled | Imported):
            fold.member_id = move.member_id
        if isinstance(move, Replaced):
            fold.member_id = move.new_member_id
        if as_of is None or _counts(move, as_of, recorded_as_of):
            fold.apply(move)
    return fold


def answer(fold: Fold, as_of: datetime, recorded_as_of: datetime | None) -> MemberAsOf:
    """The member then, from the sums of everything that counts."""
    lots = sorted(fold.lots.values(), key=lambda lot: lot.lot_id)
    available = sum(lot.remaining for lot in lots if lot.available_at <= as_of)
    held = sum(points for points, expires_at in fold.holds.values() if expires_at > as_of)
    return MemberAsOf(
        member_id=fold.member_id,
        as_of=as_of,
        recorded_as_of=recorded_as_of,
        points=available - fold.debt - held,
        pending_points=sum(lot.remaining for lot in lots if lot.available_at > as_of),
        held_points=held,
        debt_points=fold.debt,
        stored_value_fen=fold.stored_value,
        tier=fold.tier,
        lots=lots,
        events_counted=fold.counted,
    )


def member_as_of(
    events: Iterable[MemberEvent | Move], as_of: datetime, recorded_as_of: datetime | None = None
) -> MemberAsOf:
    """The member then, from their events (decoded, or as moves) in the order recorded."""
    return answer(fold_moves(Fold(), events, as_of, recorded_as_of), as_of, recorded_as_of)
