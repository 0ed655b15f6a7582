"""Closing a franchise settlement month (SPEC 2.7), and the digest that seals it.

A closed month is final: the settlement projection puts anything that arrives for it later
into the first open month after it, marked `late`. Closing is allowed once the month has
ended in chain time, and closing again is a replay of the first close.

Right after `PeriodClosed`, `PeriodDigested` records sha256 over the chain hashes
(`ledger.sealing`) of the month's settlement events in log order, the month of each decided
as the projection decides it (`MonthDigests`): those before the close in the log, so the set
is exactly what the month's report counts, whatever arrives while the digest is computed.
Contract version 2 settles more kinds of event (stored value spent and refunded, bonuses), so
its digests (scheme 2) cover them; a month closed before records scheme 1 (the version 1 set)
and is checked against that, so an old log verifies as it always did.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Container
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from ledger.domain.bounds import PERIOD_PATTERN
from ledger.domain.errors import InvalidInput, PeriodNotEnded, invariant
from ledger.domain.ids import settlement_period_id
from ledger.domain.member import (
    BonusGranted,
    PointsAccrued,
    PointsConverted,
    PointsRedeemed,
    PointsReversed,
    StoredValueCredited,
    StoredValueDebited,
)
from ledger.domain.member import RedemptionVoided as Voided
from ledger.domain.model import Aggregate, DomainEvent, born
from ledger.domain.rulebook import RuleSetPublished
from ledger.policies.chaintime import month_of

_PERIOD = re.compile(PERIOD_PATTERN)  # 2000-01 … 2099-12 (SPEC 3.1)


class PeriodClosed(DomainEvent, frozen=True, kw_only=True):
    period: str
    closed_at: datetime
    operator: str


class PeriodDigested(DomainEvent, frozen=True, kw_only=True):
    period: str
    digest: str  # sha256 over the month's settlement events' chain hashes, in log order
    events: int
    scheme: int = 1  # which events count: 1 `SETTLED_V1` (contract version 1), 2 `SETTLED`


class SettlementPeriod(Aggregate, kw_only=True):
    period: str
    closed_at: datetime
    operator: str
    digest: str | None = None
    events_digested: int = 0


class CloseReceipt(msgspec.Struct, frozen=True, kw_only=True):
    period: str
    closed: bool
    closed_at: datetime
    digest: str | None = None
    events_digested: int = 0


def check_period(period: str) -> str:
    if _PERIOD.match(period) is None:
        raise InvalidInput("period must be YYYY-MM, 2000-01 to 2099-12", field="period")
    return period


def next_period(period: str) -> str:
    year, month = (int(part) for part in period.split("-"))
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}"


def first_open(period: str, closed: Container[str]) -> str:
    """The first month from `period` on that is not in `closed`."""
    while period in closed:
        period = next_period(period)
    return period


def evolve(state: SettlementPeriod | None, event: DomainEvent) -> SettlementPeriod:
    if isinstance(event, PeriodDigested) and state is not None and state.digest is None:
        state.digest = event.digest
        state.events_digested = event.events
        return state
    if not isinstance(event, PeriodClosed) or state is not None:
        raise TypeError(f"SettlementPeriod cannot apply {type(event).__name__} here")
    return SettlementPeriod(
        **born(event),
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
        return None, receipt(state)
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


def receipt(state: SettlementPeriod) -> CloseReceipt:
    return CloseReceipt(
        period=state.period,
        closed=True,
        closed_at=state.closed_at,
        digest=state.digest,
        events_digested=state.events_digested,
    )


def record_digest(state: SettlementPeriod, digest: Digest) -> PeriodDigested | None:
    """The event recording the closed month's digest (None if it is recorded already)."""
    if state.digest is not None:
        return None
    return PeriodDigested(
        originator_id=state.id,
        originator_version=state.version + 1,
        period=state.period,
        digest=digest.digest,
        events=digest.events,
        scheme=DIGEST_SCHEME,
    )


SETTLED_V1 = (PointsAccrued, PointsReversed, PointsRedeemed, Voided, PointsConverted)
SETTLED = (*SETTLED_V1, StoredValueDebited, StoredValueCredited, BonusGranted)
DIGEST_SCHEME = 2  # what a close records now: the digest over SETTLED
DIGESTED = (*SETTLED, RuleSetPublished, PeriodClosed, PeriodDigested)  # what MonthDigests reads
DEFAULT_ZONE = "Asia/Shanghai"  # the projection's zone before any rule set is published


class Digest(msgspec.Struct, frozen=True):
    digest: str
    events: int


class MonthDigests:
    """Fed the log's DIGESTED events in order, the digest of each month as it is closed. The
    month of an event is the settlement projection's: that of its `occurred_at` in the zone of
    the newest rule version so far, or the first open month after it."""

    def __init__(self) -> None:
        self._version = 0
        self._zone = ZoneInfo(DEFAULT_ZONE)
        # month -> scheme -> (sha256 so far, events)
        self._open: dict[str, dict[int, tuple[Any, int]]] = {}
        self.closed: dict[str, Digest] = {}  # the current scheme's (what a close records)
        self.closed_v1: dict[str, Digest] = {}  # scheme 1's (what a close recorded before)

    def add(self, event: DomainEvent) -> None:
        if isinstance(event, SETTLED):
            month = first_open(month_of(event.occurred_at, self._zone), self.closed)
            sums = self._open.setdefault(month, {})
            schemes = (1, DIGEST_SCHEME) if isinstance(event, SETTLED_V1) else (DIGEST_SCHEME,)
            for scheme in schemes:
                digest, count = sums.get(scheme) or (hashlib.sha256(), 0)
                digest.update(event.chain.encode())
                sums[scheme] = (digest, count + 1)
        elif isinstance(event, RuleSetPublished) and event.version > self._version:
            self._version, self._zone = event.version, event.rules.zone
        elif isinstance(event, PeriodClosed):
            invariant(event.period not in self.closed, "a month is closed once")
            sums = self._open.pop(event.period, {})
            for scheme, kept in ((DIGEST_SCHEME, self.closed), (1, self.closed_v1)):
                digest, count = sums.get(scheme) or (hashlib.sha256(), 0)
                kept[event.period] = Digest(digest.hexdigest(), count)

    def of(self, period: str, scheme: int) -> Digest | None:
        """The digest of a closed month by the events of `scheme` (that of its record)."""
        return (self.closed_v1 if scheme == 1 else self.closed).get(period)
