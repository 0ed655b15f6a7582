"""Members: enrolment, the member as the POS sees them now, and their events for audits."""

from __future__ import annotations

import functools
import threading
from datetime import datetime
from typing import cast
from uuid import UUID

import msgspec

from ledger.domain import enrolment, ids
from ledger.domain.commands import EnrolMember
from ledger.domain.errors import (
    CardNotDispatched,
    ErasedMember,
    IdNumberTaken,
    InvalidInput,
    MemberExists,
    MemberNotFound,
    invariant,
)
from ledger.domain.member import Member, MemberEnrolled, MemberEvent
from ledger.domain.member import evolve as evolve_member
from ledger.domain.memberview import MemberView, member_view
from ledger.domain.model import DomainEvent
from ledger.domain.opening import MemberImported
from ledger.domain.personal import PersonalData
from ledger.domain.sale import check_business_time
from ledger.infrastructure.identityindex import IdentityChange, IdentityRow
from ledger.infrastructure.persistence import MsgspecMapper
from ledger.infrastructure.vault import MemberKeys
from ledger.policies.asof import MOVES, MemberAsOf, Move
from ledger.services.access import AccessService
from ledger.services.asof import AsOfReader
from ledger.services.core import LedgerCore
from ledger.services.once import Decided, Found, once
from ledger.services.rules import RulesService

HISTORIES_KEPT = 64  # members whose decoded events are kept for as-of questions
_canonical = msgspec.json.Encoder(order="deterministic")


