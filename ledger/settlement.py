"""Closing a franchise settlement month (SPEC 2.7).

A closed month is final: the settlement projection puts anything that arrives for it later
into the first open month after it, marked `late`. Closing is allowed once the month has
ended in chain time, and closing again is a replay of the first close.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec

from ledger.chaintime import month_of
from ledger.errors import InvalidInput, PeriodNotEnded
from ledger.ids import settlement_period_id
from ledger.model import Aggregate, DomainEvent

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class PeriodClosed(DomainEvent, frozen=True, kw_only=True):
    period: str
    closed_at: datetime
    operator: str


class SettlementPeriod(Aggregate, kw_only=True):
    period: str
    closed_at: datetime
    operator: str


class CloseReceipt(msgspec.Struct, frozen=True, kw_only=True):
    period: str
    closed: bool
    closed_at: datetime


def check_period(period: str) -> str:
    if _PERIOD.match(period) is None:
        raise InvalidInput("period must be YYYY-MM", field="period")
    return period


def next_period(period: str) -> str:
    year, month = (int(part) for part in period.split("-"))
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}"


def evolve(state: SettlementPeriod | None, event: DomainEvent) -> SettlementPeriod:
    if not isinstance(event, PeriodClosed) or state is not None:
        raise TypeError(f"SettlementPeriod cannot apply {type(event).__name__} here")
    return SettlementPeriod(
        id=event.originator_id,
        version=event.originator_version,
        created_on=event.timestamp,
        modified_on=event.timestamp,
        period=event.period,
        closed_at=event.closed_at,
        operator=event.operator,
    )


def close(
    state: SettlementPeriod | None, period: str, zone: ZoneInfo, operator: str, now: datetime
) -> tuple[PeriodClosed | None, CloseReceipt]:
    """The event that closes `period` (None if it is closed already)."""
    check_period(period)
    if state is not None:
        return None, CloseReceipt(period=period, closed=True, closed_at=state.closed_at)
    if month_of(now, zone) <= period:
        raise PeriodNotEnded(f"{period} has not ended yet in chain time", field="period")
    event = PeriodClosed(
        originator_id=settlement_period_id(period),
        originator_version=1,
        period=period,
        closed_at=now,
        operator=operator,
    )
    return event, CloseReceipt(period=period, closed=True, closed_at=now)
