"""Personal data rights: reading a member's personal data (recorded first), erasure that
destroys their key, a member's own export, and re-wrapping every key for a new master key."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from ledger.domain import ids, privacy
from ledger.domain.apikey import Principal
from ledger.domain.errors import invariant
from ledger.domain.member import Member, MemberErased
from ledger.domain.model import DomainEvent
from ledger.infrastructure.identityindex import IdentityChange
from ledger.infrastructure.vault import MemberKeys
from ledger.services.core import LedgerCore
from ledger.services.members import MembersService


class PersonalDataService:
    def __init__(self, core: LedgerCore, members: MembersService, keys: MemberKeys) -> None:
        self.core = core
        self.members = members
        self.keys = keys

    def read(
        self, card: str, principal: Principal, purpose: privacy.Purpose, now: datetime
    ) -> privacy.PersonalRecord:
        """The member's decrypted personal data; the read is recorded first."""
        member = self.core.account(card)
        sealed = self.members.enrolment(member.id).sealed
        if member.erased:
            return privacy.PersonalRecord(status="erased")
        if sealed is None:
            return privacy.PersonalRecord(status="none")
        self._record_read(member, principal, purpose, now)
        data = self.keys.decrypt(member.id, sealed)
        if data is None:  # the key was destroyed by an erasure that did not finish
            return privacy.PersonalRecord(status="erased")
        return privacy.PersonalRecord(status="held", data=data)

    def _record_read(
        self, member: Member, principal: Principal, purpose: privacy.Purpose, now: datetime
    ) -> None:
        """Log who reads whose personal data, before they see it."""
        log_id = ids.access_log_id(member.id)

        def attempt() -> None:
            last = self.core.recorder.select_events(log_id, desc=True, limit=1)
            if last:  # the head the new read chains to: chaining need not read it again
                head = cast(DomainEvent, self.core.mapper.to_domain_event(last[0]))
                self.core.remember_head(log_id, head.originator_version, head.chain)
            self.core.save(
                privacy.PersonalDataRead(
                    originator_id=log_id,
                    originator_version=last[0].originator_version + 1 if last else 1,
                    member_id=member.member_id,
                    key_id=principal.key_id,
                    role=principal.role,
                    purpose=purpose,
                    occurred_at=now,
                )
            )

        self.core.retrying(attempt)

    def erase(
        self, card: str, reason: str, operator: str, now: datetime
    ) -> tuple[privacy.ErasureReceipt, bool]:
        """Crypto-shred a member's personal data: their key first (the part that cannot be
        undone), then `MemberErased` with, in its transaction, the deletion of their identity
        index row (ID number, phone, birthday); a retry of an erasure cut short finishes it."""

        def attempt() -> tuple[privacy.ErasureReceipt, bool]:
            member = self.core.account(card)
            if member.erased:
                done = next(e for e in self.members.events(card) if isinstance(e, MemberErased))
                return _receipt(card, done), False
            self.keys.destroy(member.id)
            event = privacy.erase(member, reason, operator, now)
            invariant(event is not None, "a member not yet erased can be erased")
            self.core.save(event, identity=IdentityChange(forget=(member.id,)))
            return _receipt(card, cast(MemberErased, event)), True

        return self.core.retrying(attempt)

    def export(self, card: str, principal: Principal, now: datetime) -> privacy.MemberExport:
        """Everything held on a member, their personal data decrypted (the read is logged)."""
        personal = self.read(card, principal, "export", now)
        accesses = [  # read() found the member: its id is the card's
            privacy.access_entry(e)
            for e in self.core.events.get(ids.access_log_id(ids.member_id(card)))
            if isinstance(e, privacy.PersonalDataRead)
        ]
        return privacy.MemberExport(
            member_id=card,
            exported_at=now,
            personal=personal,
            member=self.members.view(card, now),
            events=[privacy.exported(e) for e in self.members.events(card)],
            accesses=accesses,
        )

    def rewrap_keys(self, previous_master: bytes) -> int:
        """Re-wrap every live member key from `previous_master` to this ledger's master key."""
        return self.keys.rewrap(previous_master)


def _receipt(card: str, event: MemberErased) -> privacy.ErasureReceipt:
    return privacy.ErasureReceipt(
        member_id=card, erased_at=event.occurred_at, reason=event.reason, operator=event.operator
    )
