"""`/v1/members`: enrol a card (pos, service), read a member's balance and tier, and, for
customer service, the audit trail and the balance at any past moment."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from api.auth import require_store, roles
from ledger.adjustments import AdjustmentReceipt
from ledger.apikey import Principal
from ledger.application import Ledger
from ledger.asof import MemberAsOf
from ledger.commands import AdjustPoints, CardNumber, EnrolMember
from ledger.privacy import EraseMember, ErasureReceipt, MemberExport
from ledger.views import MemberView
from projections.queries import HistoryFilter, HistoryPage, Queries


class MembersController(Controller):
    path = "/v1/members"
    tags = ["members"]  # noqa: RUF012

    @post("/", operation_id="enrolMember", guards=[roles("pos", "service")], sync_to_thread=True)
    def enrol(
        self,
        data: JSONBody[EnrolMember],
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[MemberView]:
        require_store(principal, data.store_id)
        view, created = ledger.enrol(data, principal.key_id, now)
        return Response(view, status_code=201 if created else 200)

    @get(
        "/{member_id:str}",
        operation_id="getMember",
        guards=[roles("pos", "service")],
        sync_to_thread=True,
    )
    def read(
        self,
        member_id: FromPath[CardNumber],
        ledger: NamedDependency[Ledger],
        now: NamedDependency[datetime],
    ) -> MemberView:
        return ledger.member(member_id, now)

    @post(
        "/{member_id:str}/adjustments",
        operation_id="adjustPoints",
        guards=[roles("service")],
        sync_to_thread=True,
    )
    def adjust(
        self,
        member_id: FromPath[str],
        data: JSONBody[AdjustPoints],
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[AdjustmentReceipt]:
        receipt, created = ledger.adjust_points(member_id, data, principal.key_id, now)
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
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[ErasureReceipt]:
        """Destroy the member's key: their personal data reads as erased from now on, in every
        export and replay; points, history and settlements are untouched."""
        receipt, erased = ledger.erase_member(member_id, data.reason, principal.key_id, now)
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
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> MemberExport:
        """Everything the ledger holds on the member, personal data decrypted; the read is
        recorded (who, role, when) and listed in `accesses`."""
        return ledger.export_member(member_id, principal, now)

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
        cursor: FromQuery[int | None] = None,
        limit: FromQuery[int] = 50,
        type: FromQuery[str | None] = None,
        store_id: FromQuery[str | None] = None,
        reference: FromQuery[str | None] = None,
        as_of: FromQuery[datetime | None] = None,
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
        ledger: NamedDependency[Ledger],
        now: NamedDependency[datetime],
        as_of: FromQuery[datetime | None] = None,
        recorded_as_of: FromQuery[datetime | None] = None,
    ) -> MemberAsOf:
        """The member at business time `as_of` (default now), from their own events; with
        `recorded_as_of`, only what had been recorded by then (what the member was told)."""
        return ledger.member_as_of(member_id, as_of or now, recorded_as_of)
