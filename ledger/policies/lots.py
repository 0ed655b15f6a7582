"""Points lots (SPEC 2.5): each accrual or credit is a lot with its own expiry instant.

Spending takes points from lots FIFO by expiry (the earliest-expiring first) and records which
lots gave how much, so that a void can put them back where they came from. A lot due at a
write's business time (`expires_at <= t`) is gone for that write (SPEC 2.3), even before the
expiry run records it: no write takes points from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from uuid import UUID

import msgspec

from ledger.policies.chaintime import add_months, start_of_day_after
from ledger.policies.ruleset import RuleSet


class Lot(msgspec.Struct, kw_only=True):
    """Points from one accrual or credit; `remaining` falls as they are spent, reversed or expire."""

    lot_id: int  # the member's event version that created it: unique per member
    reference: str
    earned_at: datetime
    available_at: datetime  # pending (not spendable) until then: the return window
    expires_at: datetime | None
    points: int
    remaining: int
    sale_id: UUID | None = None  # the sale that earned it, so its refund can find it


class LotTake(msgspec.Struct, array_like=True, frozen=True):
    """Points taken from (or given back to) one lot."""

    lot_id: int
    points: int


class Hold(msgspec.Struct, frozen=True, kw_only=True):
    """Points reserved by a two-phase redemption until captured, voided or lapsed."""

    points: int
    expires_at: datetime


def _fifo_key(lot: Lot) -> tuple[bool, datetime, datetime, int]:
    never = lot.expires_at is None
    return (never, lot.expires_at or lot.earned_at, lot.earned_at, lot.lot_id)


def is_due(lot: Lot, at: datetime) -> bool:
    """Whether the lot's points are gone at `at` (its expiry instant has come)."""
    return lot.expires_at is not None and lot.expires_at <= at


def spendable(lots: Sequence[Lot], at: datetime) -> list[Lot]:
    """Lots with points left, past their return window and not due at `at`, earliest expiry
    first: what a redemption, conversion or debit at business time `at` may take."""
    return sorted(
        (
            lot
            for lot in lots
            if lot.remaining > 0 and lot.available_at <= at and not is_due(lot, at)
        ),
        key=_fifo_key,
    )


def reversible(lots: Sequence[Lot], at: datetime) -> list[Lot]:
    """Lots a refund at `at` may take back points from, pending or not: earned by `at`, with
    points left and not due at `at`, earliest expiry first."""
    return sorted(
        (lot for lot in lots if lot.remaining > 0 and lot.earned_at <= at and not is_due(lot, at)),
        key=_fifo_key,
    )


def take_fifo(lots: Sequence[Lot], points: int) -> tuple[list[LotTake], int]:
    """Take up to `points` from `lots` in the order given; returns the takes and the shortfall."""
    takes: list[LotTake] = []
    left = points
    for lot in lots:
        if left == 0:
            break
        taken = min(lot.remaining, left)
        if taken > 0:
            takes.append(LotTake(lot.lot_id, taken))
            left -= taken
    return takes, left


def expires_at(rules: RuleSet, occurred_at: datetime) -> datetime | None:
    """The earlier of `rolling_months` after the instant and the calendar clearance
    (points of year Y expire at 00:00 of the day after clearance_month/day of Y+1)."""
    expiry = rules.expiry
    if expiry is None:
        return None
    zone = rules.zone
    candidates: list[datetime] = []
    if expiry.rolling_months is not None:
        candidates.append(add_months(occurred_at, expiry.rolling_months, zone))
    if expiry.clearance_month is not None and expiry.clearance_day is not None:
        year = occurred_at.astimezone(zone).year + 1
        clearance = date(year, expiry.clearance_month, expiry.clearance_day)
        candidates.append(start_of_day_after(clearance, zone))
    return min(candidates) if candidates else None


def available_at(rules: RuleSet, occurred_at: datetime) -> datetime:
    return occurred_at + timedelta(days=rules.accrual.lock_days)
