"""Finding members and keeping one account per person (SPEC 2.8): phone lookup, lost cards
(replace-card) and duplicates (merge).

A replacement is two events saved together: `CardReplaced` on the account and `CardAliased` under
the new card's id (so a card already in use clashes in the store, like a duplicate enrolment).
A merge is `MemberMerged` out of the duplicate and into the account, saved together with the
release of the duplicate's ID-number index entry (the same transaction). Both are idempotent: the
same request again answers what was done (200).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from ledger.domain import identity, ids
from ledger.domain.errors import MemberExists, MemberMergedError
from ledger.domain.identity import (
    CardReplaced,
    MemberMerged,
    MergeMember,
    Merger,
    ReplaceCard,
    Replacement,
)
from ledger.domain.member import Member
from ledger.domain.member import evolve as evolve_member
from ledger.infrastructure.identityindex import IdentityChange
from ledger.policies.tiers import effective_tier
from ledger.services.access import AccessService
from ledger.services.core import LedgerCore
from ledger.services.members import MembersService
from ledger.services.rules import RulesService

FOUND_MAX = 20  # members one phone number may find


class FoundMember(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    tier: str | None


class FoundMembers(msgspec.Struct, frozen=True, kw_only=True):
    items: list[FoundMember]


class IdentityService:
    def __init__(
        self, core: LedgerCore, rules: RulesService, access: AccessService, members: MembersService
    ) -> None:
        self.core = core
        self.rules = rules
        self.access = access
        self.members = members

    def by_phone(self, phone: str, now: datetime) -> FoundMembers:
        """The members enrolled with this phone (any form of it), each under the card it reads
        under now (a merged duplicate: the account it went into); none once erased."""
        version = self.rules.at(now)
        found: dict[UUID, FoundMember] = {}
        for member_uuid in self.members.with_phone(phone)[:FOUND_MAX]:
            account = self.core.get(member_uuid, evolve_member)
            if account is None:
                continue
            account = self.core.member(account.member_id, old_card_ok=True, follow_merge=True)
            tier = effective_tier(version.rules if version else None, account.tier)
            found[account.id] = FoundMember(member_id=account.member_id, tier=tier)
        return FoundMembers(items=sorted(found.values(), key=lambda m: m.member_id))

    def replace_card(
        self, card: str, cmd: ReplaceCard, operator: str, now: datetime
    ) -> tuple[Replacement, bool]:
        """Move the account read by `card` to the card `cmd.new_member_id` (挂失补卡)."""
        self.access.require_store(cmd.store_id)

        def attempt() -> tuple[Replacement, bool]:
            account = self.core.account(card)
            done = self._replaced(account, card)
            if done is not None:
                if (done.new_member_id, done.store_id, done.reason) == (
                    cmd.new_member_id,
                    cmd.store_id,
                    cmd.reason,
                ):
                    return identity.replacement_of(done), False
                identity.check_writable(account, card)  # 409 card-replaced
            if self.core.get(ids.member_id(cmd.new_member_id), evolve_member) is not None:
                raise MemberExists(
                    f"card {cmd.new_member_id!r} is already in use", field="new_member_id"
                )
            events, receipt = identity.replace_card(account, card, cmd, operator=operator, now=now)
            self.core.save(*events)  # the index is keyed by the account: no row changes
            return receipt, True

        return self.core.retrying(attempt)

    def _replaced(self, account: Member, card: str) -> CardReplaced | None:
        if card not in account.replaced_cards:
            return None
        events = self.core.events.get(account.id)
        return next(e for e in events if isinstance(e, CardReplaced) and e.old_member_id == card)

    def merge(
        self, card: str, cmd: MergeMember, operator: str, now: datetime
    ) -> tuple[Merger, bool]:
        """Move everything of the duplicate `cmd.from_member_id` into the member of `card`."""

        def attempt() -> tuple[Merger, bool]:
            account = self.core.member(card)
            duplicate = self.core.account(cmd.from_member_id)
            if duplicate.merged_into is not None:
                done = self._merged(account, duplicate)
                if done is None:
                    raise MemberMergedError(
                        f"card {cmd.from_member_id!r} was merged into card "
                        f"{duplicate.merged_into!r}",
                        current_member_id=duplicate.merged_into,
                        field="from_member_id",
                    )
                return identity.merger_of(done), False
            version = self.rules.at(now)
            events, receipt = identity.merge(
                account,
                duplicate,
                cmd,
                version.rules if version else None,
                operator=operator,
                now=now,
            )
            self.core.save(*events, identity=self._release(duplicate))
            return receipt, True

        return self.core.retrying(attempt)

    def _merged(self, account: Member, duplicate: Member) -> MemberMerged | None:
        """The merge of `duplicate` into `account`, if that is where it went."""
        events = self.core.events.get(account.id)
        return next(
            (
                e
                for e in events
                if isinstance(e, MemberMerged)
                and e.direction == "in"
                and e.from_member_id == duplicate.member_id
            ),
            None,
        )

    def _release(self, duplicate: Member) -> IdentityChange | None:
        """The duplicate's index row without its ID number (the person may hold one card only;
        its phone still finds it, and through it the account it went into)."""
        row = self.core.identities.row(duplicate.id)
        if row is None or row.id_hash is None:
            return None
        return IdentityChange(
            forget=(duplicate.id,), put=(msgspec.structs.replace(row, id_hash=None),)
        )
