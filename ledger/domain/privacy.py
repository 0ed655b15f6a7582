"""Personal data rights: who read whose personal data, erasure, and a member's own export.

Every read of a member's decrypted personal data is recorded first, as an event of that member's
access log (an aggregate of its own, so reads never contend with the POS on the member), naming
the API key, its role and the purpose. Erasure is `MemberErased` on the member after their key
is destroyed. The export gathers everything the ledger holds on a member.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from ledger.domain.commands import Role, Text
from ledger.domain.member import Member, MemberErased, MemberEvent
from ledger.domain.memberview import MemberView
from ledger.domain.model import Aggregate, DomainEvent, born
from ledger.domain.personal import PersonalData

Purpose = Literal["export", "console"]


class EraseMember(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`POST /v1/members/{member_id}/erase` body."""

    reason: Text


class PersonalDataRead(DomainEvent, frozen=True, kw_only=True):
    member_id: str
    key_id: str  # who read it
    role: Role
    purpose: Purpose
    occurred_at: datetime


class AccessLog(Aggregate, kw_only=True):
    member_id: str
    reads: int = 0


def evolve(state: AccessLog | None, event: DomainEvent) -> AccessLog:
    if not isinstance(event, PersonalDataRead):
        raise TypeError(f"AccessLog cannot apply {type(event).__name__}")
    if state is None:
        state = AccessLog(
            **born(event),
            member_id=event.member_id,
        )
    state.reads += 1
    return state


class PersonalRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A member's personal data as customer service may see it."""

    status: Literal["held", "erased", "none"]  # none: enrolled without personal data
    data: PersonalData | None = None


class ErasureReceipt(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    erased_at: datetime
    reason: str
    operator: str


class AccessEntry(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    role: Role
    purpose: Purpose
    occurred_at: datetime


class ExportedEvent(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    version: int
    recorded_at: datetime
    data: dict[str, Any]  # the event's own fields (no ciphertext, no internal hashes)


class MemberExport(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the ledger holds on one member (`GET /v1/members/{id}/export`)."""

    member_id: str
    exported_at: datetime
    personal: PersonalRecord
    member: MemberView
    events: list[ExportedEvent]
    accesses: list[AccessEntry]  # who read this member's personal data, this export included


HIDDEN_FIELDS = (
    "originator_id",
    "originator_version",
    "timestamp",
    "sealed",
    "id_hash",
    "fingerprint",
)


def exported(event: MemberEvent) -> ExportedEvent:
    data = msgspec.to_builtins(event)
    for name in HIDDEN_FIELDS:
        data.pop(name, None)
    return ExportedEvent(
        type=type(event).__name__,
        version=event.originator_version,
        recorded_at=event.timestamp,
        data=data,
    )


def access_entry(event: PersonalDataRead) -> AccessEntry:
    return AccessEntry(
        key_id=event.key_id, role=event.role, purpose=event.purpose, occurred_at=event.occurred_at
    )


def erase(member: Member, reason: str, operator: str, occurred_at: datetime) -> MemberErased | None:
    """The erasure of a member's personal data; None if it was erased already."""
    if member.erased:
        return None
    return MemberErased(
        originator_id=member.id,
        originator_version=member.version + 1,
        occurred_at=occurred_at,
        reason=reason,
        operator=operator,
    )
