"""One account per person (SPEC 2.8): `POST /v1/members/{member_id}/replace-card` and
`.../merge` (customer service). Finding members by phone is `GET /v1/members` (members.py)."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, Response, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from api.auth import roles
from ledger.domain.apikey import Principal
from ledger.domain.commands import CardNumber
from ledger.domain.identity import MergeMember, Merger, ReplaceCard, Replacement
from ledger.services.identity import IdentityService


class IdentityController(Controller):
    path = "/v1/members"
    tags = ["members"]  # noqa: RUF012

    @post(
        "/{member_id:str}/replace-card",
        operation_id="replaceCard",
        guards=[roles("service")],
        sync_to_thread=True,
    )
    def replace_card(
        self,
        member_id: FromPath[CardNumber],
        data: JSONBody[ReplaceCard],
        identity: NamedDependency[IdentityService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[Replacement]:
        """挂失补卡: the account moves to the new card; the old one answers 409 `card-replaced`."""
        receipt, created = identity.replace_card(member_id, data, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)

    @post(
        "/{member_id:str}/merge",
        operation_id="mergeMember",
        guards=[roles("service")],
        sync_to_thread=True,
    )
    def merge(
        self,
        member_id: FromPath[CardNumber],
        data: JSONBody[MergeMember],
        identity: NamedDependency[IdentityService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[Merger]:
        """A duplicate's lots, debt, stored value and tier spend move into this member; the
        duplicate answers 409 `member-merged`."""
        receipt, created = identity.merge(member_id, data, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)