class MembersService:
    def __init__(
        self, core: LedgerCore, rules: RulesService, access: AccessService, keys: MemberKeys
    ) -> None:
        self.core = core
        self.rules = rules
        self.access = access
        self.keys = keys
        # The index's own secret (wrapped by the master key: a rotation keeps it); the secret
        # enrolments recorded before the index were hashed with (derived from the master key).
        self._legacy_secret = ids.keyed_hash(core.settings.master_key, "key", "id-number").encode()
        self._histories: dict[UUID, list[MemberEvent]] = {}  # least recently asked first
        self._histories_lock = threading.Lock()
        MsgspecMapper.prepare(*MOVES.values(), Move)
        self._as_of = AsOfReader(core)  # from the fold's checkpoints (D67)

    # -- enrolment ----------------------------------------------------------------------------

    def enrol(self, cmd: EnrolMember, operator: str, now: datetime) -> tuple[MemberView, bool]:
        """Enrol a card at a store, once: the same request again answers the member as now
        (200); another request for an enrolled card is 409 `member-exists`, any request for an
        erased member's card 409 `member-erased`."""
        occurred_at = cmd.occurred_at or now
        check_business_time(occurred_at, now)
        keys = enrolment.personal_keys(cmd)  # 422 for a bad ID number, before anything is read
        self.access.require_store(cmd.store_id)
        personal = enrolment.personal_data(cmd)
        # The log's fingerprint covers the request without its personal data; the personal
        # part's (keyed) sits in the identity index and goes with it on erasure.
        public = ids.fingerprint(_canonical.encode(enrolment.public_part(cmd)))
        private = None if personal.is_empty() else self._hash("enrol", _canonical.encode(personal))
        fingerprint = f"{public}:{private or ''}"
        legacy = ids.keyed_hash(self._legacy_secret, "enrol", _canonical.encode(cmd).decode())

        def step(_: bool) -> Found[MemberView] | Decided[MemberView]:
            existing = self.core.get(ids.member_id(cmd.member_id), evolve_member)
            if existing is not None and existing.alias_of is not None:
                raise taken()  # a replacement card (SPEC 2.8)
            if existing is not None:
                return Found(
                    self._recorded(existing, legacy, fingerprint), self.view(existing, now)
                )
            events, identity = self._enrolment(
                cmd,
                keys=keys,
                occurred_at=occurred_at,
                public=public,
                private=private,
                operator=operator,
            )
            view = self.view(evolve_member(None, events[0]), now)
            return Decided(events, view, identity)

        def taken() -> MemberExists:
            return MemberExists(f"card {cmd.member_id!r} is already enrolled", field="member_id")

        return once(self.core, fingerprint, step, taken)

    def _recorded(self, member: Member, legacy: str, fingerprint: str) -> str:
        """The fingerprint an enrolled member's enrolment was recorded with (as `enrol` makes
        them); an enrolment recorded before the identity index has one of the old kind."""
        if member.erased:
            raise ErasedMember(
                f"card {member.member_id!r} belongs to an erased member", field="member_id"
            )
        first = self.enrolment(member.id)
        if isinstance(first, MemberImported):  # an imported card is not enrolled again
            return "imported"
        stored = first.fingerprint
        if stored == legacy:
            return fingerprint
        row = self.core.identities.row(member.id)
        return f"{stored}:{row.fingerprint if row is not None and row.fingerprint else ''}"

    def _enrolment(
        self,
        cmd: EnrolMember,
        *,
        keys: enrolment.PersonalKeys,
        occurred_at: datetime,
        public: str,
        private: str | None,
        operator: str,
    ) -> tuple[list[DomainEvent], IdentityChange | None]:
        member_uuid = ids.member_id(cmd.member_id)
        row = IdentityRow(
            member_id=member_uuid,
            id_hash=self._hash("id-number", keys.id_number) if keys.id_number else None,
            phone_hash=self._hash("phone", keys.phone) if keys.phone else None,
            birthday=keys.birthday,
            fingerprint=private,
        )
        if keys.id_number and self._id_taken(row.id_hash, keys.id_number, cmd.id_number):
            raise IdNumberTaken("this ID number is already enrolled", field="id_number")
        version = self.rules.at(occurred_at)
        rules = version.rules if version else None
        dispatch_required = rules is not None and rules.cards and rules.cards.require_dispatch
        if dispatch_required and self.access.dispatched_to(cmd.member_id) is None:
            raise CardNotDispatched(
                f"card {cmd.member_id!r} was never dispatched to a store", field="member_id"
            )
        personal = enrolment.personal_data(cmd)
        events = enrolment.enrol(
            cmd,
            occurred_at=occurred_at,
            tier=rules.tiers.levels[0].code if rules and rules.tiers else None,
            fingerprint=public,
            operator=operator,
            sealed=None if personal.is_empty() else self.keys.encrypt(member_uuid, personal),
        )
        return events, None if private is None else IdentityChange(put=(row,))

    @functools.cached_property
    def _index_secret(self) -> bytes:
        return self.keys.secret(ids.IDENTITY_INDEX_KEY_ID)  # read when first needed: a rotation
        # opens the ledger with the new master key before the secret is re-wrapped for it

    def _hash(self, purpose: str, value: str | bytes) -> str:
        text = value.decode() if isinstance(value, bytes) else value
        return ids.keyed_hash(self._index_secret, purpose, text)

    def index_hash(self, purpose: str, value: str | bytes) -> str:
        """A personal value keyed as the identity index keeps it (an import's rows)."""
        return self._hash(purpose, value)

    def _id_taken(self, id_hash: str | None, number: str, given: str | None) -> bool:
        """Whether another member holds the ID number: in the index, or (enrolled before the
        index and not erased) by the identity claim of that time, keyed by the old secret."""
        if id_hash is not None and self.core.identities.holder_of(id_hash) is not None:
            return True
        for form in {number, (given or "").strip().upper()}:
            old = ids.keyed_hash(self._legacy_secret, "id-number", form)
            claim = self.core.get(ids.identity_claim_id(old), enrolment.evolve)
            if claim is not None:
                holder = self.core.get(ids.member_id(claim.member_id), evolve_member)
                if holder is not None and not holder.erased:
                    return True
        return False

    def with_phone(self, phone: str) -> list[UUID]:
        """The members enrolled with this phone number (any form of it: digits only, with or
        without +86 / 0086), through the index's keyed hash; none once erased."""
        digits = enrolment.phone_digits(phone)
        return self.core.identities.by_phone(self._hash("phone", digits)) if digits else []

    def reindex(self) -> int:
        """Rebuild the identity index from the log's sealed personal data, for members that have
        no row (a log just imported: the index is not in the log; a log recorded before the
        index). Erased members have no key, so they get none. Returns the rows written."""
        have = self.core.identities.members()
        written = 0
        for event in self.core.stored(MemberEnrolled, MemberImported):
            assert isinstance(event, MemberEnrolled | MemberImported)  # noqa: S101 - for mypy
            if event.sealed is None or event.originator_id in have:
                continue
            data = self.keys.decrypt(event.originator_id, event.sealed)
            if data is None:
                continue
            written += self.core.identities.put_if_free(self._row(event.originator_id, data))
        return written

    def _row(self, member: UUID, data: PersonalData) -> IdentityRow:
        try:
            number = enrolment.id_number_18(data.id_number) if data.id_number else None
        except InvalidInput:  # accepted before numbers were checked: kept out of the index
            number = None
        birthday = data.birthday[5:] if data.birthday else None  # 'YYYY-MM-DD' -> 'MM-DD'
        return IdentityRow(
            member_id=member,
            id_hash=self._hash("id-number", number) if number else None,
            phone_hash=self._hash("phone", enrolment.phone_digits(data.phone))
            if data.phone
            else None,
            birthday=birthday,
            fingerprint=self._hash("enrol", _canonical.encode(data)),
        )

    # -- reading ------------------------------------------------------------------------------

    def view(self, member: str | Member, now: datetime) -> MemberView:
        """The member as the POS sees them at `now` (from their own events: always current); a
        replaced card reads the account, with `replaced_by` naming the card it reads under now;
        a merged duplicate is 409 `member-merged`."""
        state = self.core.member(member, old_card_ok=True) if isinstance(member, str) else member
        version = self.rules.at(now)
        view = member_view(state, version.rules if version else None, now)
        if isinstance(member, str) and member != state.member_id:
            view = msgspec.structs.replace(view, replaced_by=state.member_id)
        return view

    def enrolment(self, member_uuid: UUID) -> MemberEnrolled | MemberImported:
        """The member's first event: its enrolment, or its import (SPEC 2.11)."""
        first = next(iter(self.core.events.get(member_uuid, lte=1)))
        invariant(
            isinstance(first, MemberEnrolled | MemberImported),
            "a member's first event is its enrolment or its import",
        )
        return cast(MemberEnrolled | MemberImported, first)

    def key(self, card: str) -> UUID:
        """The id of the account a card reads (MemberNotFound otherwise); a replacement card's
        is the account it points at."""
        return self.core.account(card).id

    def events(self, card: str) -> list[MemberEvent]:
        """Every event of the member, in the order they were recorded. Recently asked-for
        members keep their decoded events in memory, read on from the last one kept (customer
        service asks about one member many times in a row; events never change)."""
        member_uuid = self.key(card)
        with self._histories_lock:
            kept = self._histories.pop(member_uuid, [])
        newer = self.core.events.get(member_uuid, gt=kept[-1].originator_version if kept else None)
        events = kept + [e for e in newer if isinstance(e, MemberEvent)]
        if not events:  # no event at all: never enrolled (the member is not read for this)
            raise MemberNotFound(f"member {card!r} is not enrolled", field="member_id")
        with self._histories_lock:
            self._histories[member_uuid] = events
            while len(self._histories) > HISTORIES_KEPT:
                self._histories.pop(next(iter(self._histories)))
        return events

    def forget_histories(self) -> None:
        """Drop every member's kept events (the next question reads them cold)."""
        with self._histories_lock:
            self._histories.clear()

    def as_of(
        self, card: str, as_of: datetime, recorded_as_of: datetime | None = None
    ) -> MemberAsOf:
        """The member at business time `as_of` (and, if given, as recorded by `recorded_as_of`)."""
        for field, value in (("as_of", as_of), ("recorded_as_of", recorded_as_of)):
            if value is not None and value.tzinfo is None:
                raise InvalidInput(f"{field} needs a UTC offset", field=field)
        return self._as_of.as_of(card, self.core.account_id(card), as_of, recorded_as_of)
