"""The points liability (SPEC 2.7), lot by lot: what each member event moves, and the value of
what is outstanding at a business time. Pure; the history view stores the moves.

Every member event that moves points moves them in lots (a new lot, takes from lots, points
restored to lots) and in the member's debt, and stored-value events move stored value; the
history view keeps each move with the event's business time (`occurred_at`), so the liability
as of T sums the moves up to T. Each outstanding lot is valued at the `cost_per_point_fen` of
the rule version it was earned under (an accrual's or bonus's own version; for a credit, the
version in force when it was earned, or the first version before any); a member's debt is taken
from their lots earliest expiry first, as a spend would, so a member in debt counts 0; the total
is rounded half-up once. Lots due but not yet expired by a run still count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import msgspec

from ledger.domain.identity import MemberMerged
from ledger.domain.member import (
    BonusGranted,
    MemberEvent,
    PointsAccrued,
    PointsAdjusted,
    PointsConverted,
    PointsExpired,
    PointsRedeemed,
    PointsReversed,
    RedemptionVoided,
    StoredValueCredited,
    StoredValueDebited,
)
from ledger.domain.opening import MemberImported, OpeningLotImported
from ledger.policies.lots import Lot, LotTake

DEBT = 0  # the pseudo-lot of a member's debt: its sum is minus the points owed
STORED_VALUE = -1  # the pseudo-lot of a member's stored value, in fen
ZERO = Decimal(0)


class NewLot(msgspec.Struct, frozen=True, kw_only=True):
    """A lot as the liability (and the history's wording) needs it."""

    lot_id: int
    kind: str  # "receipt", "adjustment", "bonus": what its reference numbers
    reference: str
    earned_at: datetime
    expires_at: datetime | None
    rule_version: int | None  # None: the version in force when it was earned


class VersionValue(msgspec.Struct, frozen=True, kw_only=True):
    rule_version: int | None
    cost_per_point_fen: str | None
    points: int
    value_fen: int  # rounded half-up (the total is rounded once, from the exact sum)


class LiabilityFigures(msgspec.Struct, frozen=True, kw_only=True):
    points: int  # Σ over members of lots less debt, those above zero
    members: int  # members with points outstanding
    value_fen: int
    stored_value_fen: int
    by_version: list[VersionValue]


def fen(value: Decimal) -> int:
    """Half-up to the fen (half away from zero for a negative amount)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _lot(lot: Lot, kind: str, rule_version: int | None) -> NewLot:
    return NewLot(
        lot_id=lot.lot_id,
        kind=kind,
        reference=lot.reference,
        earned_at=lot.earned_at,
        expires_at=lot.expires_at,
        rule_version=rule_version,
    )


def new_lot(e: MemberEvent) -> NewLot | None:
    """The lot an event creates, if any."""
    if isinstance(e, PointsAccrued) and e.lot is not None:
        return _lot(e.lot, "receipt", e.valuation.rule_version)
    if isinstance(e, BonusGranted) and e.lot is not None:
        return _lot(e.lot, "bonus", e.rule_version)
    if isinstance(e, PointsAdjusted) and e.lot is not None:
        return _lot(e.lot, "adjustment", None)
    if isinstance(e, OpeningLotImported):  # valued by the version in force when earned
        return _lot(e.lot, "import", None)
    return None


def _takes(takes: Iterable[LotTake], sign: int) -> list[tuple[int, int]]:
    return [(t.lot_id, sign * t.points) for t in takes]


def _stored_fen(e: MemberImported | StoredValueCredited | StoredValueDebited) -> int:
    if isinstance(e, MemberImported):
        return e.stored_value_fen
    return e.amount_fen if isinstance(e, StoredValueCredited) else -e.amount_fen


def _merged(e: MemberMerged) -> list[tuple[int, int]]:
    """A merge's moves: out of the duplicate's lots, into this account's new ones."""
    sign = -1 if e.direction == "out" else 1
    return [
        *((m.lot.lot_id, sign * m.lot.remaining) for m in e.lots),
        (DEBT, -sign * e.debt_points),
        (STORED_VALUE, sign * e.stored_value_fen),
    ]


def moves(e: MemberEvent) -> dict[int, int]:
    """What the event moves: lot id → points (DEBT: debt paid +, owed −; STORED_VALUE: fen)."""
    found: list[tuple[int, int]] = []
    if isinstance(e, PointsAccrued | BonusGranted | PointsAdjusted):
        if e.lot is not None:
            found.append((e.lot.lot_id, e.lot.points))
        found.append((DEBT, e.debt_paid))
        if isinstance(e, PointsAdjusted):
            found += _takes(e.takes, -1)
    elif isinstance(e, PointsReversed | PointsRedeemed):
        found += [*_takes(e.takes, -1), (DEBT, -e.debt_added)]
    elif isinstance(e, RedemptionVoided):
        found += [*_takes(e.restores, +1), (DEBT, e.debt_removed)]
    elif isinstance(e, PointsConverted):
        found += _takes(e.takes, -1)
    elif isinstance(e, PointsExpired):
        found.append((e.lot_id, -e.points))
    elif isinstance(e, OpeningLotImported):
        found.append((e.lot.lot_id, e.lot.points))
    elif isinstance(e, MemberImported | StoredValueCredited | StoredValueDebited):
        found.append((STORED_VALUE, _stored_fen(e)))
    elif isinstance(e, MemberMerged):
        found += _merged(e)
    summed: dict[int, int] = defaultdict(int)
    for lot_id, amount in found:
        summed[lot_id] += amount
    return {lot_id: amount for lot_id, amount in summed.items() if amount}


def _fifo(lot: NewLot) -> tuple[bool, datetime, datetime, int]:
    never = lot.expires_at is None
    return (never, lot.expires_at or lot.earned_at, lot.earned_at, lot.lot_id)


UNKNOWN_EARNED = datetime.min.replace(tzinfo=UTC)


def outstanding(
    balances: dict[int, int], lots: dict[int, NewLot]
) -> tuple[list[tuple[NewLot, int]], int]:
    """A member's lots with points left after their debt is taken earliest expiry first, and
    their stored value (fen). A lot the view has no description of is valued as earned before
    every rule version."""
    owed = -balances.get(DEBT, 0)
    left: list[tuple[NewLot, int]] = []
    found = [
        lots.get(lot_id)
        or NewLot(
            lot_id=lot_id,
            kind="lot",
            reference=str(lot_id),
            earned_at=UNKNOWN_EARNED,
            expires_at=None,
            rule_version=None,
        )
        for lot_id in balances
        if lot_id > DEBT
    ]
    for lot in sorted(found, key=_fifo):
        points = balances[lot.lot_id]
        taken = min(max(owed, 0), max(points, 0))
        owed -= taken
        if points - taken:
            left.append((lot, points - taken))
    return left, balances.get(STORED_VALUE, 0)


CostOf = Callable[[NewLot], tuple[int | None, Decimal | None]]  # → (version, cost per point)


def value(
    members: dict[str, dict[int, int]], lots: dict[tuple[str, int], NewLot], cost_of: CostOf
) -> LiabilityFigures:
    """The liability of these members' balances (member → lot id → sum of moves)."""
    points = count = stored = 0
    by_version: dict[int | None, tuple[Decimal | None, int, Decimal]] = {}
    for member, balances in members.items():
        mine = {lot_id: lots[(member, lot_id)] for lot_id in balances if (member, lot_id) in lots}
        left, stored_fen = outstanding(balances, mine)
        stored += stored_fen
        held = sum(p for _, p in left)
        if held > 0:
            points, count = points + held, count + 1
        for lot, p in left:
            version, cost = cost_of(lot)
            _, n, exact = by_version.get(version, (cost, 0, ZERO))
            by_version[version] = (cost, n + p, exact + p * (cost or ZERO))
    total = sum((exact for _, _, exact in by_version.values()), ZERO)
    return LiabilityFigures(
        points=points,
        members=count,
        value_fen=fen(total),
        stored_value_fen=stored,
        by_version=[
            VersionValue(
                rule_version=version,
                cost_per_point_fen=None if cost is None else str(cost),
                points=n,
                value_fen=fen(exact),
            )
            for version, (cost, n, exact) in sorted(
                by_version.items(), key=lambda item: (item[0] is None, item[0] or 0)
            )
        ],
    )
