"""Expiry (SPEC 2.5): an expiry run as of a time expires every due lot, one event per lot.

Points leave the balance only through `PointsExpired`; a lot is due when `expires_at <= as_of`.
Running twice expires nothing twice (an expired lot has nothing left); a lot that a void refilled
after it expired is due again and expires at the next run.
"""

from __future__ import annotations

from datetime import datetime

from ledger.domain.member import Member, PointsExpired
from ledger.policies.lots import Lot


def due_lots(member: Member, as_of: datetime) -> list[Lot]:
    return [
        lot
        for lot in member.lots
        if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= as_of
    ]


def expire(member: Member, as_of: datetime, operator: str) -> list[PointsExpired]:
    return [
        PointsExpired(
            originator_id=member.id,
            originator_version=version,
            occurred_at=lot.expires_at,  # type: ignore[arg-type]
            lot_id=lot.lot_id,
            lot_reference=lot.reference,
            points=lot.remaining,
            run_as_of=as_of,
            operator=operator,
        )
        for version, lot in enumerate(due_lots(member, as_of), start=member.version + 1)
    ]
