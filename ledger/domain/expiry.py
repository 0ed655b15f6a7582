"""Expiry (SPEC 2.5): an expiry run as of a time expires every due lot, one event per lot.

Points leave the balance only through `PointsExpired`; a lot is due when `expires_at <= as_of`.
Running twice expires nothing twice (an expired lot has nothing left); a lot that a void refilled
after it expired is due again and expires at the next run.

`decide` is the one decision, from a member's version and lots in the member's order: the run
gives it either the member read from the log (`expire`) or what the members view keeps of it
(`MemberDue`: version, chain head and due lots, D66); both give the same events for the same
member at the same version.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol, TypeVar
from uuid import UUID

import msgspec

from ledger.domain.member import Member, PointsExpired


class LotLeft(Protocol):
    """What expiry needs of a lot (a member's `Lot`, or a `DueLot` of the members view)."""

    @property
    def lot_id(self) -> int: ...
    @property
    def reference(self) -> str: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def remaining(self) -> int: ...


class DueLot(msgspec.Struct, frozen=True, kw_only=True):
    """A lot as the members view keeps it for expiry."""

    lot_id: int
    reference: str
    expires_at: datetime | None
    remaining: int


class MemberDue(msgspec.Struct, frozen=True, kw_only=True):
    """A member as the members view last saw it: the version and chain hash of the last member
    event it applied, and its due lots in the member's order (the order `Member.lots` has)."""

    member_id: UUID
    version: int
    chain: str
    lots: list[DueLot]


L = TypeVar("L", bound=LotLeft)


def is_due(lot: LotLeft, as_of: datetime) -> bool:
    return lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= as_of


def due_lots(lots: Iterable[L], as_of: datetime) -> list[L]:
    return [lot for lot in lots if is_due(lot, as_of)]


def decide(
    member_id: UUID, version: int, lots: Iterable[LotLeft], as_of: datetime, operator: str
) -> list[PointsExpired]:
    """One `PointsExpired` per lot due at `as_of` with points left, in the order given, at the
    versions after `version` (the optimistic check: the store refuses them if the member has
    moved past `version`)."""
    return [
        PointsExpired(
            originator_id=member_id,
            originator_version=n,
            occurred_at=lot.expires_at,  # type: ignore[arg-type]
            lot_id=lot.lot_id,
            lot_reference=lot.reference,
            points=lot.remaining,
            run_as_of=as_of,
            operator=operator,
        )
        for n, lot in enumerate(due_lots(lots, as_of), start=version + 1)
    ]


def expire(member: Member, as_of: datetime, operator: str) -> list[PointsExpired]:
    """The run's decision from the member read from the log."""
    return decide(member.id, member.version, member.lots, as_of, operator)


def expire_seen(seen: MemberDue, as_of: datetime, operator: str) -> list[PointsExpired]:
    """The run's decision from what the members view saw of the member."""
    return decide(seen.member_id, seen.version, seen.lots, as_of, operator)
