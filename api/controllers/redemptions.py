"""`/v1/redemptions`: spend or hold points at the POS, capture a hold, void a redemption."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, Response, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from api.auth import require_store, roles
from ledger.domain.apikey import Principal
from ledger.domain.commands import Identifier, Redeem
from ledger.domain.redemption import RedemptionReceipt, VoidReceipt
from ledger.services.redemptions import RedemptionsService


class RedemptionsController(Controller):
    path = "/v1/redemptions"
    tags = ["redemptions"]  # noqa: RUF012

    @post("/", operation_id="redeem", guards=[roles("pos")], sync_to_thread=True)
    def redeem(
        self,
        data: JSONBody[Redeem],
        redemptions: NamedDependency[RedemptionsService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[RedemptionReceipt]:
        require_store(principal, data.store_id)
        receipt, created = redemptions.redeem(data, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)

    @post(
        "/{store_id:str}/{redemption_no:str}/capture",
        operation_id="captureRedemption",
        guards=[roles("pos")],
        sync_to_thread=True,
    )
    def capture(
        self,
        store_id: FromPath[Identifier],
        redemption_no: FromPath[Identifier],
        redemptions: NamedDependency[RedemptionsService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[RedemptionReceipt]:
        require_store(principal, store_id)
        receipt, created = redemptions.capture(store_id, redemption_no, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)

    @post(
        "/{store_id:str}/{redemption_no:str}/void",
        operation_id="voidRedemption",
        guards=[roles("pos")],
        sync_to_thread=True,
    )
    def void(
        self,
        store_id: FromPath[Identifier],
        redemption_no: FromPath[Identifier],
        redemptions: NamedDependency[RedemptionsService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[VoidReceipt]:
        require_store(principal, store_id)
        receipt, created = redemptions.void(store_id, redemption_no, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)
