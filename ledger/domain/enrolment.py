"""Enrolment: a card becomes a member; a national ID number can belong to one member only.

The ID number is kept only sealed with the rest of the personal data; a keyed hash of it names
an identity-claim aggregate saved in the same transaction as the enrolment, so a second member
with the same number collides in the store.
"""

from __future__ import annotations

from datetime import datetime

from ledger.domain import ids
from ledger.domain.commands import EnrolMember
from ledger.domain.member import MemberEnrolled
from ledger.domain.model import Aggregate, DomainEvent, born
from ledger.domain.personal import Ciphertext, PersonalData


class IdentityClaimed(DomainEvent, frozen=True, kw_only=True):
    member_id: str


class IdentityClaim(Aggregate, kw_only=True):
    member_id: str


def evolve(state: IdentityClaim | None, event: DomainEvent) -> IdentityClaim:
    if not isinstance(event, IdentityClaimed):
        raise TypeError(f"IdentityClaim cannot apply {type(event).__name__}")
    return IdentityClaim(
        **born(event),
        member_id=event.member_id,
    )


def enrol(
    cmd: EnrolMember,
    *,
    occurred_at: datetime,
    tier: str | None,
    id_hash: str | None,
    fingerprint: str,
    operator: str,
    sealed: Ciphertext | None = None,
) -> list[DomainEvent]:
    """The events of an enrolment: the member, and the claim on the ID number if one was given.
    `sealed` is `personal_data(cmd)` sealed under the member's key."""
    birthday = cmd.birthday.strftime("%m-%d") if cmd.birthday else None
    events: list[DomainEvent] = [
        MemberEnrolled(
            originator_id=ids.member_id(cmd.member_id),
            originator_version=1,
            member_id=cmd.member_id,
            store_id=cmd.store_id,
            occurred_at=occurred_at,
            tier=tier,
            birthday=birthday,
            sealed=sealed,
            id_hash=id_hash,
            fingerprint=fingerprint,
            operator=operator,
        )
    ]
    if id_hash is not None:
        events.append(
            IdentityClaimed(
                originator_id=ids.identity_claim_id(id_hash),
                originator_version=1,
                member_id=cmd.member_id,
            )
        )
    return events


def personal_data(cmd: EnrolMember) -> PersonalData:
    return PersonalData(
        name=cmd.name,
        phone=cmd.phone,
        id_number=cmd.id_number.upper() if cmd.id_number else None,
        birthday=cmd.birthday.isoformat() if cmd.birthday else None,
    )
