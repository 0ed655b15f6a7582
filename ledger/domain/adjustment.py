"""Adjustments (SPEC 2.6): customer service credits or debits points, with reason and ticket.

A credit pays any debt first and the rest is a new lot, which expires by the rules from its
`occurred_at` (those in force then, or the first version for a time before any: every lot
expires when the rules have an expiry rule); a debit takes points FIFO (never from a lot due at
its time) and is refused beyond what the member may spend. An adjustment is never dated before
the member's enrolment nor more than 31 days in the past (SPEC 2.6). Corrections are new
adjustments: nothing is edited or deleted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from ledger.domain.commands import AdjustPoints
from ledger.domain.errors import InsufficientPoints, InvalidInput
from ledger.domain.member import Balance, Member, PointsAdjusted, after, available, balance
from ledger.domain.model import DomainEvent
from ledger.policies.lots import Lot, LotTake, expires_at, spendable, take_fifo
from ledger.policies.ruleset import RuleVersion

BACKDATE_MAX = timedelta(days=31)


def check_time(member: Member, occurred_at: datetime, now: datetime) -> None:
    """An adjustment's business time: not before the enrolment, at most 31 days back."""
    if occurred_at < member.enrolled_at:
        raise InvalidInput(
            f"occurred_at is before the member's enrolment ({member.enrolled_at.isoformat()})",
            field="occurred_at",
        )
    if occurred_at < now - BACKDATE_MAX:
        raise InvalidInput(
            f"occurred_at is more than {BACKDATE_MAX.days} days in the past", field="occurred_at"
        )


class AdjustmentReceipt(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    adjustment_no: str
    occurred_at: datetime
    points: int
    debt_paid: int
    expires_at: datetime | None
    takes: list[LotTake]
    reason: str
    ticket: str
    operator: str
    balance: Balance


def _debit(member: Member, points: int, occurred_at: datetime, now: datetime) -> list[LotTake]:
    """The lots a debit takes FIFO; 409 beyond what the member may spend."""
    spendable_points = available(member, occurred_at, now)
    if points > spendable_points:
        raise InsufficientPoints(
            f"a debit of {points} points, {max(spendable_points, 0)} spendable", field="points"
        )
    takes, _ = take_fifo(spendable(member.lots, occurred_at), points)
    return takes


def _credit(
    member: Member, cmd: AdjustPoints, version: RuleVersion | None, occurred_at: datetime
) -> tuple[int, Lot | None]:
    """A credit pays any debt first; the rest is a new lot expiring by `version`'s rules."""
    debt_paid = min(member.debt_points, cmd.points)
    kept = cmd.points - debt_paid
    if not kept:
        return debt_paid, None
    return debt_paid, Lot(
        lot_id=member.version + 1,
        reference=cmd.adjustment_no,
        earned_at=occurred_at,
        available_at=occurred_at,
        expires_at=expires_at(version.rules, occurred_at) if version else None,
        points=kept,
        remaining=kept,
    )


def adjust(
    cmd: AdjustPoints,
    member: Member,
    version: RuleVersion | None,
    *,
    occurred_at: datetime,
    operator: str,
    now: datetime,
) -> tuple[list[DomainEvent], AdjustmentReceipt]:
    if cmd.points == 0:
        raise InvalidInput("an adjustment credits or debits at least 1 point", field="points")
    check_time(member, occurred_at, now)
    takes: list[LotTake] = []
    lot, debt_paid = None, 0
    if cmd.points < 0:
        takes = _debit(member, -cmd.points, occurred_at, now)
    else:
        debt_paid, lot = _credit(member, cmd, version, occurred_at)
    event = PointsAdjusted(
        originator_id=member.id,
        originator_version=member.version + 1,
        reference=cmd.adjustment_no,
        occurred_at=occurred_at,
        points=cmd.points,
        reason=cmd.reason,
        ticket=cmd.ticket,
        debt_paid=debt_paid,
        lot=lot,
        takes=takes,
        operator=operator,
    )
    return [event], AdjustmentReceipt(
        member_id=member.member_id,
        adjustment_no=cmd.adjustment_no,
        occurred_at=occurred_at,
        points=cmd.points,
        debt_paid=debt_paid,
        expires_at=lot.expires_at if lot else None,
        takes=takes,
        reason=cmd.reason,
        ticket=cmd.ticket,
        operator=operator,
        balance=balance(after(member, [event]), now),
    )
