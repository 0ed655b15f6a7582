"""`/v1/members`: enrol a card (pos, service) and read a member's balance and tier."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from api.auth import require_store, roles
from ledger.adjustments import AdjustmentReceipt
from ledger.apikey import Principal
from ledger.application import Ledger
from ledger.commands import AdjustPoints, CardNumber, EnrolMember
from ledger.views import MemberView


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
