"""`/v1/members`: enrol a card (pos, service), read a member's balance and tier, and, for
customer service, the audit trail and the balance at any past moment."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from api.auth import require_store, roles
from api.validation import Count, EventType, Instant
from ledger.domain.adjustment import AdjustmentReceipt
from ledger.domain.apikey import Principal
from ledger.domain.bonus import BonusReceipt
from ledger.domain.commands import (
    AdjustPoints,
    CardNumber,
    EnrolMember,
    GrantBonus,
    Identifier,
    Phone,
)
from ledger.domain.memberview import MemberView
from ledger.domain.privacy import EraseMember, ErasureReceipt, MemberExport
from ledger.policies.asof import MemberAsOf
from ledger.services.bonuses import BonusesService
from ledger.services.identity import FoundMembers, IdentityService
from ledger.services.members import MembersService
from ledger.services.personal import PersonalDataService
from ledger.services.storedvalue import StoredValueService
from projections.queries import HistoryFilter, HistoryPage, Queries


class MembersController(Controller):
    path = "/v1/members"
    tags = ["members"]  # noqa: RUF012

    @post("/", operation_id="enrolMember", guards=[roles("pos", "service")], sync_to_thread=True)
    def enrol(
        self,
        data: JSONBody[EnrolMember],
        members: NamedDependency[MembersService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[MemberView]:
        require_store(principal, data.store_id)
        view, created = members.enrol(data, principal.key_id, now)
        return Response(view, status_code=201 if created else 200)

    @get("/", operation_id="findMembers", guards=[roles("pos", "service")], sync_to_thread=True)
    def find(
        self,
        phone: FromQuery[Phone],
        identity: NamedDependency[IdentityService],
        now: NamedDependency[datetime],
    ) -> FoundMembers:
        """Members by phone number (digits only; a leading 86 or 0086 is dropped), through the
        identity index's keyed hash: an erased member is never found."""
        return identity.by_phone(phone, now)

    @get(
        "/{member_id:str}",
        operation_id="getMember",
        guards=[roles("pos", "service")],
        sync_to_thread=True,
    )
    def read(
        self,
        member_id: FromPath[CardNumber],
        members: NamedDependency[MembersService],
        now: NamedDependency[datetime],
    ) -> MemberView:
        return members.view(member_id, now)

    @post(
        "/{member_id:str}/adjustments",
        operation_id="adjustPoints",
        guards=[roles("service")],
        sync_to_thread=True,
    )
    def adjust(
        self,
        member_id: FromPath[CardNumber],
        data: JSONBody[AdjustPoints],
        stored_value: NamedDependency[StoredValueService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[AdjustmentReceipt]:
        receipt, created = stored_value.adjust(member_id, data, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)

    @post(
        "/{member_id:str}/bonuses",
        operation_id="grantBonus",
        guards=[roles("pos", "service")],
        sync_to_thread=True,
    )
    def bonus(
        self,
        member_id: FromPath[CardNumber],
        data: JSONBody[GrantBonus],
        bonuses: NamedDependency[BonusesService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[BonusReceipt]:
        """A bonus of the rule set (registration, referral, …), once per (store_id, bonus_no)."""
        require_store(principal, data.store_id)
        receipt, created = bonuses.grant(member_id, data, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)

    @post(
        "/{member_id:str}/erase",
        operation_id="eraseMember",
        guards=[roles("admin")],
        sync_to_thread=True,
    )
    def erase(
        self,
        member_id: FromPath[CardNumber],
        data: JSONBody[EraseMember],
        personal: NamedDependency[PersonalDataService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[ErasureReceipt]:
        """Destroy the member's key: their personal data reads as erased from now on, in every
        export and replay; points, history and settlements are untouched."""
        receipt, erased = personal.erase(member_id, data.reason, principal.key_id, now)
        return Response(receipt, status_code=201 if erased else 200)

    @get(
        "/{member_id:str}/export",
        operation_id="exportMember",
        guards=[roles("service")],
        sync_to_thread=True,
    )
    def export(
        self,
        member_id: FromPath[CardNumber],
        personal: NamedDependency[PersonalDataService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> MemberExport:
        """Everything the ledger holds on the member, personal data decrypted; the read is
        recorded (who, role, when) and listed in `accesses`."""
        return personal.export(member_id, principal, now)

    @get(
        "/{member_id:str}/history",
        operation_id="getHistory",
        guards=[roles("service")],
        sync_to_thread=True,
    )
    def history(
        self,
        member_id: FromPath[CardNumber],
        queries: NamedDependency[Queries],
        cursor: FromQuery[Count | None] = None,
        limit: FromQuery[Count] = 50,
        type: FromQuery[EventType | None] = None,
        store_id: FromQuery[Identifier | None] = None,
        reference: FromQuery[Identifier | None] = None,
        as_of: FromQuery[Instant | None] = None,
    ) -> HistoryPage:
        """Newest first; `next_cursor` pages back in time. May lag the log (see /metrics)."""
        page = HistoryFilter(
            cursor=cursor,
            limit=limit,
            type=type,
            store_id=store_id,
            reference=reference,
            as_of=as_of,
        )
        return queries.history(member_id, page)

    @get(
        "/{member_id:str}/balance",
        operation_id="getBalanceAsOf",
        guards=[roles("service")],
        sync_to_thread=True,
    )
    def balance(
        self,
        member_id: FromPath[CardNumber],
        members: NamedDependency[MembersService],
        now: NamedDependency[datetime],
        as_of: FromQuery[Instant | None] = None,
        recorded_as_of: FromQuery[Instant | None] = None,
    ) -> MemberAsOf:
        """The member at business time `as_of` (default now), from their own events; with
        `recorded_as_of`, only what had been recorded by then (what the member was told)."""
        return members.as_of(member_id, as_of or now, recorded_as_of)
