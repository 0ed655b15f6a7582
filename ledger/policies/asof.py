"""A member as of a past moment, computed from their events alone (SPEC 3 `.../balance?as_of=`,
`ledger as-of`).

`as_of` is business time: the events whose `occurred_at` is not after it count, whatever order
they were recorded in (an offline store's sales arrive late but belong to their own time).
`recorded_as_of` also drops what the ledger had not yet recorded by then: what the member was
told at that moment. Summing each event's movements (rather than replaying the aggregate) keeps
this exact for any subset of events.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from ledger.domain.identity import CardReplaced, MemberMerged
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
from ledger.policies.lots import LotTake


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


def _counts(event: MemberEvent, as_of: datetime, recorded_as_of: datetime | None) -> bool:
    if recorded_as_of is not None and event.timestamp > recorded_as_of:
        return False
    occurred_at: datetime | None = getattr(event, "occurred_at", None)
    return occurred_at is None or occurred_at <= as_of


class _Fold:
    def __init__(self) -> None:
        self.member_id = ""
        self.tier: str | None = None
        self.tier_at: datetime | None = None
        self.lots: dict[int, LotThen] = {}
        self.debt = 0
        self.stored_value = 0
        self.holds: dict[str, tuple[int, datetime]] = {}
        self.counted = 0

    def take(self, takes: list[LotTake], sign: int) -> None:
        for take in takes:
            lot = self.lots.get(take.lot_id)
            if lot is not None:
                lot.remaining -= sign * take.points

    def add_lot(
        self, event: PointsAccrued | PointsAdjusted | BonusGranted | OpeningLotImported
    ) -> None:
        lot = event.lot
        if lot is not None:
            self.lots[lot.lot_id] = LotThen(
                lot_id=lot.lot_id,
                reference=lot.reference,
                earned_at=lot.earned_at,
                available_at=lot.available_at,
                expires_at=lot.expires_at,
                points=lot.points,
                remaining=lot.points,
            )

    def apply(self, e: MemberEvent) -> None:  # noqa: PLR0912 - one case per event
        self.counted += 1
        if isinstance(e, MemberEnrolled):
            self.member_id = e.member_id
            if self.tier_at is None:
                self.tier = e.tier
        elif isinstance(e, MemberImported):
            self.member_id, self.stored_value = e.member_id, self.stored_value + e.stored_value_fen
            if self.tier_at is None:
                self.tier = e.tier
        elif isinstance(e, OpeningLotImported):
            self.add_lot(e)
        elif isinstance(e, PointsAccrued | BonusGranted):
            self.debt -= e.debt_paid
            self.add_lot(e)
        elif isinstance(e, PointsAdjusted):
            self.debt -= e.debt_paid
            self.add_lot(e)
            self.take(e.takes, +1)
        elif isinstance(e, PointsReversed):
            self.take(e.takes, +1)
            self.debt += e.debt_added
        elif isinstance(e, PointsHeld):
            self.holds[str(e.redemption_id)] = (e.points, e.expires_at)
        elif isinstance(e, PointsRedeemed):
            self.take(e.takes, +1)
            self.debt += e.debt_added
            self.holds.pop(str(e.redemption_id), None)
        elif isinstance(e, RedemptionVoided):
            self.take(e.restores, -1)
            self.debt -= e.debt_removed
            self.holds.pop(str(e.redemption_id), None)
        elif isinstance(e, PointsConverted):
            self.take(e.takes, +1)
        elif isinstance(e, PointsExpired):
            self.take([LotTake(e.lot_id, e.points)], +1)
        elif isinstance(e, StoredValueCredited):
            self.stored_value += e.amount_fen
        elif isinstance(e, StoredValueDebited):
            self.stored_value -= e.amount_fen
        elif isinstance(e, TierChanged) and (self.tier_at is None or e.occurred_at >= self.tier_at):
            self.tier, self.tier_at = e.to_tier, e.occurred_at
        elif isinstance(e, CardReplaced | MemberMerged):
            self.account(e)

    def account(self, e: CardReplaced | MemberMerged) -> None:
        """A card replaced (the account reads under the new one) or a merge's moves."""
        if isinstance(e, CardReplaced):
            self.member_id = e.new_member_id
            return
        sign = -1 if e.direction == "out" else 1
        self.debt += sign * e.debt_points
        self.stored_value += sign * e.stored_value_fen
        for moved in e.lots:
            if e.direction == "out":
                self.take([LotTake(moved.from_lot_id, moved.lot.remaining)], +1)
            else:
                lot = moved.lot
                self.lots[lot.lot_id] = LotThen(
                    lot_id=lot.lot_id,
                    reference=lot.reference,
                    earned_at=lot.earned_at,
                    available_at=lot.available_at,
                    expires_at=lot.expires_at,
                    points=lot.points,
                    remaining=lot.remaining,
                )
        if e.direction == "in" and e.tier is not None and e.tier != self.tier:
            self.tier, self.tier_at = e.tier, e.occurred_at


def member_as_of(
    events: Iterable[MemberEvent], as_of: datetime, recorded_as_of: datetime | None = None
) -> MemberAsOf:
    fold = _Fold()
    for event in events:
        if isinstance(event, MemberEnrolled | MemberImported):
            fold.member_id = event.member_id
        if isinstance(event, CardReplaced):
            fold.member_id = event.new_member_id
        if _counts(event, as_of, recorded_as_of):
            fold.apply(event)
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
