"""Members: enrolment, the member as the POS sees them now, and their events for audits."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import cast
from uuid import UUID

import msgspec

from ledger.domain import enrolment, ids
from ledger.domain.commands import EnrolMember
from ledger.domain.errors import (
    CardNotDispatched,
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
from ledger.domain.sale import check_business_time
from ledger.infrastructure.vault import MemberKeys
from ledger.policies.asof import MemberAsOf, member_as_of
from ledger.services.access import AccessService
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
        self._id_secret = ids.keyed_hash(core.settings.master_key, "key", "id-number").encode()
        self._histories: dict[UUID, list[MemberEvent]] = {}  # least recently asked first
        self._histories_lock = threading.Lock()

    # -- enrolment ----------------------------------------------------------------------------

    def enrol(self, cmd: EnrolMember, operator: str, now: datetime) -> tuple[MemberView, bool]:
        """Enrol a card at a store, once: the same request again answers the member as now
        (200); another request for an enrolled card is 409 `member-exists`."""
        occurred_at = cmd.occurred_at or now
        check_business_time(occurred_at, now)
        self.access.require_store(cmd.store_id)
        # keyed, so the log's fingerprint of a request holding personal data reveals nothing
        fingerprint = ids.keyed_hash(self._id_secret, "enrol", _canonical.encode(cmd).decode())

        def step(_: bool) -> Found[MemberView] | Decided[MemberView]:
            existing = self.core.get(ids.member_id(cmd.member_id), evolve_member)
            if existing is not None:
                return Found(self.enrolment(existing.id).fingerprint, self.view(existing, now))
            events = self._enrolment(cmd, occurred_at, fingerprint, operator)
            return Decided(events, self.view(evolve_member(None, events[0]), now))

        def taken() -> MemberExists:
            return MemberExists(f"card {cmd.member_id!r} is already enrolled", field="member_id")

        return once(self.core, fingerprint, step, taken)

    def _enrolment(
        self, cmd: EnrolMember, occurred_at: datetime, fingerprint: str, operator: str
    ) -> list[DomainEvent]:
        id_hash = None
        if cmd.id_number:
            id_hash = ids.keyed_hash(self._id_secret, "id-number", cmd.id_number.upper())
            if self.core.get(ids.identity_claim_id(id_hash), enrolment.evolve) is not None:
                raise IdNumberTaken("this ID number is already enrolled", field="id_number")
        version = self.rules.at(occurred_at)
        rules = version.rules if version else None
        dispatch_required = rules is not None and rules.cards and rules.cards.require_dispatch
        if dispatch_required and self.access.dispatched_to(cmd.member_id) is None:
            raise CardNotDispatched(
                f"card {cmd.member_id!r} was never dispatched to a store", field="member_id"
            )
        personal = enrolment.personal_data(cmd)
        member_uuid = ids.member_id(cmd.member_id)
        return enrolment.enrol(
            cmd,
            occurred_at=occurred_at,
            tier=rules.tiers.levels[0].code if rules and rules.tiers else None,
            id_hash=id_hash,
            fingerprint=fingerprint,
            operator=operator,
            sealed=None if personal.is_empty() else self.keys.encrypt(member_uuid, personal),
        )

    # -- reading ------------------------------------------------------------------------------

    def view(self, member: str | Member, now: datetime) -> MemberView:
        """The member as the POS sees them at `now` (from their own events: always current)."""
        state = self.core.member(member) if isinstance(member, str) else member
        version = self.rules.at(now)
        return member_view(state, version.rules if version else None, now)

    def enrolment(self, member_uuid: UUID) -> MemberEnrolled:
        """The member's first event."""
        first = next(iter(self.core.events.get(member_uuid, lte=1)))
        invariant(isinstance(first, MemberEnrolled), "a member's first event is its enrolment")
        return cast(MemberEnrolled, first)

    def key(self, card: str) -> UUID:
        """The member aggregate's id of an enrolled card (MemberNotFound otherwise): asks the
        store for the member's first event, without reading (and copying) the member."""
        member_uuid = ids.member_id(card)
        if not self.core.recorder.select_events(member_uuid, limit=1):
            raise MemberNotFound(f"member {card!r} is not enrolled", field="member_id")
        return member_uuid

    def events(self, card: str) -> list[MemberEvent]:
        """Every event of the member, in the order they were recorded. Recently asked-for
        members keep their decoded events in memory, read on from the last one kept (customer
        service asks about one member many times in a row; events never change)."""
        member_uuid = ids.member_id(card)
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

    def as_of(
        self, card: str, as_of: datetime, recorded_as_of: datetime | None = None
    ) -> MemberAsOf:
        """The member at business time `as_of` (and, if given, as recorded by `recorded_as_of`)."""
        for field, value in (("as_of", as_of), ("recorded_as_of", recorded_as_of)):
            if value is not None and value.tzinfo is None:
                raise InvalidInput(f"{field} needs a UTC offset", field=field)
        return member_as_of(self.events(card), as_of, recorded_as_of)
