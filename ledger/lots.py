"""Points lots (SPEC 2.5): each accrual or credit is a lot with its own expiry instant."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import msgspec

from ledger.chaintime import add_months, start_of_day_after
from ledger.rules import RuleSet


class Lot(msgspec.Struct, kw_only=True):
    """Points from one accrual or credit; `remaining` falls as they are spent, reversed or expire."""

    lot_id: int  # the member's event version that created it: unique per member
    reference: str
    earned_at: datetime
    available_at: datetime  # pending (not spendable) until then: the return window
    expires_at: datetime | None
    points: int
    remaining: int


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
